"""The document library in the caller's transaction: render, store once, record, announce; and look up."""
from __future__ import annotations

import logging
import uuid

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from crmkit.db import insert_ignore
from crmkit.document_store import DocumentStore
from crmkit.errors import Conflict, NotFound
from crmkit.messaging.outbox import emit
from crmkit.timeutil import utcnow
from services.documents import render as renderer
from services.documents.models import Document, DocumentFailure
from services.documents.rules import Job, filename

log = logging.getLogger(__name__)

SOURCE = "documents"


def produce(session: Session, store: DocumentStore, job: Job, correlation_id: str | None = None) -> Document | None:
    """Render the job; store and record the PDF and emit document.rendered, or emit document.failed."""
    try:
        pdf = renderer.render(job.kind, job.doc)
    except Exception as exc:  # the renderer's failures are deterministic: retrying the same input cannot help
        log.exception("rendering %s %s failed", job.kind, job.owner_id)
        fail(session, job, f"{type(exc).__name__}: {exc}", correlation_id)
        return None
    # The file is complete on disk before its row commits: a row always has its bytes.
    stored = store.put(pdf)
    document, reused = record(session, job, stored.sha256, stored.size)
    session.execute(_FORGET_FAILURE, {"kind": job.kind, "owner_id": job.owner_id})
    emit(session, SOURCE, "document.rendered", {
        **job.context, **job.ids,
        "document_id": document.id, "kind": document.kind, "owner_id": document.owner_id, "number": document.number,
        "sha256": document.sha256, "size": document.size, "filename": document.filename,
        "version": document.version, "reused": reused,
    }, correlation_id=correlation_id or job.ids.get("contract_id") or job.owner_id)
    return document


def record(session: Session, job: Job, sha256: str, size: int) -> tuple[Document, bool]:
    """The row for this content of this owner: the existing one (reused=True) or a new version."""
    # An owner has a handful of versions: one read finds the same content or the next version number.
    versions = session.execute(_VERSIONS, {"kind": job.kind, "owner_id": job.owner_id}).all()
    same = next((d for d in versions if d.sha256 == sha256), None)
    if same is not None:
        existing = session.get(Document, same.id)
        existing.rendered_at = utcnow()
        return existing, True
    now = utcnow()
    values = {"id": str(uuid.uuid4()), "kind": job.kind, "owner_id": job.owner_id, "number": job.number[:64],
              "language": str(job.language)[:8], "sha256": sha256, "size": size,
              "filename": filename(job.kind, job.number, job.language),
              "version": max((d.version for d in versions), default=0) + 1, "created_at": now, "rendered_at": now}
    if insert_ignore(session, Document.__table__, values):
        return Document(**values), False
    # Another worker recorded the same content for this owner first (scaled workers): use its row.
    existing = _by_content(session, job.kind, job.owner_id, sha256)
    if existing is None:
        raise Conflict("Another version of this document was recorded at the same time; try again.")
    existing.rendered_at = utcnow()
    return existing, True


# Plain Core, built once: both run for every document rendered.
_DOCUMENTS, _FAILURES = Document.__table__, DocumentFailure.__table__
_VERSIONS = (select(_DOCUMENTS.c.id, _DOCUMENTS.c.sha256, _DOCUMENTS.c.version)
             .where(_DOCUMENTS.c.kind == bindparam("kind"), _DOCUMENTS.c.owner_id == bindparam("owner_id")))
_FORGET_FAILURE = delete(_FAILURES).where(_FAILURES.c.kind == bindparam("kind"),
                                          _FAILURES.c.owner_id == bindparam("owner_id"))


def fail(session: Session, job: Job, error: str, correlation_id: str | None = None) -> None:
    """Remember the failure for readers waiting on this owner's PDF, and announce it."""
    error = error[:1000]
    failure = session.get(DocumentFailure, (job.kind, job.owner_id))
    if failure is None:
        session.add(DocumentFailure(kind=job.kind, owner_id=job.owner_id, error=error, failed_at=utcnow()))
    else:
        failure.error, failure.failed_at = error, utcnow()
    emit(session, SOURCE, "document.failed", {
        **job.context, **job.ids, "kind": job.kind, "owner_id": job.owner_id, "number": job.number, "error": error,
    }, correlation_id=correlation_id or job.ids.get("contract_id") or job.owner_id)


def _by_content(session: Session, kind: str, owner_id: str, sha256: str) -> Document | None:
    return session.execute(select(Document).where(Document.kind == kind, Document.owner_id == owner_id,
                                                  Document.sha256 == sha256)).scalar_one_or_none()


def get(session: Session, document_id: str) -> Document:
    document = session.get(Document, document_id)
    if document is None:
        raise NotFound("No such document.")
    return document


def latest(session: Session, kind: str, owner_id: str) -> Document:
    """The last rendered PDF of an owner; 404 while none exists, 409 when its rendering failed."""
    document = session.execute(
        select(Document).where(Document.kind == kind, Document.owner_id == owner_id)
        .order_by(Document.rendered_at.desc(), Document.version.desc()).limit(1)).scalar_one_or_none()
    if document is not None:
        return document
    failure = session.get(DocumentFailure, (kind, owner_id))
    if failure is not None:
        raise Conflict(f"The {kind.replace('_', ' ')} PDF could not be rendered: {failure.error}",
                       {"owner_id": ["Rendering failed."]})
    raise NotFound(f"No {kind.replace('_', ' ')} PDF for this owner yet.")


def listing(kind: str | None, owner_id: str | None):
    query = select(Document)
    if kind:
        query = query.where(Document.kind == kind)
    if owner_id:
        query = query.where(Document.owner_id == owner_id)
    return query.order_by(Document.rendered_at.desc(), Document.id)
