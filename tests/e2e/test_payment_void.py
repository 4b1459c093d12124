"""A payment entered by mistake is voided: the installment owes it again, a completed contract is delivered
again, finance hears of it, and the payment stays listed with the reason."""
from __future__ import annotations

from datetime import timedelta

import pytest

from support.infra import company_date, wait_for


@pytest.fixture(params=["embedded", "cluster"])
def system(request):
    return request.getfixturevalue(request.param)


def test_a_payment_entered_by_mistake_is_voided(system):
    api = system.api
    api.product("VOID-1", stock=10, price="100.00")
    alice = api.user("void-alice", "sales")
    bob = api.user("void-bob", "sales")
    finance = api.user("void-fin", "department", department="finance")
    contract = alice.contract(alice.customer()["id"], [("VOID-1", 2)])
    cid = contract["id"]
    assert alice.post(f"/api/v1/contracts/{cid}/confirm").status_code == 200
    wait_for(lambda: alice.get(f"/api/v1/contracts/{cid}").json["stock_status"] == "reserved", timeout=60,
             message="stock reserved")
    today = company_date(alice.get(f"/api/v1/contracts/{cid}").json["confirmed_at"])
    planned = alice.post(f"/api/v1/contracts/{cid}/receivables-plan", json={"installments": [
        {"label": "全款", "percent": "100", "due_date": (today + timedelta(days=30)).isoformat()}]})
    assert planned.status_code == 201, planned
    [installment] = planned.json["items"]
    note = alice.post(f"/api/v1/contracts/{cid}/delivery-notes", json={})
    assert note.status_code == 201, note
    assert alice.post(f"/api/v1/delivery-notes/{note.json['id']}/ship").status_code == 200
    paid = alice.post(f"/api/v1/receivables/{installment['id']}/payments",
                      json={"amount": installment["amount"], "reference": "TT-WRONG"})
    assert paid.status_code == 201 and paid.json["status"] == "paid", paid
    assert alice.get(f"/api/v1/contracts/{cid}").json["status"] == "completed"
    [payment] = paid.json["payments"]
    path = f"/api/v1/receivables/{installment['id']}/payments/{payment['id']}/void"

    # Bad requests first: nothing changes.
    assert "reason" in alice.post(path, json={}).json["error"]["fields"]
    assert alice.post(path, json={"reason": ""}).status_code == 422
    assert bob.post(path, json={"reason": "not mine"}).status_code == 404
    assert finance.post(path, json={"reason": "department users read inboxes"}).status_code == 404
    assert alice.post(f"/api/v1/receivables/{installment['id']}/payments/no-such/void",
                      json={"reason": "x"}).status_code == 404

    voided = alice.post(path, json={"reason": "booked on the wrong contract"})
    assert voided.status_code == 200, voided
    assert (voided.json["status"], voided.json["paid_amount"], voided.json["outstanding"]) == (
        "open", "0.00", installment["amount"])
    [listed] = voided.json["payments"]
    assert listed["void_reason"] == "booked on the wrong contract" and listed["voided_at"]
    assert alice.get(f"/api/v1/contracts/{cid}").json["status"] == "delivered"  # no longer paid in full
    again = alice.post(path, json={"reason": "twice"})
    assert again.status_code == 409, again
    timeline = [e["type"] for e in alice.get(f"/api/v1/contracts/{cid}/timeline").json["items"]]
    assert "payment.voided" in timeline

    told = wait_for(lambda: [m for m in finance.get("/api/v1/departments/finance/notifications").json["items"]
                             if m["reason"] == "payment_voided"], timeout=60, message="finance told")
    assert "已作废（booked on the wrong contract）" in told[0]["text"] and told[0]["contract"]["id"] == cid

    # The plan can be changed again (only real payments freeze it), and the right payment completes it.
    assert alice.post(f"/api/v1/contracts/{cid}/receivables-plan", json={"installments": [
        {"label": "全款", "percent": "100", "due_date": (today + timedelta(days=10)).isoformat()}]}).status_code == 201
    [fresh] = alice.get(f"/api/v1/contracts/{cid}/receivables").json["items"]
    assert alice.post(f"/api/v1/receivables/{fresh['id']}/payments",
                      json={"amount": fresh["amount"], "reference": "TT-RIGHT"}).json["status"] == "paid"
    assert alice.get(f"/api/v1/contracts/{cid}").json["status"] == "completed"
