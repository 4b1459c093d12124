"""The scheduler's failure isolation, default plans from settings, racing delivery notes, pause and resume."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

from services.contracts import recurring
from services.contracts.fulfilment_models import RecurringSchedule
from support.infra import company_date, wait_for


def in_parallel(calls):
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def timeline_types(api, contract_id) -> list[str]:
    return [e["type"] for e in api.get(f"/api/v1/contracts/{contract_id}/timeline", params={"limit": 200})
            .json["items"]]


def monthly(api, source_id, start="2031-01-31"):
    r = api.post("/api/v1/recurring-contracts", json={"source_contract_id": source_id, "interval": "monthly",
                                                      "start_date": start})
    assert r.status_code == 201, r
    return r.json


def test_a_failing_schedule_neither_stops_the_others_nor_is_disabled(embedded, monkeypatch):
    api = embedded.api
    api.product("BOX", stock=5, price="5.00")
    customer = api.customer()
    source, other = api.contract(customer["id"], [("BOX", 1)]), api.contract(customer["id"], [("BOX", 2)])
    bad, good = monthly(api, source["id"]), monthly(api, other["id"])
    original = recurring.generate

    def flaky(session, row, run_on):
        if row.id == bad["id"]:
            raise RuntimeError("the source's price list is being edited")
        return original(session, row, run_on)

    monkeypatch.setattr(recurring, "generate", flaky)
    for _ in range(2):
        run = api.post("/api/v1/admin/scheduler/run", json={"as_of": "2031-02-15"}).json
        assert [(f["schedule_id"], f["run_on"]) for f in run["failed"]] == [(bad["id"], "2031-01-31")]
        assert "price list" in run["failed"][0]["error"]
    assert [r["run_on"] for r in api.get(f"/api/v1/recurring-contracts/{good['id']}").json["runs"]] == [
        "2031-01-31", "2031-02-28"]
    failing = api.get(f"/api/v1/recurring-contracts/{bad['id']}").json
    assert (failing["status"], failing["next_run_on"], failing["runs"]) == ("active", "2031-01-31", [])
    assert "price list" in failing["last_error"]
    # The salesperson is told once per failing period, not on every tick of the timer.
    assert timeline_types(api, source["id"]).count("recurring.failed") == 1

    monkeypatch.undo()
    run = api.post("/api/v1/admin/scheduler/run", json={"as_of": "2031-02-15"}).json
    assert run["failed"] == [] and [(g["schedule_id"], g["run_on"]) for g in run["generated"]] == [
        (bad["id"], "2031-01-31"), (bad["id"], "2031-02-28")]
    recovered = api.get(f"/api/v1/recurring-contracts/{bad['id']}").json
    assert recovered["last_error"] is None and len(recovered["runs"]) == 2


def test_a_plan_without_a_body_comes_from_the_settings(embedded):
    api = embedded.api
    api.product("BOX", stock=5, price="100.00", tax_rate="0")
    customer = api.customer()
    contract = api.contract(customer["id"], [("BOX", 3)], confirm=True)
    plan = f"/api/v1/contracts/{contract['id']}/receivables-plan"
    none = api.post(plan)
    assert none.status_code == 422 and "installments" in none.json["error"]["fields"], none

    settings = api.get("/api/v1/settings").json
    settings["default_installments"] = [{"label": "定金", "percent": "100"}]  # no due date
    # Refused when written, naming the field, rather than stored and failing the plan that would use them.
    refused = api.put("/api/v1/settings", json=settings)
    assert refused.status_code == 422 and "default_installments.0.due_date" in refused.json["error"]["fields"]
    assert api.get("/api/v1/settings").json["default_installments"] == []

    settings["default_installments"] = [
        {"label": "定金", "percent": "33.33", "due_days_after": {"event": "signing", "days": 10}},
        {"label": "尾款", "percent": "66.67", "due_days_after": {"event": "delivery", "days": 15}}]
    assert api.put("/api/v1/settings", json=settings).status_code == 200
    made = api.post(plan)
    assert made.status_code == 201, made
    items = made.json["items"]
    assert [(i["amount"], i["due_date"]) for i in items][1] == ("200.01", None)  # 300 × 66.67% + the cent
    assert items[0]["amount"] == "99.99"
    # Shipping starts the clock of the installment tied to delivery.
    wait_for(lambda: api.get(f"/api/v1/contracts/{contract['id']}").json["stock_status"] == "reserved",
             message="reserved")
    note = api.post(f"/api/v1/contracts/{contract['id']}/delivery-notes").json
    shipped = api.post(f"/api/v1/delivery-notes/{note['id']}/ship").json
    dated = api.get(f"/api/v1/contracts/{contract['id']}/receivables").json["items"][1]
    ship_day = company_date(shipped["shipped_at"])
    assert shipped["ship_date"] == ship_day.isoformat()
    assert dated["due_date"] == (ship_day + timedelta(days=15)).isoformat()


def test_two_notes_racing_for_the_same_goods_cannot_both_win(embedded):
    api = embedded.api
    api.product("BOX", stock=10, price="5.00")
    customer = api.customer()
    contract = api.contract(customer["id"], [("BOX", 10)], confirm=True)
    wait_for(lambda: api.get(f"/api/v1/contracts/{contract['id']}").json["stock_status"] == "reserved",
             message="reserved")
    url = f"/api/v1/contracts/{contract['id']}/delivery-notes"
    body = {"lines": [{"product_code": "BOX", "quantity": "6"}]}
    replies = in_parallel([lambda: api.post(url, json=body), lambda: api.post(url, json=body)])
    assert sorted(r.status_code for r in replies) == [201, 422], replies
    # The same Idempotency-Key answers the same note instead of making a second one.
    key = {"Idempotency-Key": "dn-1"}
    first = api.post(url, json={"lines": [{"product_code": "BOX", "quantity": "1"}]}, headers=key)
    again = api.post(url, json={"lines": [{"product_code": "BOX", "quantity": "1"}]}, headers=key)
    assert first.status_code == 201 and again.json["id"] == first.json["id"]


def test_resume_skips_the_periods_that_fell_due_while_paused():
    row = RecurringSchedule(interval="monthly", every=1, start_date=date(2031, 1, 31), end_date=None,
                            status="active")
    recurring.advance(row, date(2031, 1, 31))
    assert (row.next_run_on, row.next_due_on) == (date(2031, 2, 28), date(2031, 2, 1))
    recurring.pause(row, date(2031, 2, 10))
    recurring.resume(row, date(2031, 5, 10))
    assert (row.status, row.next_run_on, row.next_due_on) == ("active", date(2031, 5, 31), date(2031, 5, 1))
    # Periods already due before the pause are still caught up.
    recurring.pause(row, date(2031, 6, 10))
    recurring.resume(row, date(2031, 8, 10))
    assert row.next_run_on == date(2031, 5, 31)
    ended = RecurringSchedule(interval="weekly", every=1, start_date=date(2031, 1, 1), end_date=date(2031, 1, 10),
                              status="active")
    recurring.advance(ended, date(2031, 1, 8))
    assert (ended.status, ended.next_run_on) == ("ended", None)


def test_a_generated_contract_confirmed_later_names_its_period_up_to_the_schedules_end(embedded):
    """Every second week from 2031-01-06 to 2031-02-10: runs on 01-06, 01-20 and 02-03; the last period ends with
    the schedule, not two weeks on. A draft confirmed by hand later says the same as one confirmed at once."""
    import json
    import sqlite3

    api = embedded.api
    api.product("BOX", stock=50, price="5.00")
    source = api.contract(api.customer()["id"], [("BOX", 1)])
    made = api.post("/api/v1/recurring-contracts", json={
        "source_contract_id": source["id"], "interval": "weekly", "every": 2, "start_date": "2031-01-06",
        "end_date": "2031-02-10"})
    assert made.status_code == 201, made
    run = api.post("/api/v1/admin/scheduler/run", json={"as_of": "2031-03-01"}).json
    runs = {g["run_on"]: g["contract_id"] for g in run["generated"]}
    assert sorted(runs) == ["2031-01-06", "2031-01-20", "2031-02-03"]
    for run_on in ("2031-02-03", "2031-01-06"):
        assert api.post(f"/api/v1/contracts/{runs[run_on]}/confirm").status_code == 200
    with sqlite3.connect(embedded.var / "contracts.sqlite") as conn:
        bodies = [json.loads(body)["data"] for (body,) in conn.execute(
            "SELECT body FROM outbox WHERE routing_key = 'contract.confirmed'")]
    periods = {data["contract_id"]: data["period"] for data in bodies}
    assert periods[runs["2031-01-06"]] == {"from": "2031-01-06", "until": "2031-01-19", "interval": "weekly",
                                           "every": 2, "source_number": source["number"]}
    assert periods[runs["2031-02-03"]]["until"] == "2031-02-10"
