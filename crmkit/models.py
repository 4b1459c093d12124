"""Tables every service keeps in its own database: outbox, inbox, idempotency keys, number sequences."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import Base
from crmkit.timeutil import utcnow


class OutboxMessage(Base):
    """An event committed with the change that caused it, waiting for the relay to publish it."""
    __tablename__ = "outbox"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    exchange: Mapped[str] = mapped_column(String(64))
    routing_key: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # created_at: housekeeping removes published rows past the retention period (crmkit/housekeeping.py).
    __table_args__ = (Index("ix_outbox_unpublished", "published", "seq"), Index("ix_outbox_created_at", "created_at"))


class InboxMessage(Base):
    """An event id a consumer has handled, written in the same transaction as the handler's effect."""
    __tablename__ = "inbox"
    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    handled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_inbox_handled_at", "handled_at"),)


class IdempotencyKey(Base):
    """The first response to a POST carrying an Idempotency-Key, kept per user."""
    __tablename__ = "idempotency_keys"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)


class Sequence(Base):
    """A named counter (document numbers per prefix and year), incremented under a row lock."""
    __tablename__ = "sequences"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


KIT_TABLES = [OutboxMessage.__table__, InboxMessage.__table__, IdempotencyKey.__table__, Sequence.__table__]
