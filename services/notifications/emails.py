"""Emails: queued once per request in the caller's transaction, then delivered by the sender loop.

Delivery happens outside any message handler, so an event is acknowledged as soon as its email row is
committed, and a redelivered or duplicated event finds the row (unique request key) and queues nothing.
A sender claims a due row with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so two sender threads or
processes never hold the same email. Once the SMTP server has accepted the recipients, just before DATA, it
commits `smtp_started_at`: if the sender dies after that, nobody can know whether the server took the message,
and the email is reported failed to the salesperson instead of being sent a second time. A sender that dies
earlier (fetching the PDF, connecting, while the server refuses) sent nothing: its email is tried again.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from crmkit.db import after_commit, insert_ignore
from crmkit.document_store import DocumentStore
from crmkit.errors import Unavailable
from crmkit.messaging.outbox import emit
from crmkit.metrics import EMAIL_SEND_SECONDS, EMAIL_WAIT_SECONDS, EMAILS
from crmkit.timeutil import as_utc, business_time, iso, utcnow
from crmkit.web.auth import system_token
from crmkit.web.client import ServiceClient
from services.notifications import departments, mailer
from services.notifications.models import FAILED, QUEUED, SENDING, SENT, WAITING, Email, KnownDocument
from services.notifications.rules import (DELAY_NOTICE_AFTER, WAIT_FOR_DOCUMENT, address_problem, department_text,
                                           give_up_at, language_of, retry_delay, subject_problem)

log = logging.getLogger(__name__)

SOURCE = "notifications"
LEASE = timedelta(seconds=180)  # well above a PDF fetch (10 s) and an SMTP exchange (30 s per command)
BATCH = 5  # per claim: small enough that parallel senders share a burst, one SMTP connection for each
SENDER_JOIN_SECONDS = 5  # how long a stopping worker waits for a sender mid-email
POLL_INTERVAL = 1.0  # seconds between looks for due emails when no commit in this process announced one
HOUSEKEEPING_INTERVAL = 2.0
# How long a sender keeps an SMTP connection it has nothing to send on (Postfix's connection cache keeps one
# 2 s): long enough to carry a burst, short enough not to hold a session on the relay for nothing.
SMTP_KEEP_SECONDS = 2.0
RECORD_SENT_RETRIES = (0.5, 1, 2, 5, 10, 20, 30)  # about a minute, well inside the lease


def _clean_addresses(values) -> list[str]:
    if isinstance(values, str):
        values = [values]
    return [v.strip() for v in values or [] if isinstance(v, str) and v.strip()]


def queue(session: Session, *, request_key: str, to, subject: str, body: str, kind: str, number: str,
          cc=None, email_id: str | None = None, contract_id: str | None = None, quote_id: str | None = None,
          document_id: str | None = None, owner_id: str | None = None, reply_to: str | None = None,
          customer_name: str | None = None, company_language: str | None = None, pdf_since=None,
          settings) -> Email | None:
    """Queue one email for `request_key`; None when that request already has its email. With `pdf_since`, only a
    PDF rendered from then on is attached: one printed for this very request, not an earlier one."""
    email_id = email_id or str(uuid.uuid4())
    now = utcnow()
    email = Email(id=email_id, request_key=request_key, status=QUEUED, attempts=0, to=_clean_addresses(to),
                  cc=_clean_addresses(cc), reply_to=reply_to if reply_to and not address_problem(reply_to) else None,
                  subject=str(subject)[:200], body=body, kind=kind, number=number or "", contract_id=contract_id,
                  quote_id=quote_id, document_owner_id=quote_id if kind == "quote" else contract_id, pdf_since=pdf_since,
                  owner_id=owner_id, customer_name=customer_name, company_language=language_of(company_language),
                  message_id=mailer.message_id(email_id, settings.mail_from), next_attempt_at=now, created_at=now)
    if document_id:
        _attach(email, document_id, session.execute(_DOCUMENT, {"document_id": document_id}).first())
    elif not _attach_latest(session, email):
        email.status = WAITING
    problem = _problem(email, subject)
    if problem:
        _give_up(email, problem)
    # One statement that is also the duplicate check (request_key is unique); the object stays transient.
    if not insert_ignore(session, _EMAILS, {c.key: getattr(email, c.key) for c in _EMAILS.columns}):
        return None
    if problem:
        _report_failure(session, email, problem)
    elif email.status == QUEUED:
        _announce_due(session)
    return email


def _problem(email: Email, subject) -> str | None:
    """Why this email can never be sent (events are checked again: a header is only written from clean values)."""
    if subject_problem(subject):
        return f"Invalid subject: {subject_problem(subject)}"
    if not email.to:
        return "There is no address to send to (the customer has no email address)."
    for address in email.to + email.cc:
        problem = address_problem(address)
        if problem:
            return f"Invalid address {address!r}: {problem}"
    return None


def _attach(email: Email, document_id: str, known) -> None:
    """`known`: the PDF's row in notif_documents (id, sha256, filename), or None when it was not announced."""
    email.document_id = document_id
    email.document_sha256 = known.sha256 if known else None
    email.attachment_name = (known.filename if known else None) or f"{email.number or 'document'}.pdf"


