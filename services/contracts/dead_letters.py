"""Dead letters kept where an operator can see them: every message crm.dead receives, and its replays."""
from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import uuid
from datetime import datetime

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from crmkit.db import Base
from crmkit.errors import Conflict, NotFound
from crmkit.messaging import topology
from crmkit.messaging.outbox import enqueue
from crmkit.timeutil import as_utc, utcnow


class DeadLetter(Base):
    """A message some consumer gave up on, as crm.dead delivered it (body and headers verbatim)."""
    __tablename__ = "dead_letters"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(128))
    original_queue: Mapped[str] = mapped_column(String(128))
    original_exchange: Mapped[str] = mapped_column(String(64))
    consumer: Mapped[str] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict] = mapped_column(JSON)
    body: Mapped[str] = mapped_column(Text)
    dead_lettered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replay_count: Mapped[int] = mapped_column(Integer, default=0)
    # The contract the message was about (its data.contract_id), when it names one: what an operator asks first.
    contract_id: Mapped[str | None] = mapped_column(String(64))
    # crm.dead is delivered at least once too: a redelivered copy is the same dead letter, not a new one.
    __table_args__ = (UniqueConstraint("message_id", "original_queue", "dead_lettered_at", name="uq_dead_letter"),
                      Index("ix_dead_letters_listing", "dead_lettered_at", "id"),
                      Index("ix_dead_letters_contract", "contract_id"))


TABLES = [DeadLetter.__table__]

# What PostgreSQL text (and json) cannot hold: NUL, and a surrogate left unpaired (no UTF-8 encoding exists for
# it; a str holds a pair only as one character). A letter that failed to store would go back to crm.dead and
# be tried again for good, so each is written as its escape instead.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Where a letter says what was escaped, among its headers (a JSON column: no migration needed).
ESCAPED_HEADER = "x-crm-escaped"
BODY_NOTE = ("The body holds bytes a text column cannot keep (a NUL byte or bytes that are not UTF-8): `body` shows "
             "them backslash-escaped, and body_base64 is the body exactly as delivered.")


def _storable(text: str) -> str:
    """The text with NUL and unpaired surrogates written as \\u escapes, so any database column holds it."""
    return _UNSTORABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="backslashreplace")
    return _storable("" if value is None else str(value))


def _json_value(value):
    """A header value as JSON the column holds: text escaped as above, AMQP types JSON lacks as their text."""
    if isinstance(value, dict):
        return {_text(key): _json_value(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(inner) for inner in value]
    if value is None or isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return _text(value)  # str, bytes, timestamps, decimals, NaN


def _body(body: bytes) -> tuple[str, bool]:
    """The body as the text column keeps it, and whether that is an escaped copy rather than the body itself."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        return text, False
    # Bytes that are not UTF-8 read as \xff, NUL as \x00: readable, and the same notation for both.
    return body.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00"), True


def _when(value) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(_text(value).replace("Z", "+00:00")))
    except (ValueError, OverflowError):  # pushed by hand without the header, or a time UTC cannot hold
        return utcnow()


def body_is_escaped(letter: DeadLetter) -> bool:
    """True when the stored body is an escaped copy (the original bytes are in the letter's headers)."""
    marked = (letter.headers or {}).get(ESCAPED_HEADER)
    return isinstance(marked, dict) and "body" in (marked.get("fields") or [])


def contract_of(envelope: dict) -> str | None:
    """data.contract_id of an envelope, when it is one: a body that is no envelope names no contract."""
    data = envelope.get("data")
    value = data.get("contract_id") if isinstance(data, dict) else None
    return _text(value)[:64] or None if isinstance(value, str) else None


def record(body: bytes, headers: dict, properties: dict, session: Session) -> None:
    """The crm.dead consumer: keep the dead letter in the transaction whose commit acknowledges it."""
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes: kept as it came
        envelope = None
    envelope = envelope if isinstance(envelope, dict) else {}
    # The envelope id is what consumers' inboxes know; a replayed copy carries the same one in its body.
    message_id = _text(envelope.get("id") or properties.get("message_id")) or hashlib.sha256(body).hexdigest()
    original_queue = _text(headers.get("x-original-queue"))
    dead_lettered_at = _when(headers.get("x-dead-lettered-at"))
    if session.execute(select(DeadLetter.id).where(
            DeadLetter.message_id == message_id[:64], DeadLetter.original_queue == original_queue[:128],
            DeadLetter.dead_lettered_at == dead_lettered_at)).first():
        return
    stored_body, escaped = _body(body)
    stored_headers = _json_value(headers)
    if escaped:
        # Said in the letter itself: an operator (and replay) must not take the escaped copy for the message.
        stored_headers[ESCAPED_HEADER] = {"fields": ["body"], "note": BODY_NOTE,
                                          "body_base64": base64.b64encode(body).decode("ascii")}
    session.add(DeadLetter(
        id=str(uuid.uuid4()), message_id=message_id[:64],
        type=_text(envelope.get("type") or headers.get("x-original-routing-key") or properties.get("type"))[:128],
        original_queue=original_queue[:128], original_exchange=_text(headers.get("x-original-exchange"))[:64],
        consumer=_text(headers.get("x-consumer"))[:64], error=_text(headers.get("x-error")),
        headers=stored_headers, body=stored_body, dead_lettered_at=dead_lettered_at, recorded_at=utcnow(),
        contract_id=contract_of(envelope)))


def replayable_queues() -> set[str]:
    """Queues a replay may target: every consumer queue of the topology, never crm.dead itself."""
    return {q.name for q in topology.all_queues()} - {topology.DEAD_QUEUE.name}


def replay(session: Session, dead_letter_id: str) -> DeadLetter:
    """Put the original body back on its original queue, through the outbox (committed with the mark)."""
    letter = session.execute(select(DeadLetter).where(DeadLetter.id == dead_letter_id)
                             .with_for_update()).scalar_one_or_none()
    if letter is None:
        raise NotFound("No such dead letter.")
    if letter.original_queue not in replayable_queues():
        raise Conflict(f"The original queue {letter.original_queue!r} is not one this system consumes; "
                       "there is nowhere to put the message back.")
    if body_is_escaped(letter):
        # The outbox keeps text, and the escaped copy is not the message. Nor could the original succeed: a NUL
        # byte or bytes that are not UTF-8 are no JSON our consumers read, so it would only fail again.
        raise Conflict(f"The body is not text (see headers[{ESCAPED_HEADER!r}]): it cannot go back unchanged, and "
                       "no consumer here could read it; publish a corrected message instead.",
                       {"body": ["Holds a NUL byte or bytes that are not UTF-8."]})
    # The default exchange ("") delivers straight to the queue named by the routing key, so only the consumer
    # that gave up sees the message again, not every service bound to its type. It keeps its envelope id: a
    # consumer that has handled it since finds the id in its inbox and does nothing.
    enqueue(session, "", letter.original_queue, letter.body, str(uuid.uuid4()))
    letter.replayed_at = utcnow()
    letter.replay_count = (letter.replay_count or 0) + 1
    session.flush()
    return letter
