"""How a contract ends: completed once delivered and paid in full; cancelled, with what was still to be
collected cancelled too (what was received stays recorded)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from crmkit.timeutil import business_date
from support.infra import wait_for

PLAN = {"installments": [{"label": "定金", "percent": "30", "due_date": "2031-01-10"},
                         {"label": "尾款", "percent": "70", "due_date": "2031-02-10"}]}


def confirmed(api, customer_id, quantity=10):
    contract = api.contract(customer_id, [("CRATE", quantity)], confirm=True)
    wait_for(lambda: api.get(f"/api/v1/contracts/{contract['id']}").json["stock_status"] == "reserved",
             message="stock reserved")
    return contract


def status(api, contract_id) -> str:
    return api.get(f"/api/v1/contracts/{contract_id}").json["status"]


def pay(api, receivable, amount=None, **extra):
    return api.post(f"/api/v1/receivables/{receivable['id']}/payments",
                    json={"amount": amount or receivable["amount"], "reference": "银行转账",
                          **extra})


def ship_everything(api, contract_id):
    note = api.post(f"/api/v1/contracts/{contract_id}/delivery-notes").json
    assert api.post(f"/api/v1/delivery-notes/{note['id']}/ship").status_code == 200


def timeline(api, contract_id) -> dict:
    return {e["type"]: e["summary"] for e in api.get(f"/api/v1/contracts/{contract_id}/timeline",
                                                     params={"limit": 200}).json["items"]}


def closing(api):
    api.product("CRATE", stock=100, price="20.00", tax_rate="0")
    customer = api.customer()["id"]

    # Delivered first, then paid: completed with the last payment.
    first = confirmed(api, customer)
    deposit, balance = api.post(f"/api/v1/contracts/{first['id']}/receivables-plan", json=PLAN).json["items"]
    ship_everything(api, first["id"])
    assert status(api, first["id"]) == "delivered"
    assert pay(api, deposit).status_code == 201 and status(api, first["id"]) == "delivered"
    assert pay(api, balance, "100.00").status_code == 201 and status(api, first["id"]) == "delivered"
    assert pay(api, balance, "40.00").status_code == 201
    assert status(api, first["id"]) == "completed"
    assert "paid in full" in timeline(api, first["id"])["contract.completed"]

    # Paid first, then delivered: completed with the shipment.
    second = confirmed(api, customer)
    for item in api.post(f"/api/v1/contracts/{second['id']}/receivables-plan", json=PLAN).json["items"]:
        assert pay(api, item).status_code == 201
    assert status(api, second["id"]) == "confirmed"
    ship_everything(api, second["id"])
    assert status(api, second["id"]) == "completed"

    # Without a plan nothing says what is owed: delivered it stays.
    third = confirmed(api, customer)
    ship_everything(api, third["id"])
    assert status(api, third["id"]) == "delivered"
    listed = api.get("/api/v1/contracts", params={"status": "completed"}).json
    assert sorted(c["id"] for c in listed["items"]) == sorted([first["id"], second["id"]])

    # Cancelled after its deposit came in: the balance is no longer due, the deposit stays recorded.
    fourth = confirmed(api, customer)
    deposit, balance = api.post(f"/api/v1/contracts/{fourth['id']}/receivables-plan", json=PLAN).json["items"]
    assert pay(api, deposit).status_code == 201
    assert pay(api, balance, "10.00").status_code == 201
    assert api.post(f"/api/v1/contracts/{fourth['id']}/cancel").status_code == 200
    items = api.get(f"/api/v1/contracts/{fourth['id']}/receivables").json["items"]
    assert [(i["status"], i["paid_amount"], i["outstanding"]) for i in items] == [
        ("paid", "60.00", "0.00"), ("cancelled", "10.00", "0.00")]
    assert timeline(api, fourth["id"])["receivables.cancelled"] == (
        "1 installment cancelled (130.00 no longer due); 70.00 already received stays recorded")
    open_ids = {r["id"] for r in api.get("/api/v1/receivables", params={"status": "open", "limit": 200}).json["items"]}
    assert balance["id"] not in open_ids
    cancelled = api.get("/api/v1/receivables", params={"status": "cancelled"}).json
    assert [r["id"] for r in cancelled["items"]] == [balance["id"]]
    run = api.post("/api/v1/admin/scheduler/run", json={"as_of": "2031-06-01"})
    assert run.status_code == 200
    assert api.get(f"/api/v1/receivables/{balance['id']}").json["status"] == "cancelled"  # never overdue


def test_embedded(embedded):
    closing(embedded.api)


@pytest.mark.e2e
def test_on_rabbitmq_and_postgresql(cluster):
    closing(cluster.api)


def test_a_payment_is_recorded_once_received_not_ahead(embedded):
    api = embedded.api
    api.product("CRATE", stock=10, price="20.00")
    contract = confirmed(api, api.customer()["id"], 1)
    [item] = api.post(f"/api/v1/contracts/{contract['id']}/receivables-plan", json={"installments": [
        {"label": "全款", "percent": "100", "due_date": "2031-01-10"}]}).json["items"]
    today = business_date()  # the company's (Asia/Shanghai), up to a day ahead of UTC's
    later = (today + timedelta(days=1)).isoformat()
    refused = pay(api, item, "1.00", paid_on=later)
    assert refused.status_code == 422 and refused.json["error"]["fields"] == {"paid_on": [f"{later} is in the future."]}
    assert pay(api, item, "1.00", paid_on=today.isoformat()).status_code == 201
