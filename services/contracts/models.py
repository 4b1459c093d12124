"""Gateway-owned tables: users, company settings, customers, contracts with their lines and timeline."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, Numeric, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crmkit.db import Base
from crmkit.money import PRICE_PLACES
from crmkit.timeutil import utcnow

QTY = Numeric(18, 3)
MONEY = Numeric(18, 2)
PRICE = Numeric(18, PRICE_PLACES)


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Raised when the password, role or department changes or the account is disabled: tokens carry the value
    # they were issued with, and the gateway refuses older ones (users.SessionCheck).
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SettingsRow(Base):
    """Company settings as one JSON document (key 'company'), changed only by admins."""
    __tablename__ = "company_settings"
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="company")
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(500))
    contact_person: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")
    owner: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    __table_args__ = (Index("ix_customers_owner", "owner", "created_at"),)


class Contract(Base):
    __tablename__ = "contracts"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    customer_snapshot: Mapped[dict] = mapped_column(JSON)
    quote_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    recurring_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(24), default="draft")
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    subtotal: Mapped[Decimal] = mapped_column(MONEY)
    tax_total: Mapped[Decimal] = mapped_column(MONEY)
    total: Mapped[Decimal] = mapped_column(MONEY)
    delivery_date: Mapped[date | None] = mapped_column(Date)
    payment_terms: Mapped[str | None] = mapped_column(Text)
    notify_departments: Mapped[list] = mapped_column(JSON, default=list)
    send_to_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    stock_status: Mapped[str] = mapped_column(String(16), default="pending")
    warnings: Mapped[list] = mapped_column(JSON, default=list)
    document_id: Mapped[str | None] = mapped_column(String(64))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))  # the customer's salesperson
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    confirmed_seq: Mapped[int | None] = mapped_column(Integer)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lines: Mapped[list["ContractLine"]] = relationship(back_populates="contract", order_by="ContractLine.line_no",
                                                      cascade="all, delete-orphan", lazy="selectin")
    __table_args__ = (Index("ix_contracts_owner", "owner_id", "created_at"),
                      Index("ix_contracts_customer", "customer_id", "created_at"),
                      Index("ix_contracts_status", "status", "created_at"))


class ContractLine(Base):
    __tablename__ = "contract_lines"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    product_code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[Decimal] = mapped_column(QTY)
    unit_price: Mapped[Decimal] = mapped_column(PRICE)
    discount: Mapped[Decimal] = mapped_column(Numeric(6, 4), default=Decimal(0))
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    tax_amount: Mapped[Decimal] = mapped_column(MONEY)
    reserved: Mapped[Decimal] = mapped_column(QTY, default=Decimal(0))
    delivered: Mapped[Decimal] = mapped_column(QTY, default=Decimal(0))
    contract: Mapped[Contract] = relationship(back_populates="lines")
    __table_args__ = (UniqueConstraint("contract_id", "line_no", name="uq_contract_line"),)


class TimelineEntry(Base):
    __tablename__ = "timeline"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contract_id: Mapped[str] = mapped_column(String(36))
    event_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    type: Mapped[str] = mapped_column(String(48))
    summary: Mapped[str] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("contract_id", "event_id", name="uq_timeline_event"),
                      Index("ix_timeline_contract", "contract_id", "at", "id"))


class EmailRequest(Base):
    """An email asked for with POST /contracts/{id}/send, so GET /emails/{id} answers before notifications has it."""
    __tablename__ = "email_requests"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contract_id: Mapped[str] = mapped_column(String(36), index=True)
    to: Mapped[list] = mapped_column(JSON, default=list)
    cc: Mapped[list] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(String(200))
    requested_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


TABLES = [User.__table__, SettingsRow.__table__, Customer.__table__, Contract.__table__, ContractLine.__table__,
          TimelineEntry.__table__, EmailRequest.__table__]
