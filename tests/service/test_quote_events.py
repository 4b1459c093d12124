"""The quotes service against a real database: the events it records and its reactions to others'."""
from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from crmkit.db import Database
from crmkit.messaging.envelope import Envelope
from crmkit.models import KIT_TABLES, OutboxMessage
from services.quotes import lifecycle, rules
from support.handlers import run_handler
from services.quotes.handlers import HANDLERS
from services.quotes.models import TABLES, Quote

CUSTOMER = {"id": "cust-1", "name": "Acme Ltd", "email": "buyer@acme.example", "language": "en",
            "address": "1 Main St", "contact_person": "Ann", "phone": "123", "owner": "user-alice", "kind": "company"}
PRODUCTS = {"VALVE": {"code": "VALVE", "name": "Gate valve", "unit": "pc", "unit_price": "480.00",
                      "tax_rate": "0.13", "currency": "CNY", "available": "10"}}


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'quotes.sqlite'}", tables=KIT_TABLES + TABLES)
    database.create_all()
    yield database
    database.dispose()


def make_quote(db) -> str:
    priced = rules.price_lines([{"product_code": "VALVE", "quantity": D("5"), "discount": D("0.05")}], PRODUCTS,
                               "CNY")
    with db.session() as session:
        quote = lifecycle.create(session, customer=CUSTOMER, priced=priced, created_by="user-alice",
                                 valid_until=date.today() + timedelta(days=7), currency="CNY",
                                 payment_terms="Net 30", delivery_date=None, notes=None)
        return quote.id


def events(db, type_: str) -> list[dict]:
    with db.session() as session:
        rows = session.execute(select(OutboxMessage).where(OutboxMessage.routing_key == type_)
                               .order_by(OutboxMessage.seq)).scalars()
        return [json.loads(row.body) for row in rows]


def handle(db, type_: str, data: dict, correlation_id=None) -> bool:
    """Run a handler in one transaction as the worker does; False when it skipped."""
    return run_handler(db, HANDLERS, Envelope(type=type_, source="test", data=data, correlation_id=correlation_id))


def test_sending_records_everything_a_document_and_an_email_need(db):
    quote_id = make_quote(db)
    with db.session() as session:
        quote = session.get(Quote, quote_id)
        lifecycle.send(session, quote, {"name": "Seller Co", "language": "zh-CN"},
                       {"id": "user-alice", "username": "alice", "email": "alice@example.cn"}, CUSTOMER)
    [event] = events(db, "quote.sent")
    data = event["data"]
    assert (event["source"], event["correlation_id"], event["version"]) == ("quotes", quote_id, 1)
    assert data["number"].startswith("QT-") and data["quote_id"] == quote_id
    assert data["customer"] == {k: CUSTOMER[k] for k in lifecycle.SNAPSHOT_FIELDS} and data["language"] == "en"
    assert data["company"]["name"] == "Seller Co" and data["owner"]["email"] == "alice@example.cn"
    assert data["lines"] == [{"line_no": 1, "product_code": "VALVE", "name": "Gate valve", "unit": "pc",
                              "quantity": "5", "unit_price": "480.00", "discount": "0.05", "tax_rate": "0.13",
                              "amount": "2280.00", "tax_amount": "296.40"}]
    assert (data["subtotal"], data["tax_total"], data["total"]) == ("2280.00", "296.40", "2576.40")
    assert data["total_in_words"] == "Two Thousand Five Hundred Seventy-Six Yuan and Forty Cents Only"
    assert data["valid_until"] == (date.today() + timedelta(days=7)).isoformat()

    with db.session() as session:
        lifecycle.accept(session, session.get(Quote, quote_id))
    [accepted] = events(db, "quote.accepted")
    assert accepted["data"]["quote_id"] == quote_id and accepted["data"]["total"] == "2576.40"


def test_a_contract_made_from_the_quote_converts_it_once(db):
    quote_id = make_quote(db)
    assert handle(db, "contract.created", {"contract_id": "contract-1", "quote_id": quote_id})
    assert handle(db, "contract.created", {"contract_id": "contract-1", "quote_id": quote_id})
    assert not handle(db, "contract.created", {"contract_id": "contract-2", "quote_id": quote_id})
    assert not handle(db, "contract.created", {"contract_id": "contract-3", "quote_id": None})
    assert not handle(db, "contract.created", {"contract_id": "contract-4", "quote_id": "elsewhere"})
    with db.session() as session:
        quote = session.get(Quote, quote_id)
        assert (quote.status, quote.contract_id) == ("converted", "contract-1")


def test_a_rendered_quote_pdf_is_remembered(db):
    quote_id = make_quote(db)
    assert not handle(db, "document.rendered", {"kind": "contract", "document_id": "doc-0", "contract_id": "x"})
    assert handle(db, "document.rendered", {"kind": "quote", "document_id": "doc-1", "quote_id": quote_id})
    assert handle(db, "document.rendered", {"kind": "quote", "document_id": "doc-2"}, correlation_id=quote_id)
    with db.session() as session:
        assert session.get(Quote, quote_id).document_id == "doc-2"
