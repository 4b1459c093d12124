"""Documents: rendered PDFs, content-addressed by sha256, and their templates."""


def check_documents_dir(settings, db) -> None:
    """Stop at start when DOCUMENTS_DIR cannot take a PDF: otherwise the service looked ready while every
    rendering failed later, and the PDFs answered 202 for good."""
    import os
    import tempfile
    from pathlib import Path
    folder = Path(settings.documents_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise SystemExit(f"DOCUMENTS_DIR={folder} is not a folder this service can write PDFs to: {exc}") from None


def spec():
    from crmkit.service import ServiceSpec
    from services.documents.app import build_app
    from services.documents.handlers import HANDLERS, make_context
    from services.documents.models import TABLES
    return ServiceSpec(name="documents", tables=TABLES, build_app=build_app, handlers=HANDLERS,
                       make_context=make_context, on_start=check_documents_dir)
