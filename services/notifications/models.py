"""Notifications tables: emails and their delivery state, the PDFs they attach, department inboxes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import Base
from crmkit.timeutil import utcnow

# Email states. `waiting` has no PDF yet; `sending` is leased by one sender; the API shows both as queued.
WAITING, QUEUED, SENDING, SENT, FAILED = "waiting", "queued", "sending", "sent", "failed"


class Email(Base):
    """One email to send once: created by an event, delivered by the sender loop, retried with backoff."""
    __tablename__ = "notif_emails"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # What asked for it ("contract:<id>" for the automatic email, "request:<email id>" for a send):
    # unique, so a duplicate event or a re-rendered PDF can never queue a second email.
    request_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    first_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claim_token: Mapped[str | None] = mapped_column(String(36))
    # Set (and committed) just before DATA: a lease that expires after it means "maybe sent".
    smtp_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    to: Mapped[list] = mapped_column(JSON, default=list)
    cc: Mapped[list] = mapped_column(JSON, default=list)
    reply_to: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), default="contract")  # what the PDF is: contract, quote
    number: Mapped[str] = mapped_column(String(32), default="")
    contract_id: Mapped[str | None] = mapped_column(String(36))
    quote_id: Mapped[str | None] = mapped_column(String(36))
    document_owner_id: Mapped[str | None] = mapped_column(String(36))  # the contract or quote whose PDF to attach
    # Only a PDF rendered from then on is attached (a quote sent again: the PDF printed for this send).
    pdf_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    document_id: Mapped[str | None] = mapped_column(String(64))
    document_sha256: Mapped[str | None] = mapped_column(String(64))
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    owner_id: Mapped[str | None] = mapped_column(String(36))  # the salesperson: reads it, is told of a failure
    company_language: Mapped[str] = mapped_column(String(8), default="zh-CN")
    message_id: Mapped[str] = mapped_column(String(200))  # the Message-ID header, the same on every attempt
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_notif_emails_due", "status", "next_attempt_at"),
                      Index("ix_notif_emails_contract", "contract_id", "created_at"),
                      Index("ix_notif_emails_waiting", "document_owner_id", "status"))


class KnownDocument(Base):
    """A rendered PDF announced by document.rendered: what an email waiting for it attaches."""
    __tablename__ = "notif_documents"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[str] = mapped_column(String(36))  # the contract, quote, ... it renders
    sha256: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int | None] = mapped_column(Integer)
    rendered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_notif_documents_owner", "kind", "owner_id", "rendered_at"),)


class DepartmentMessage(Base):
    """A message in a department's HTTP inbox; the same message went to crm.department.<name>."""
    __tablename__ = "department_messages"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # source event id, department and recipient: one message per event and reader, whatever redelivers it
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    department: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(48))  # the event that caused it
    reason: Mapped[str] = mapped_column(String(32))
    recipient_id: Mapped[str | None] = mapped_column(String(36))  # a salesperson, for sales warnings
    contract_id: Mapped[str | None] = mapped_column(String(36))
    contract: Mapped[dict] = mapped_column(JSON, default=dict)
    lines: Mapped[list] = mapped_column(JSON, default=list)
    text: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    acked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acked_by: Mapped[str | None] = mapped_column(String(36))
    __table_args__ = (Index("ix_department_messages_inbox", "department", "acked_at", "occurred_at"),
                      Index("ix_department_messages_recipient", "department", "recipient_id", "occurred_at"),
                      # who was told about a contract, read when it is cancelled
                      Index("ix_department_messages_contract", "contract_id"))


class CancelledContract(Base):
    """A contract announced cancelled: a request to act on it that arrives later is not passed on."""
    __tablename__ = "notif_cancelled_contracts"
    contract_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    cancelled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


TABLES = [Email.__table__, KnownDocument.__table__, DepartmentMessage.__table__, CancelledContract.__table__]