def _attach_latest(session: Session, email: Email) -> bool:
    known = session.execute(_LATEST_DOCUMENT, {"kind": email.kind, "owner_id": email.document_owner_id}).first()
    if known is None or (email.pdf_since is not None and as_utc(known.rendered_at) < as_utc(email.pdf_since)):
        return False  # waits: _attach_to_waiting gives it the next PDF of its owner rendered in time
    _attach(email, known.id, known)
    return True


# Built once, plain Core: queue() runs for every contract confirmed.
_EMAILS = Email.__table__
_DOCUMENTS = KnownDocument.__table__
_DOCUMENT = (select(_DOCUMENTS.c.id, _DOCUMENTS.c.sha256, _DOCUMENTS.c.filename)
             .where(_DOCUMENTS.c.id == bindparam("document_id")))
_ATTACH_TO_WAITING = (
    update(_EMAILS).where(_EMAILS.c.status == WAITING, _EMAILS.c.kind == bindparam("b_kind"),
                          _EMAILS.c.document_owner_id == bindparam("b_owner"),
                          or_(_EMAILS.c.pdf_since.is_(None),
                              _EMAILS.c.pdf_since <= bindparam("b_rendered", type_=_EMAILS.c.pdf_since.type)))
    .values(status=QUEUED, next_attempt_at=bindparam("b_due"), document_id=bindparam("b_pdf"),
            document_sha256=bindparam("b_sha256"),
            attachment_name=func.coalesce(bindparam("b_filename", type_=_EMAILS.c.attachment_name.type),
                                          func.coalesce(func.nullif(_EMAILS.c.number, ""), "document") + ".pdf")))
_LATEST_DOCUMENT = (select(_DOCUMENTS.c.id, _DOCUMENTS.c.sha256, _DOCUMENTS.c.filename, _DOCUMENTS.c.rendered_at)
                    .where(_DOCUMENTS.c.kind == bindparam("kind"), _DOCUMENTS.c.owner_id == bindparam("owner_id"))
                    .order_by(_DOCUMENTS.c.rendered_at.desc()).limit(1))


def remember_document(session: Session, data: dict, rendered_at) -> None:
    """Record a rendered PDF, so emails waiting for it (now or later) can attach it."""
    document_id = data.get("document_id")
    owner_id = data.get("owner_id")
    if not document_id or not owner_id:
        return
    known = {"id": document_id, "kind": data.get("kind") or "", "owner_id": owner_id, "sha256": data.get("sha256"),
             "filename": _filename(data.get("filename")),
             "size": data.get("size") if isinstance(data.get("size"), int) else None, "rendered_at": rendered_at}
    if not insert_ignore(session, KnownDocument.__table__, known):
        # Re-rendered to the same bytes: it is the latest PDF again.
        session.execute(update(KnownDocument).where(KnownDocument.id == document_id)
                        .values(rendered_at=rendered_at))
    _attach_to_waiting(session, known)


def _attach_to_waiting(session: Session, known: dict) -> None:
    """Emails waiting for a PDF of this owner take this one and become due: one UPDATE, no rows loaded."""
    # b_ names: a bind parameter of an UPDATE may not share a column's name.
    if session.execute(_ATTACH_TO_WAITING, {"b_kind": known["kind"], "b_owner": known["owner_id"], "b_due": utcnow(),
                                            "b_pdf": known["id"], "b_sha256": known["sha256"],
                                            "b_filename": known["filename"],
                                            "b_rendered": known["rendered_at"]}).rowcount:
        _announce_due(session)


def _filename(value) -> str | None:
    if not isinstance(value, str):
        return None
    # Only a name: no directory part, no header-breaking characters.
    name = value.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable() and c not in "\r\n\"")
    return name[:200] or None


