"""The documents worker's reactions: each event names a document to print; print it, store it, announce it."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from marshmallow import ValidationError

from crmkit.document_store import DocumentStore
from crmkit.settings import Settings
from crmkit.web.auth import system_token
from crmkit.web.client import ServiceClient
from services.documents import library, render, rules
from services.documents.schemas import DocumentRequested

log = logging.getLogger(__name__)

SETTINGS_TIMEOUT = 2.0  # a quote without a letterhead beats a quote held up by a slow gateway


@dataclass
class Context:
    settings: Settings
    store: DocumentStore


def make_context(settings: Settings, db) -> Context:
    warm_up()
    return Context(settings=settings, store=DocumentStore(settings.documents_dir))


def warm_up() -> None:
    """Register the font and render once as the worker starts, not inside the first contract's PDF (about
    0.2 s), and say which font is in use. A missing font is logged here, at start, where an operator looks;
    the worker still runs, and each document it cannot print fails as before (document.failed)."""
    try:
        log.info("documents: rendering with the font %s", render.warm_up())
    except render.FontUnavailable as exc:
        log.error("documents: %s", exc)


def fetch_company(settings: Settings) -> dict | None:
    """The company header from the gateway's /settings, or None when it cannot be had right now."""
    try:
        reply = ServiceClient(settings, "contracts", timeout=SETTINGS_TIMEOUT).get(
            "/api/v1/settings", token=system_token(settings))
    except Exception as exc:  # any failure to ask means "no header", never a failed document
        log.warning("company settings unavailable (%s); rendering without the header", exc)
        return None
    body = reply.json() if reply.status == 200 else None
    company = body.get("company") if isinstance(body, dict) else None
    if not isinstance(company, dict):
        log.warning("company settings answered %s; rendering without the header", reply.status)
        return None
    return company


def _produce(envelope, session, ctx: Context, build) -> None:
    # An event without its owner's id (rules.BadEvent) fails like a malformed event in any other consumer: retried,
    # then dead-lettered with its error, where an operator sees it. Acknowledging it would lose the document.
    job = build(envelope.data if isinstance(envelope.data, dict) else {})
    if job.needs_company:
        company = fetch_company(ctx.settings)
        if company is not None:
            job.doc = {**job.doc, "company": company}
    library.produce(session, ctx.store, job, envelope.correlation_id)


def contract_confirmed(envelope, session, ctx):
    _produce(envelope, session, ctx, rules.from_contract_confirmed)


def quote_sent(envelope, session, ctx):
    _produce(envelope, session, ctx, rules.from_quote_sent)


def delivery_created(envelope, session, ctx):
    _produce(envelope, session, ctx, rules.from_delivery_created)


def receivables_planned(envelope, session, ctx):
    _produce(envelope, session, ctx, rules.from_receivables_planned)


def document_requested(envelope, session, ctx):
    try:
        request = DocumentRequested().load(envelope.data if isinstance(envelope.data, dict) else {})
    except ValidationError as exc:
        kind, owner_id = (envelope.data or {}).get("kind"), (envelope.data or {}).get("owner_id")
        if kind in rules.KINDS and isinstance(owner_id, str) and 0 < len(owner_id) <= 64:
            # The requester waits on this owner: tell it the request was unusable rather than stay silent.
            job = rules.Job(kind=kind, owner_id=owner_id, number="", language="", doc={})
            library.fail(session, job, f"invalid document request: {exc.messages}", envelope.correlation_id)
            return
        # Nobody to tell: dead-lettered with its error after the retries, as any malformed event.
        raise rules.BadEvent(f"an unusable document request: {exc.messages}") from None
    _produce(envelope, session, ctx, lambda _: rules.from_request(
        request["kind"], request["owner_id"], request["doc"], request["context"]))


HANDLERS = {
    "contract.confirmed": contract_confirmed,
    "quote.sent": quote_sent,
    "delivery.created": delivery_created,
    "receivables.planned": receivables_planned,
    "document.requested": document_requested,
}
