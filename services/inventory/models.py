"""Inventory tables: products with stock counters, the stock ledger and per-contract reservations."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crmkit.db import Base
from crmkit.money import PRICE_PLACES
from crmkit.timeutil import utcnow

QTY = Numeric(18, 3)
MONEY = Numeric(18, 2)
PRICE = Numeric(18, PRICE_PLACES)


class Product(Base):
    __tablename__ = "products"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(32))
    unit_price: Mapped[Decimal] = mapped_column(PRICE)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    # Who is asked for more when a contract is short of it: made in house, or bought in (a distributor's goods).
    replenished_by: Mapped[str] = mapped_column(String(16), default="production", server_default="production")
    # Counters kept right by conditional updates under a row lock, so no query sums the ledger.
    on_hand: Mapped[Decimal] = mapped_column(QTY, default=Decimal(0))
    reserved: Mapped[Decimal] = mapped_column(QTY, default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StockMove(Base):
    """The stock ledger: every change of on_hand or reserved, with its reason and contract."""
    __tablename__ = "stock_moves"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product_code: Mapped[str] = mapped_column(ForeignKey("products.code"))
    kind: Mapped[str] = mapped_column(String(16))  # received, adjusted, reserved, released, shipped
    quantity: Mapped[Decimal] = mapped_column(QTY)
    reason: Mapped[str] = mapped_column(String(500), default="")
    contract_id: Mapped[str | None] = mapped_column(String(36))
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_stock_moves_product", "product_code", "id"),
                      Index("ix_stock_moves_contract", "contract_id"))


class Reservation(Base):
    """What one contract line asked for, what is held for it, and what has shipped."""
    __tablename__ = "reservations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contract_id: Mapped[str] = mapped_column(String(36))
    contract_number: Mapped[str] = mapped_column(String(32), default="")
    line_no: Mapped[int] = mapped_column(Integer)
    product_code: Mapped[str] = mapped_column(ForeignKey("products.code"))
    requested: Mapped[Decimal] = mapped_column(QTY)
    reserved: Mapped[Decimal] = mapped_column(QTY, default=Decimal(0))
    shipped: Mapped[Decimal] = mapped_column(QTY, default=Decimal(0))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active, released
    confirmed_seq: Mapped[int] = mapped_column(Integer, default=0)  # first confirmed, first served
    delivery_date: Mapped[date | None] = mapped_column(Date)
    __table_args__ = (UniqueConstraint("contract_id", "line_no", name="uq_reservation_line"),
                      Index("ix_reservations_waiting", "product_code", "status", "confirmed_seq"))


class SupplyRequest(Base):
    """A production or procurement request raised for a shortage."""
    __tablename__ = "supply_requests"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    department: Mapped[str] = mapped_column(String(16))
    contract_id: Mapped[str] = mapped_column(String(36))
    product_code: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[Decimal] = mapped_column(QTY)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, cancelled (its contract was)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_supply_requests_contract", "contract_id", "status"),)


TABLES = [Product.__table__, StockMove.__table__, Reservation.__table__, SupplyRequest.__table__]
