"""PDFs read back by an independent reader (poppler's pdftotext), as a customer's viewer would see them."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path


def pdf_text(pdf: bytes) -> str:
    with tempfile.TemporaryDirectory(prefix="crm-pdf-") as directory:
        path = Path(directory) / "document.pdf"
        path.write_bytes(pdf)
        return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True,
                              check=True, timeout=60).stdout