def attach_waiting(session: Session, owner_id: str | None = None) -> int:
    """Give emails waiting for a PDF the latest one rendered; they become due at once."""
    query = select(Email).where(Email.status == WAITING)
    if owner_id:
        query = query.where(Email.document_owner_id == owner_id)
    attached = 0
    for email in session.execute(_locking(session, query.limit(100))).scalars():
        if _attach_latest(session, email):
            email.status, email.next_attempt_at = QUEUED, utcnow()
            attached += 1
    return attached


WITHDRAWN = "Not sent: the contract was cancelled before the email went out."
# Emails of a cancelled contract that no sender holds yet: the customer is not sent what no longer stands. One
# already being sent (SENDING) is out of reach and goes as it is.
_WITHDRAW = (update(_EMAILS).where(_EMAILS.c.contract_id == bindparam("cid"),
                                   _EMAILS.c.status.in_((WAITING, QUEUED)))
             .values(status=FAILED, last_error=WITHDRAWN))


def withdraw(session: Session, contract_id: str) -> int:
    """Give up the unsent emails of a cancelled contract; how many."""
    return session.execute(_WITHDRAW, {"cid": contract_id}).rowcount


def fail(session: Session, email: Email, error: str) -> None:
    """Give up: failed, email.failed on the contract's timeline, and the salesperson told in the sales inbox."""
    _give_up(email, error)
    _report_failure(session, email, error)


def _give_up(email: Email, error: str) -> None:
    email.status, email.last_error = FAILED, error[:2000]
    email.lease_until = email.claim_token = None


def _report_failure(session: Session, email: Email, error: str) -> None:
    _count(session, "failed")
    correlation = email.contract_id or email.quote_id
    emit(session, SOURCE, "email.failed", {
        "email_id": email.id, "contract_id": email.contract_id, "quote_id": email.quote_id, "to": email.to,
        "cc": email.cc, "error": email.last_error, "attempts": email.attempts,
    }, correlation_id=correlation)
    text = department_text("email_failed", email.company_language, "sales", document=email.kind,
                           number=email.number, to=", ".join(email.to) or "—", error=error[:300])
    departments.post(session, department="sales", type="email.failed", reason="email_failed", text=text,
                     contract=departments.contract_ref(email.contract_id, email.number, email.customer_name),
                     lines=[], source_key=f"email:{email.id}", recipient_id=email.owner_id, correlation_id=correlation)


# --- waking the senders --------------------------------------------------------------------------------------

