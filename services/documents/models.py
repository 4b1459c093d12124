"""Documents tables: one row per distinct PDF of an owner, and the last rendering failure of an owner."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import Base
from crmkit.timeutil import utcnow


class Document(Base):
    """A rendered PDF; the bytes live in the content-addressed store under its sha256."""
    __tablename__ = "documents"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    owner_id: Mapped[str] = mapped_column(String(64))  # the contract, quote or delivery note it prints
    number: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer, default=1)  # 1, 2, … per (kind, owner) as its content changes
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A re-render of identical content reuses the row and only moves this, so "latest" is the last rendered.
    rendered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (UniqueConstraint("kind", "owner_id", "sha256", name="uq_documents_owner_content"),
                      Index("ix_documents_owner", "kind", "owner_id", "rendered_at"))


class DocumentFailure(Base):
    """The last deterministic rendering failure of an owner, so readers stop waiting for a PDF that won't come."""
    __tablename__ = "document_failures"
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    error: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


TABLES = [Document.__table__, DocumentFailure.__table__]
