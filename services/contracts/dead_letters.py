"""Dead letters kept where an operator can see them: every message crm.dead receives, and its replays."""
from __future__ import annotations

import hashlib
import json
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
    # crm.dead is delivered at least once too: a redelivered copy is the same dead letter, not a new one.
    __table_args__ = (UniqueConstraint("message_id", "original_queue", "dead_lettered_at", name="uq_dead_letter"),
                      Index("ix_dead_letters_listing", "dead_lettered_at", "id"))


TABLES = [DeadLetter.__table__]


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def _when(value) -> datetime:
    try:
        when = datetime.fromisoformat(_text(value).replace("Z", "+00:00"))
    except ValueError:
        return utcnow()  # a message pushed to crm.dead by hand, without the header
    return as_utc(when)


def record(body: bytes, headers: dict, properties: dict, session: Session) -> None:
    """The crm.dead consumer: keep the dead letter in the transaction whose commit acknowledges it."""
    try:
        envelope = json.loads(body)
    except ValueError:
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
    session.add(DeadLetter(
        id=str(uuid.uuid4()), message_id=message_id[:64],
        type=_text(envelope.get("type") or headers.get("x-original-routing-key") or properties.get("type"))[:128],
        original_queue=original_queue[:128], original_exchange=_text(headers.get("x-original-exchange"))[:64],
        consumer=_text(headers.get("x-consumer"))[:64], error=_text(headers.get("x-error")),
        # Header values may be AMQP types JSON lacks (timestamps, byte strings): kept as their text.
        headers=json.loads(json.dumps(headers, default=_text)), body=_text(body), dead_lettered_at=dead_lettered_at,
        recorded_at=utcnow()))


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
    # The default exchange ("") delivers straight to the queue named by the routing key, so only the consumer
    # that gave up sees the message again, not every service bound to its type. It keeps its envelope id: a
    # consumer that has handled it since finds the id in its inbox and does nothing.
    enqueue(session, "", letter.original_queue, letter.body, str(uuid.uuid4()))
    letter.replayed_at = utcnow()
    letter.replay_count = (letter.replay_count or 0) + 1
    session.flush()
    return letter