class _DueSignal:
    """Wakes one idle sender when a commit of this process made emails due.

    An Event would wake every sender, and all but one would run a claim that finds nothing: a transaction each,
    about two per email with two senders. A sender that wakes takes every announcement made so far, since its
    claim covers every row committed before it; a sender still busy delivering finds them when it comes back.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._pending = 0

    def announce(self) -> None:
        with self._cond:
            self._pending += 1
            self._cond.notify()

    def wait(self, timeout: float) -> bool:
        """True when emails were announced; False after `timeout` without any (time to poll)."""
        with self._cond:
            if self._cond.wait_for(lambda: self._pending, timeout):
                self._pending = 0
                return True
            return False


_due = _DueSignal()
_DUE = "crm_email_due"


def _announce_due(session: Session) -> None:
    after_commit(session, _due.announce, once_per=_DUE)


def _count(session: Session, outcome: str) -> None:
    """Count an outcome (crm_emails_total) when the transaction that records it commits: a rolled-back one
    recorded nothing."""
    after_commit(session, EMAILS.labels(SOURCE, outcome).inc)


# --- the sender ------------------------------------------------------------------------------------------------

@dataclass
class Claim:
    """What one sender took: a plain copy, so nothing lazy is read outside a transaction."""
    id: str
    token: str
    outgoing: mailer.Outgoing
    document_id: str | None
    document_sha256: str | None
    due_at: datetime  # when it became sendable: the time until a sender starts it is the senders' backlog


def sender_loop(settings, db, ctx, stop_event):
    """The worker's senders: CRM_EMAIL_SENDERS threads deliver due emails until the worker stops.

    Sending is mostly waiting (the PDF fetch, the SMTP exchange, commits), so a few senders in parallel keep
    the queue short; their claims never overlap (see the module docstring).
    """
    helpers = [threading.Thread(target=_send_until, args=(settings, db, stop_event, False), daemon=True,
                                name=f"email-sender-{n}") for n in range(1, max(1, settings.email_senders))]
    for helper in helpers:
        helper.start()
    _send_until(settings, db, stop_event, True)
    for helper in helpers:
        helper.join(SENDER_JOIN_SECONDS)


def _send_until(settings, db, stop_event, with_housekeeping: bool):
    next_housekeeping = 0.0
    # Kept from batch to batch: while emails keep coming, the relay sees one session per sender instead of a
    # connection and EHLO per email. That was half of the sender's CPU per email, and relays limit connections.
    connection = mailer.SmtpConnection(settings)
    try:
        while not stop_event.is_set():
            try:
                if with_housekeeping and time.monotonic() >= next_housekeeping:
                    housekeeping(db)
                    next_housekeeping = time.monotonic() + HOUSEKEEPING_INTERVAL
                claimed = send_due(settings, db, connection=connection)
            except Exception:  # database away or a bug: log, keep the thread alive, try again shortly
                log.exception("notifications: sending emails failed")
                claimed = 0
            if claimed < BATCH:  # the queue was drained when we claimed: wait for news (or poll for retries due)
                _due.wait(POLL_INTERVAL)
            connection.close_if_idle(SMTP_KEEP_SECONDS)
    finally:
        connection.close()


def housekeeping(db) -> None:
    """Attach PDFs a handler race left unattached; fail emails whose PDF or sender never came back."""
    with db.session() as session:
        attach_waiting(session)
        _fail_stale(session)


def send_due(settings, db, limit: int = BATCH, connection: mailer.SmtpConnection | None = None) -> int:
    """Claim and deliver up to `limit` due emails over one SMTP connection (`connection`, kept by the caller, or
    one for this batch); returns how many were tried."""
    with db.autocommit() as session:  # the claim is one UPDATE … RETURNING
        claims = _claim(session, settings, limit)
    if not claims:
        return 0
    owned = connection is None
    connection = connection or mailer.SmtpConnection(settings)
    try:
        for claim in claims:
            _deliver(settings, db, claim, connection)
    finally:
        if owned:
            connection.close()
    return len(claims)


def _locking(session, query):
    return query if session.bind.dialect.name == "sqlite" else query.with_for_update(skip_locked=True)


def _fail_stale(session: Session) -> None:
    now = utcnow()
    waited = now - timedelta(seconds=WAIT_FOR_DOCUMENT)
    for email in session.execute(_locking(session, select(Email).where(
            Email.status == WAITING, Email.created_at < waited).limit(50))).scalars():
        fail(session, email, "The PDF was not rendered in time; the email was not sent.")
    for email in session.execute(_locking(session, select(Email).where(
            Email.status == SENDING, Email.lease_until < now).limit(50))).scalars():
        if email.smtp_started_at is None:
            # The sender stopped before talking to the SMTP server: nothing went out, try again (unless the
            # contract was cancelled meanwhile: withdraw() could not reach a row being sent).
            if departments.is_cancelled(session, email.contract_id):
                _give_up(email, WITHDRAWN)
                continue
            email.status, email.lease_until, email.claim_token, email.next_attempt_at = QUEUED, None, None, now
        else:
            fail(session, email, "The sender stopped during the SMTP exchange; the email may or may not have "
                                 "arrived and was not sent again, to avoid a duplicate.")


def _claim(session: Session, settings, limit: int) -> list[Claim]:
    """Lease up to `limit` due emails in one UPDATE … RETURNING (the queue pattern: the inner SELECT skips rows
    another sender holds, on PostgreSQL)."""
    now = utcnow()
    rows = session.execute(_claim_statement(session.get_bind().dialect.name), {
        "now": now, "batch": limit, "lease": now + LEASE,
        "token": str(uuid.uuid4()),  # one per claim: it tells this sender's lease from a later one
    }).all()
    return [Claim(id=row.id, token=row.claim_token, document_id=row.document_id, document_sha256=row.document_sha256,
                  due_at=as_utc(row.next_attempt_at),
                  outgoing=mailer.Outgoing(id=row.id, message_id=row.message_id, mail_from=settings.mail_from,
                                           to=list(row.to), cc=list(row.cc or []), reply_to=row.reply_to,
                                           subject=row.subject, body=row.body, attachment_name=row.attachment_name))
            for row in sorted(rows, key=lambda row: row.next_attempt_at)]


# The sender's statements are plain Core, built once: each runs for every email, and an ORM-enabled UPDATE
# built per call cost twice what it does this way.
_NOW = bindparam("now", type_=_EMAILS.c.next_attempt_at.type)


@functools.lru_cache(maxsize=None)
def _claim_statement(dialect_name: str):
    e = _EMAILS
    due = (select(e.c.id).where(e.c.status == QUEUED, e.c.next_attempt_at <= _NOW)
           .order_by(e.c.next_attempt_at).limit(bindparam("batch")))
    if dialect_name != "sqlite":
        due = due.with_for_update(skip_locked=True)
    return (update(e).where(e.c.id.in_(due.scalar_subquery()))
            .values(status=SENDING, claim_token=bindparam("token"), lease_until=bindparam("lease"),
                    attempts=e.c.attempts + 1, first_attempt_at=func.coalesce(e.c.first_attempt_at, _NOW),
                    smtp_started_at=None)
            .returning(e.c.id, e.c.claim_token, e.c.message_id, e.c.to, e.c.cc, e.c.reply_to, e.c.subject, e.c.body,
                       e.c.attachment_name, e.c.document_id, e.c.document_sha256, e.c.next_attempt_at))


_MARK_STARTED = (update(_EMAILS)
                 .where(_EMAILS.c.id == bindparam("email_id"), _EMAILS.c.claim_token == bindparam("token"),
                        _EMAILS.c.status == SENDING)
                 .values(smtp_started_at=bindparam("started")))
# Recorded even if our lease was taken over meanwhile: the message did go out. RETURNING also makes a second
# recording (a retry after a lost commit) a no-op.
_MARK_SENT = (update(_EMAILS).where(_EMAILS.c.id == bindparam("email_id"), _EMAILS.c.status != SENT)
              .values(status=SENT, sent_at=bindparam("sent"), lease_until=None, claim_token=None,
                      last_error=bindparam("error"))
              .returning(_EMAILS.c.contract_id, _EMAILS.c.quote_id, _EMAILS.c.to, _EMAILS.c.cc, _EMAILS.c.message_id,
                         _EMAILS.c.document_id, _EMAILS.c.attempts))


def _deliver(settings, db, claim: Claim, connection: mailer.SmtpConnection | None = None) -> None:
    started = time.monotonic()
    EMAIL_WAIT_SECONDS.labels(SOURCE).observe(max(0.0, (utcnow() - claim.due_at).total_seconds()))
    try:
        _attempt(settings, db, claim, connection)
    finally:
        EMAIL_SEND_SECONDS.labels(SOURCE).observe(time.monotonic() - started)


def _attempt(settings, db, claim: Claim, connection: mailer.SmtpConnection | None) -> None:
    try:
        if claim.document_id:
            claim.outgoing.attachment = fetch_pdf(settings, claim.document_id, claim.document_sha256)
        message = mailer.render(claim.outgoing)  # an unusable address fails here, before the SMTP exchange starts
        refused = mailer.deliver(settings, claim.outgoing, before_data=lambda: _start_data(db, claim),
                                 message=message, connection=connection)
    except LeaseLost:
        return  # the lease ran out and the row moved on: another attempt owns it now
    except mailer.DeliveryFailed as exc:
        if exc.relay_login:  # every email fails alike until the operator fixes the settings: say so loudly
            log.error("notifications: email %s not sent: %s", claim.id, exc)
        _record_failure(db, claim, str(exc), exc.permanent)
        return
    except Exception as exc:  # a bug must not leave the row leased forever: it counts as a failed attempt
        log.exception("notifications: email %s", claim.id)
        _record_failure(db, claim, f"{type(exc).__name__}: {exc}", False)
        return
    _record_sent_retrying(db, claim, refused)


def _record_sent_retrying(db, claim: Claim, refused: list[str]) -> None:
    """The server has the message: recording that must outlast a database hiccup, or it would read "maybe sent"."""
    for delay in RECORD_SENT_RETRIES + (None,):
        try:
            _record_sent(db, claim, refused)
            return
        except OperationalError as exc:  # database away or out of connections; within the lease, so nobody else acts
            if delay is None:
                raise
            log.warning("notifications: email %s was sent; recording it failed (%s); again in %ss", claim.id,
                        " ".join(str(exc.orig or exc).split())[:200], delay)
            time.sleep(delay)


def fetch_pdf(settings, document_id: str, sha256: str | None) -> bytes:
    """The stored PDF, checked against the sha256 it was announced with: read from the document store when this
    process sees it (one host, or its volume mounted), else fetched from the documents service."""
    if sha256:
        data = DocumentStore(settings.documents_dir).read_verified(sha256)
        if data is not None:
            return data
    try:
        reply = ServiceClient(settings, "documents", timeout=10).get(
            f"/api/v1/documents/{quote(document_id, safe='')}/content", token=system_token(settings))
    except Unavailable as exc:
        raise mailer.DeliveryFailed(f"The PDF could not be fetched: {exc.message}")
    if reply.status != 200:
        raise mailer.DeliveryFailed(f"The PDF could not be fetched (documents answered {reply.status}).")
    if sha256 and hashlib.sha256(reply.body).hexdigest() != sha256:
        raise mailer.DeliveryFailed("The PDF fetched does not match the sha256 it was rendered with.")
    return reply.body


class LeaseLost(Exception):
    """This sender's claim on the email is no longer valid: it must not send the message."""


