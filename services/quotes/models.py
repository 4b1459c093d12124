"""Quotes tables: a quote with its frozen customer snapshot, and its priced lines."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crmkit.db import Base
from crmkit.money import PRICE_PLACES
from crmkit.timeutil import utcnow

QTY = Numeric(18, 3)
MONEY = Numeric(18, 2)
PRICE = Numeric(18, PRICE_PLACES)
RATE = Numeric(6, 4)


class Quote(Base):
    __tablename__ = "quotes"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    # name, email, language, address, contact_person, phone as the gateway gave them at creation
    customer_snapshot: Mapped[dict] = mapped_column(JSON)
    owner_id: Mapped[str] = mapped_column(String(36))  # the customer's salesperson
    # As of when owner_id holds: a customer.reassigned that occurred earlier changes nothing (events of two
    # reassignments may be handled out of order).
    owner_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Stored states are draft, sent, accepted, converted, rejected; expired is derived from valid_until.
    status: Mapped[str] = mapped_column(String(16), default="draft")
    valid_until: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    subtotal: Mapped[Decimal] = mapped_column(MONEY)
    tax_total: Mapped[Decimal] = mapped_column(MONEY)
    total: Mapped[Decimal] = mapped_column(MONEY)
    payment_terms: Mapped[str | None] = mapped_column(Text)
    delivery_date: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)
    contract_id: Mapped[str | None] = mapped_column(String(36))
    document_id: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rejected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    converted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lines: Mapped[list["QuoteLine"]] = relationship(back_populates="quote", order_by="QuoteLine.line_no",
                                                   cascade="all, delete-orphan", lazy="selectin")
    __table_args__ = (Index("ix_quotes_owner", "owner_id", "created_at"),
                      Index("ix_quotes_customer", "customer_id", "created_at"),
                      Index("ix_quotes_status", "status", "valid_until"))


class QuoteLine(Base):
    __tablename__ = "quote_lines"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    quote_id: Mapped[str] = mapped_column(ForeignKey("quotes.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    product_code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[Decimal] = mapped_column(QTY)
    unit_price: Mapped[Decimal] = mapped_column(PRICE)
    discount: Mapped[Decimal] = mapped_column(RATE, default=Decimal(0))
    tax_rate: Mapped[Decimal] = mapped_column(RATE)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    tax_amount: Mapped[Decimal] = mapped_column(MONEY)
    quote: Mapped[Quote] = relationship(back_populates="lines")
    __table_args__ = (UniqueConstraint("quote_id", "line_no", name="uq_quote_line"),)


TABLES = [Quote.__table__, QuoteLine.__table__]
