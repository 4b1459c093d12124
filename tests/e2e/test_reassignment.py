"""A customer handed to another salesperson takes all of its records along: contracts and recurring schedules
at once, quotes (kept by the quotes service) by the customer.reassigned event."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from crmkit.messaging.envelope import Envelope
from services.quotes.handlers import HANDLERS as QUOTE_HANDLERS
from services.quotes.models import TABLES as QUOTE_TABLES, Quote
from support.handlers import run_handler
from support.infra import wait_for

VALID_UNTIL = (date.today() + timedelta(days=30)).isoformat()


def quote(sales, customer_id) -> dict:
    made = sales.post("/api/v1/quotes", json={"customer_id": customer_id, "valid_until": VALID_UNTIL,
                                              "lines": [{"product_code": "LAMP", "quantity": "2"}]})
    assert made.status_code == 201, made
    return made.json


def reassigns_everything(admin):
    admin.product("LAMP", stock=10, price="30.00")
    alice, bob = admin.user("alice"), admin.user("bob")
    customer = alice.customer()
    before = quote(alice, customer["id"])
    contract = alice.contract(customer["id"], [("LAMP", 1)])
    schedule = alice.post("/api/v1/recurring-contracts", json={
        "source_contract_id": contract["id"], "interval": "monthly", "start_date": "2031-01-01"}).json

    bob_id = bob.get("/api/v1/users/me").json["id"]
    assert admin.patch(f"/api/v1/customers/{customer['id']}", json={"owner": bob_id}).status_code == 200

    assert bob.get(f"/api/v1/contracts/{contract['id']}").status_code == 200
    assert bob.get(f"/api/v1/recurring-contracts/{schedule['id']}").status_code == 200  # was 404
    assert alice.get(f"/api/v1/recurring-contracts/{schedule['id']}").status_code == 404
    assert alice.post(f"/api/v1/recurring-contracts/{schedule['id']}/pause").status_code == 404
    wait_for(lambda: bob.get(f"/api/v1/quotes/{before['id']}").status_code == 200,
             message="the quote follows its customer")  # was 404 for good
    assert alice.get(f"/api/v1/quotes/{before['id']}").status_code == 404
    assert alice.post(f"/api/v1/quotes/{before['id']}/send").status_code == 404  # she could still email it
    assert alice.get("/api/v1/quotes").json["total"] == 0
    after = quote(bob, customer["id"])
    assert {q["id"] for q in bob.get("/api/v1/quotes").json["items"]} == {before["id"], after["id"]}


def test_embedded(embedded):
    reassigns_everything(embedded.api)


@pytest.mark.e2e
def test_on_rabbitmq_and_postgresql(cluster):
    reassigns_everything(cluster.api)


def test_reassignments_handled_out_of_order_leave_the_latest_owner(make_db):
    db = make_db(QUOTE_TABLES)
    with db.session() as session:
        session.add(Quote(id="q-1", number="QT-2026-000001", customer_id="c-1", customer_snapshot={}, owner_id="alice",
                          owner_since=None, status="draft", valid_until=date(2031, 1, 1), subtotal=0, tax_total=0,
                          total=0, created_by="alice"))

    def reassigned(owner, at):
        return Envelope(type="customer.reassigned", source="contracts", occurred_at=at, correlation_id="c-1",
                        data={"customer_id": "c-1", "owner_id": owner})

    assert run_handler(db, QUOTE_HANDLERS, reassigned("carol", "2026-11-28T10:00:02Z"))
    assert run_handler(db, QUOTE_HANDLERS, reassigned("bob", "2026-11-28T10:00:01Z"))  # the earlier one, late
    with db.session() as session:
        assert session.get(Quote, "q-1").owner_id == "carol"
