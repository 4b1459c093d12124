"""Content-addressed PDF storage: DOCUMENTS_DIR/ab/abcdef….pdf named by the sha256 of the bytes.

The documents service writes it. A process that sees the same directory (notifications, on one host or with
the volume mounted) may read a PDF it knows the sha256 of instead of fetching it over HTTP: a name is its
content's digest, so what it reads is checked, not trusted.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class MissingContent(Exception):
    """A document's bytes are not (or no longer) in the store."""


@dataclass(frozen=True)
class Stored:
    sha256: str
    size: int
    path: Path
    written: bool  # False when identical bytes were already stored and the file was reused


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DocumentStore:
    """Writes each distinct content once, atomically; readers never see a partial file."""

    def __init__(self, root):
        self.root = Path(root)

    def path_of(self, sha256: str) -> Path:
        # The name is checked, never trusted: only 64 hex digits can become a path under the root.
        if not isinstance(sha256, str) or not _SHA256.match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / f"{sha256}.pdf"

    def put(self, data: bytes) -> Stored:
        """Store the bytes (or find them already stored) and return where they are."""
        sha = digest(data)
        path = self.path_of(sha)
        if self._intact(path, sha, len(data)):
            return Stored(sha, len(data), path, written=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary file in the same directory, then os.replace: a crash leaves either nothing or the whole
        # file under the final name, and concurrent writers of the same content both end with the same file.
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pdf", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o640)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        _fsync_dir(path.parent)
        return Stored(sha, len(data), path, written=True)

    def read(self, sha256: str) -> bytes:
        try:
            return self.path_of(sha256).read_bytes()
        except FileNotFoundError:
            raise MissingContent(sha256) from None

    def read_verified(self, sha256: str) -> bytes | None:
        """The bytes if they are here and match their name; None otherwise (absent, unreadable, damaged)."""
        try:
            data = self.read(sha256)
        except (MissingContent, ValueError, OSError):
            return None
        return data if digest(data) == sha256 else None

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    @staticmethod
    def _intact(path: Path, sha: str, size: int) -> bool:
        """True when the file is there with exactly these bytes; a damaged copy is rewritten, not reused."""
        try:
            if path.stat().st_size != size:
                return False
            return digest(path.read_bytes()) == sha
        except FileNotFoundError:
            return False


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (the new directory entry), where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