def _start_data(db, claim: Claim) -> None:
    # Committed before DATA: from here on a crash means "maybe sent" (see the module docstring).
    if not _mark_started(db, claim):
        raise LeaseLost(claim.id)


def _mark_started(db, claim: Claim) -> bool:
    with db.autocommit() as session:  # one UPDATE
        return session.execute(_MARK_STARTED, {"email_id": claim.id, "token": claim.token,
                                               "started": utcnow()}).rowcount == 1


def _record_sent(db, claim: Claim, refused: list[str]) -> None:
    with db.session() as session:
        sent = session.execute(_MARK_SENT, {
            "email_id": claim.id, "sent": utcnow(),
            "error": f"Refused by the server: {', '.join(refused)}" if refused else None}).first()
        if sent is None:
            return
        _count(session, "sent")
        emit(session, SOURCE, "email.sent", {
            "email_id": claim.id, "contract_id": sent.contract_id, "quote_id": sent.quote_id, "to": sent.to,
            "cc": sent.cc, "message_id": sent.message_id, "document_id": sent.document_id,
            "attempts": sent.attempts, "refused": refused,
        }, correlation_id=sent.contract_id or sent.quote_id)


def _record_failure(db, claim: Claim, error: str, permanent: bool) -> None:
    with db.session() as session:
        email = session.execute(select(Email).where(Email.id == claim.id).with_for_update()).scalar_one()
        if email.status != SENDING or email.claim_token != claim.token:
            return  # the lease expired and the row moved on; this attempt's outcome no longer matters
        if departments.is_cancelled(session, email.contract_id):
            # Cancelled while this attempt was under way (withdraw() leaves a row being sent alone): not tried
            # again, or the customer would get the contract hours later, once the relay is back.
            _give_up(email, WITHDRAWN)
            return
        first = as_utc(email.first_attempt_at)
        delay = None if permanent else retry_delay(email.attempts, (utcnow() - first).total_seconds())
        if delay is None:
            log.warning("notifications: email %s failed for good after %d attempt%s: %s", email.id, email.attempts,
                        "" if email.attempts == 1 else "s", error)
            fail(session, email, error)
            return
        log.info("notifications: email %s attempt %d failed (%s); next in %ss", email.id, email.attempts, error,
                 delay)
        email.status, email.last_error = QUEUED, error[:2000]
        email.lease_until = email.claim_token = email.smtp_started_at = None
        email.next_attempt_at = utcnow() + timedelta(seconds=delay)
        _count(session, "retry")
        if (utcnow() - first).total_seconds() >= DELAY_NOTICE_AFTER:
            _report_delay(session, email, error, give_up_at(first))


def _report_delay(session: Session, email: Email, error: str, until: datetime) -> None:
    """Tell the salesperson, once per email, that it has not gone yet and is still being retried."""
    correlation = email.contract_id or email.quote_id
    text = department_text("email_delayed", email.company_language, "sales", document=email.kind,
                           number=email.number, to=", ".join(email.to) or "—", error=error[:300],
                           until=business_time(until).strftime("%Y-%m-%d %H:%M"))
    if departments.post(session, department="sales", type="email.delayed", reason="email_delayed", text=text,
                        contract=departments.contract_ref(email.contract_id, email.number, email.customer_name),
                        lines=[], source_key=f"email-delayed:{email.id}", recipient_id=email.owner_id,
                        correlation_id=correlation) is None:
        return  # told already
    emit(session, SOURCE, "email.delayed", {
        "email_id": email.id, "contract_id": email.contract_id, "quote_id": email.quote_id, "to": email.to,
        "cc": email.cc, "error": email.last_error, "attempts": email.attempts, "retry_until": iso(until),
    }, correlation_id=correlation)
