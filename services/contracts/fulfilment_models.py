"""Tables of what follows a signed contract: delivery notes, receivables and payments, recurring schedules."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (Boolean, Date, DateTime, ForeignKey, Index, Integer, Numeric, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crmkit.db import Base
from crmkit.timeutil import utcnow

QTY = Numeric(18, 3)
MONEY = Numeric(18, 2)


class DeliveryNote(Base):
    """发货单: goods of one contract leaving together; open until shipped."""
    __tablename__ = "delivery_notes"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, shipped
    ship_date: Mapped[date | None] = mapped_column(Date)
    address: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lines: Mapped[list["DeliveryLine"]] = relationship(order_by="DeliveryLine.id", cascade="all, delete-orphan",
                                                       lazy="selectin")
    __table_args__ = (Index("ix_delivery_notes_contract", "contract_id", "status"),)


class DeliveryLine(Base):
    """How much of one contract line (by line_no) a delivery note carries."""
    __tablename__ = "delivery_lines"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_note_id: Mapped[str] = mapped_column(ForeignKey("delivery_notes.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    product_code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[Decimal] = mapped_column(QTY)


class Receivable(Base):
    """应收款: one installment of a contract's receivables plan."""
    __tablename__ = "receivables"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"))
    seq: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(100))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    due_date: Mapped[date | None] = mapped_column(Date)  # None while tied to a delivery that has not shipped
    due_event: Mapped[str | None] = mapped_column(String(16))  # signing, delivery (with due_days)
    due_days: Mapped[int | None] = mapped_column(Integer)
    paid_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    overdue_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # set once: one overdue event
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    payments: Mapped[list["Payment"]] = relationship(order_by="Payment.created_at", lazy="selectin")
    __table_args__ = (UniqueConstraint("contract_id", "seq", name="uq_receivable_seq"),
                      Index("ix_receivables_due", "status", "due_date"))


class Payment(Base):
    __tablename__ = "payments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    receivable_id: Mapped[str] = mapped_column(ForeignKey("receivables.id"))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    paid_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A payment entered by mistake is voided, not deleted: it stays listed, counting for nothing.
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    voided_by: Mapped[str | None] = mapped_column(String(36))
    void_reason: Mapped[str | None] = mapped_column(String(200))
    __table_args__ = (Index("ix_payments_receivable", "receivable_id"),)


class RecurringSchedule(Base):
    """A contract repeated on a cycle; next_run_on is the next period not yet generated, due from next_due_on."""
    __tablename__ = "recurring_schedules"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source_contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"))
    customer_id: Mapped[str] = mapped_column(String(36))
    owner_id: Mapped[str] = mapped_column(String(36))  # the customer's salesperson, as on the source contract
    interval: Mapped[str] = mapped_column(String(16))
    every: Mapped[int] = mapped_column(Integer, default=1)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    auto_confirm: Mapped[bool] = mapped_column(Boolean, default=False)
    send_to_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active, paused, ended
    next_run_on: Mapped[date | None] = mapped_column(Date)
    next_due_on: Mapped[date | None] = mapped_column(Date)  # when next_run_on's contract is generated
    paused_on: Mapped[date | None] = mapped_column(Date)
    last_error: Mapped[str | None] = mapped_column(Text)
    failed_run_on: Mapped[date | None] = mapped_column(Date)  # the period whose failure was last reported
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    runs: Mapped[list["RecurringRun"]] = relationship(order_by="RecurringRun.run_on", lazy="selectin")
    __table_args__ = (Index("ix_recurring_due", "status", "next_due_on"),
                      Index("ix_recurring_owner", "owner_id", "created_at"),
                      Index("ix_recurring_source", "source_contract_id"))


class RecurringRun(Base):
    """One generated period; the unique key is what makes a period happen once, whoever runs the scheduler."""
    __tablename__ = "recurring_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("recurring_schedules.id"))
    run_on: Mapped[date] = mapped_column(Date)
    contract_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (UniqueConstraint("schedule_id", "run_on", name="uq_recurring_run"),)


TABLES = [DeliveryNote.__table__, DeliveryLine.__table__, Receivable.__table__, Payment.__table__,
          RecurringSchedule.__table__, RecurringRun.__table__]
