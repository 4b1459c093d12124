"""The gateway's record of other services' events: stock status, reserved quantities and the timeline.

On SQLite and PostgreSQL: the timeline's insert-if-the-contract-exists is one statement spelled per dialect."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from crmkit.db import Database
from crmkit.messaging.envelope import Envelope
from crmkit.models import KIT_TABLES
from services.contracts.handlers import HANDLERS
from services.contracts.models import TABLES, Contract, ContractLine, Customer, TimelineEntry, User
from support.handlers import run_handler


@pytest.fixture
def db(db_url):
    database = Database(db_url, tables=KIT_TABLES + TABLES)
    database.create_all()
    with database.session() as session:
        session.add(User(id="u1", username="alice", password_hash="x", role="sales"))
        session.flush()
        session.add(Customer(id="c1", name="Acme", owner="u1"))
    yield database
    database.dispose()


def contract(db, stock_status="pending", warnings=None) -> str:
    with db.session() as session:
        row = Contract(id="k1", number="HT-2026-000001", customer_id="c1", customer_snapshot={}, status="confirmed",
                       subtotal=D(0), tax_total=D(0), total=D(0), stock_status=stock_status,
                       warnings=warnings or [], owner_id="u1", created_by="u1",
                       created_at=datetime.now(timezone.utc))
        row.lines = [ContractLine(line_no=n, product_code=f"P{n}", name="x", unit="pc", quantity=D(4),
                                  unit_price=D(1), tax_rate=D(0), amount=D(4), tax_amount=D(0)) for n in (1, 2)]
        session.add(row)
    return "k1"


def handle(db, type_: str, data: dict, event_id: str | None = None) -> bool:
    envelope = Envelope(type=type_, source="inventory", data=data, correlation_id=data.get("contract_id"))
    envelope.id = event_id or envelope.id
    return run_handler(db, HANDLERS, envelope)


def state(db, contract_id: str):
    with db.session() as session:
        row = session.get(Contract, contract_id)
        reserved = {line.line_no: line.reserved for line in row.lines}
        timeline = session.execute(select(TimelineEntry.type).where(TimelineEntry.contract_id == contract_id)).scalars()
        return row.stock_status, row.warnings, reserved, list(timeline)


RESERVED = {"contract_id": "k1", "lines": [{"line_no": 1, "product_code": "P1", "requested": "4", "reserved": "4"},
                                           {"line_no": 2, "product_code": "P2", "requested": "4", "reserved": "4"}]}


def test_stock_reserved_marks_the_contract_and_each_line_and_clears_old_warnings(db):
    contract(db, stock_status="short", warnings=[{"code": "stock_shortage", "product_code": "P2"}])
    assert handle(db, "stock.reserved", RESERVED)
    assert state(db, "k1") == ("reserved", [], {1: D(4), 2: D(4)}, ["stock.reserved"])


def test_stock_reserved_after_the_contract_released_its_stock_only_joins_the_timeline(db):
    contract(db, stock_status="released")
    assert handle(db, "stock.reserved", RESERVED)
    assert state(db, "k1") == ("released", [], {1: D(0), 2: D(0)}, ["stock.reserved"])


def test_stock_reserved_for_an_unknown_contract_is_skipped_and_writes_nothing(db):
    contract(db)
    assert not handle(db, "stock.reserved", dict(RESERVED, contract_id="nope"))
    assert state(db, "k1") == ("pending", [], {1: D(0), 2: D(0)}, [])


def test_an_event_of_a_known_contract_joins_its_timeline_once(db):
    contract(db)
    sent = {"contract_id": "k1", "to": ["buyer@example.cn"]}
    assert handle(db, "email.sent", sent, event_id="e-1")
    assert handle(db, "email.sent", sent, event_id="e-1")  # a copy: handled, nothing added
    assert handle(db, "department.notified", {"contract_id": "k1", "department": "warehouse"})
    assert state(db, "k1")[3] == ["email.sent", "department.notified"]
    with db.session() as session:
        summaries = session.execute(select(TimelineEntry.summary).order_by(TimelineEntry.id)).scalars().all()
    assert summaries == ["Email sent to buyer@example.cn", "Department warehouse notified"]


def test_an_event_of_an_unknown_contract_is_skipped_and_writes_nothing(db):
    contract(db)
    assert not handle(db, "email.sent", {"contract_id": "nope", "to": ["buyer@example.cn"]})
    with db.session() as session:
        assert session.execute(select(TimelineEntry)).first() is None


def test_a_rendered_contract_pdf_is_linked_to_its_contract(db):
    contract(db)
    rendered = {"kind": "contract", "owner_id": "k1", "contract_id": "k1", "document_id": "doc-7", "size": 2048}
    assert handle(db, "document.rendered", rendered)
    assert not handle(db, "document.rendered", dict(rendered, contract_id="nope", owner_id="nope"))
    with db.session() as session:
        assert session.get(Contract, "k1").document_id == "doc-7"
    assert state(db, "k1")[3] == ["document.rendered"]
