"""Lists a sales manager and finance read at month's end: contracts signed on given days (the company's days, not
UTC's), installments falling due on given days."""
from __future__ import annotations

import sqlite3


def fields_of(response) -> dict:
    return response.json["error"]["fields"]


def signed_at(embedded, contract_id: str, utc_text: str) -> None:
    """Stands in for the day the contract was signed: the API sets confirmed_at to now."""
    with sqlite3.connect(embedded.var / "contracts.sqlite") as conn:
        conn.execute("UPDATE contracts SET confirmed_at = ? WHERE id = ?", (utc_text, contract_id))


def test_contracts_signed_on_given_days_and_installments_due_on_given_days(embedded):
    api = embedded.api
    api.product("BOX", stock=100, price="100.00", tax_rate="0")
    customer = api.customer()
    october, november, draft = (api.contract(customer["id"], [("BOX", 1)], confirm=c) for c in (True, True, False))
    # 23:30 on 31 October in Shanghai, and 00:30 on 1 November there (16:30 UTC on 31 October).
    signed_at(embedded, october["id"], "2026-10-31 15:30:00.000000")
    signed_at(embedded, november["id"], "2026-10-31 16:30:00.000000")

    def listed(**params):
        reply = api.get("/api/v1/contracts", params=params)
        assert reply.status_code == 200, reply
        return {c["id"] for c in reply.json["items"]}

    assert listed(confirmed_from="2026-11-01", confirmed_to="2026-11-01") == {november["id"]}
    assert listed(confirmed_to="2026-10-31") == {october["id"]}
    assert listed(confirmed_from="2026-10-31", status="confirmed") == {october["id"], november["id"]}
    assert draft["id"] not in listed(confirmed_from="2000-01-01")  # a draft is signed on no day
    # The ends of the calendar are bounds like any other (a date there is beyond what a timestamp holds).
    assert listed(confirmed_from="0001-01-01", confirmed_to="9999-12-31") == {october["id"], november["id"]}
    assert listed(confirmed_to="0001-01-01") == set() and listed(confirmed_from="9999-12-31") == set()
    backwards = api.get("/api/v1/contracts", params={"confirmed_from": "2026-11-30", "confirmed_to": "2026-11-01"})
    assert backwards.status_code == 422 and "confirmed_to" in fields_of(backwards), backwards
    assert "confirmed_from" in fields_of(api.get("/api/v1/contracts", params={"confirmed_from": "November"}))

    plan = api.post(f"/api/v1/contracts/{november['id']}/receivables-plan", json={"installments": [
        {"label": "预付款", "percent": "30", "due_date": "2026-12-01"},
        {"label": "中期款", "percent": "30", "due_date": "2026-12-07"},
        {"label": "尾款", "percent": "40", "due_date": "2026-12-08"}]})
    assert plan.status_code == 201, plan

    def due(**params):
        reply = api.get("/api/v1/receivables", params=params)
        assert reply.status_code == 200, reply
        return [r["label"] for r in reply.json["items"]]

    assert due(due_from="2026-12-01", due_to="2026-12-07") == ["预付款", "中期款"]
    assert due(due_from="2026-12-08", status="open") == ["尾款"]
    assert due(due_from="0001-01-01", due_to="9999-12-31") == ["预付款", "中期款", "尾款"]
    wrong = api.get("/api/v1/receivables", params={"due_from": "2026-12-08", "due_to": "2026-12-01"})
    assert wrong.status_code == 422 and "due_to" in fields_of(wrong), wrong
