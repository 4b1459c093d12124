"""Delivery notes, receivables and recurring contracts end to end through the gateway, in both modes."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import pytest

from support.infra import ROOT, company_date, wait_for
from support.pdf import pdf_text

SCHEDULER_AS_OF = "2031-04-15"


def fields_of(response) -> dict:
    assert response.headers.get("Content-Type", "").startswith("application/json"), response
    return response.json["error"].get("fields", {})


def product(api, code):
    p = api.get(f"/api/v1/products/{code}").json
    return p["on_hand"], p["reserved"]


def contract_status(api, contract_id):
    return api.get(f"/api/v1/contracts/{contract_id}").json["status"]


def timeline_types(api, contract_id) -> list[str]:
    return [e["type"] for e in api.get(f"/api/v1/contracts/{contract_id}/timeline", params={"limit": 200})
            .json["items"]]


def confirmed_contract(sales, customer_id, lines):
    contract = sales.contract(customer_id, lines)
    assert sales.post(f"/api/v1/contracts/{contract['id']}/confirm").status_code == 200
    wait_for(lambda: sales.get(f"/api/v1/contracts/{contract['id']}").json["stock_status"] == "reserved",
             message="stock reserved")
    return contract


def check_deliveries(api, sales, other, customer):
    contract = confirmed_contract(sales, customer["id"], [("PUMP-10", 10)])
    cid = contract["id"]
    assert product(api, "PUMP-10") == ("20", "10")

    # Deliver 4 of 10 and ship them: stock leaves once, the contract is partially delivered.
    created = sales.post(f"/api/v1/contracts/{cid}/delivery-notes",
                         json={"lines": [{"product_code": "PUMP-10", "quantity": "4"}], "address": "杭州市滨江区 1 号"})
    assert created.status_code == 201, created
    note = created.json
    assert re.fullmatch(r"DN-\d{4}-\d{6}", note["number"])
    assert (note["status"], note["contract_number"], note["address"]) == ("open", contract["number"], "杭州市滨江区 1 号")
    assert [(l["product_code"], l["quantity"], l["unit"]) for l in note["lines"]] == [("PUMP-10", "4", "台")]
    assert sales.get(f"/api/v1/delivery-notes/{note['id']}").json == note
    # 4 are on an open note: 7 more would exceed the 6 left.
    too_many = sales.post(f"/api/v1/contracts/{cid}/delivery-notes",
                          json={"lines": [{"product_code": "PUMP-10", "quantity": "7"}]})
    assert too_many.status_code == 422 and "lines.0.quantity" in fields_of(too_many), too_many
    shipped = sales.post(f"/api/v1/delivery-notes/{note['id']}/ship")
    assert shipped.status_code == 200 and shipped.json["status"] == "shipped", shipped
    assert contract_status(sales, cid) == "partially_delivered"
    wait_for(lambda: product(api, "PUMP-10") == ("16", "6"), message="4 taken out of stock")
    assert sales.post(f"/api/v1/delivery-notes/{note['id']}/ship").status_code == 409
    assert sales.get(f"/api/v1/contracts/{cid}").json["lines"][0]["delivered"] == "4"

    # 7 more is refused once delivered too; no lines means everything left: 6.
    refused = sales.post(f"/api/v1/contracts/{cid}/delivery-notes",
                         json={"lines": [{"product_code": "PUMP-10", "quantity": 7}]})
    assert refused.status_code == 422 and "6" in fields_of(refused)["lines.0.quantity"][0], refused
    rest = sales.post(f"/api/v1/contracts/{cid}/delivery-notes", json={})
    assert rest.status_code == 201 and rest.json["lines"][0]["quantity"] == "6", rest
    assert rest.json["address"] == customer["address"]
    nothing_left = sales.post(f"/api/v1/contracts/{cid}/delivery-notes")
    assert nothing_left.status_code == 409, nothing_left
    assert sales.post(f"/api/v1/delivery-notes/{rest.json['id']}/ship").status_code == 200
    assert contract_status(sales, cid) == "delivered"
    wait_for(lambda: product(api, "PUMP-10") == ("10", "0"), message="the other 6 taken out of stock")
    assert sales.post(f"/api/v1/contracts/{cid}/delivery-notes").status_code == 409
    types = timeline_types(sales, cid)
    assert types.count("delivery.created") == 2 and types.count("delivery.shipped") == 2
    notes = sales.get(f"/api/v1/contracts/{cid}/delivery-notes").json
    assert notes["total"] == 2 and {n["status"] for n in notes["items"]} == {"shipped"}

    # Another salesperson sees none of it.
    assert other.get(f"/api/v1/delivery-notes/{note['id']}").status_code == 404
    assert other.post(f"/api/v1/delivery-notes/{note['id']}/ship").status_code == 404
    assert other.post(f"/api/v1/contracts/{cid}/delivery-notes").status_code == 404
    return contract


def check_bad_deliveries(api, sales, customer):
    draft = sales.contract(customer["id"], [("PUMP-10", 1)])
    r = sales.post(f"/api/v1/contracts/{draft['id']}/delivery-notes")
    assert r.status_code == 409 and r.json["error"]["code"] == "conflict", r
    assert sales.post(f"/api/v1/contracts/{draft['id']}/cancel").status_code == 200
    assert sales.post(f"/api/v1/contracts/{draft['id']}/delivery-notes").status_code == 409
    live = confirmed_contract(sales, customer["id"], [("PUMP-10", 2)])
    for lines, field in (([{"product_code": "PUMP-10", "quantity": "-4"}], "lines.0.quantity"),
                         ([{"product_code": "PUMP-10", "quantity": "0"}], "lines.0.quantity"),
                         ([{"product_code": "PUMP-10", "quantity": 1.5}], "lines.0.quantity"),
                         ([{"product_code": "PUMP-10", "quantity": "lots"}], "lines.0.quantity"),
                         ([{"product_code": "NOPE", "quantity": "1"}], "lines.0.product_code"),
                         ([{"quantity": "1"}], "lines.0.product_code"),
                         ([], "lines"), ("PUMP-10", "lines")):
        r = sales.post(f"/api/v1/contracts/{live['id']}/delivery-notes", json={"lines": lines})
        assert r.status_code == 422 and field in fields_of(r), (lines, r)
    r = sales.post(f"/api/v1/contracts/{live['id']}/delivery-notes", json={"ship_date": "soon"})
    assert r.status_code == 422 and "ship_date" in fields_of(r)
    r = sales.post(f"/api/v1/contracts/{live['id']}/delivery-notes", data=b"{not json",
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json["error"]
    assert sales.get("/api/v1/delivery-notes/no-such-note").status_code == 404


def check_receivables(api, sales, other, contract):
    cid = contract["id"]
    # 10 × 12.50 + 13% tax = 141.25: 30% is 42.375 and 70% is 98.875, so the rounding cent goes to the last.
    assert contract["total"] == "141.25"
    bad = sales.post(f"/api/v1/contracts/{cid}/receivables-plan", json={"installments": [
        {"label": "预付款", "percent": "30", "due_days_after": {"event": "signing", "days": 0}},
        {"label": "尾款", "percent": "60", "due_date": "2031-01-01"}]})
    assert bad.status_code == 422 and "installments" in fields_of(bad) and "90" in bad.json["error"]["message"], bad
    both = sales.post(f"/api/v1/contracts/{cid}/receivables-plan", json={"installments": [
        {"label": "all", "percent": "100", "amount": "141.25", "due_date": "2031-01-01"}]})
    assert both.status_code == 422 and "installments.0.percent" in fields_of(both), both
    over = sales.post(f"/api/v1/contracts/{cid}/receivables-plan", json={"installments": [
        {"label": "a", "amount": "100.00", "due_date": "2031-01-01"},
        {"label": "b", "amount": "50.00", "due_date": "2031-02-01"}]})
    assert over.status_code == 422, over
    bad_event = sales.post(f"/api/v1/contracts/{cid}/receivables-plan", json={"installments": [
        {"label": "a", "percent": 100, "due_days_after": {"event": "birthday", "days": -1}}]})
    assert bad_event.status_code == 422 and {"installments.0.due_days_after.event",
                                             "installments.0.due_days_after.days"} <= set(fields_of(bad_event))

    first_plan = sales.post(f"/api/v1/contracts/{cid}/receivables-plan", json={"installments": [
        {"label": "全款", "percent": 100, "due_date": "2031-01-01"}]})
    assert first_plan.status_code == 201 and first_plan.json["total"] == 1, first_plan
    planned = sales.post(f"/api/v1/contracts/{cid}/receivables-plan", json={"installments": [
        {"label": "预付款", "percent": "30", "due_days_after": {"event": "signing", "days": 0}},
        {"label": "尾款", "percent": "70", "due_days_after": {"event": "delivery", "days": 30}}]})
    assert planned.status_code == 201, planned
    items = sales.get(f"/api/v1/contracts/{cid}/receivables").json["items"]
    assert [(r["seq"], r["amount"], r["status"], r["paid_amount"]) for r in items] == [
        (1, "42.38", "open", "0.00"), (2, "98.87", "open", "0.00")]
    assert sum(int(r["amount"].replace(".", "")) for r in items) == 14125
    first, second = items
    shipped_on = company_date(sales.get(f"/api/v1/contracts/{cid}/delivery-notes").json["items"][0]["shipped_at"])
    assert second["due_date"] == (shipped_on + timedelta(days=30)).isoformat()  # tied to the first shipment
    assert first["due_date"] == company_date(sales.get(f"/api/v1/contracts/{cid}").json["confirmed_at"]).isoformat()

    # Payments: someone else's receivable is not there; more than is due names the amount.
    assert other.post(f"/api/v1/receivables/{first['id']}/payments", json={"amount": "1.00"}).status_code == 404
    assert other.get(f"/api/v1/receivables/{first['id']}").status_code == 404
    for body, field in (({"amount": "-5"}, "amount"), ({"amount": "0"}, "amount"), ({}, "amount"),
                        ({"amount": "42.39"}, "amount"), ({"amount": "1.001"}, "amount"),
                        ({"amount": "1", "paid_on": "yesterday"}, "paid_on")):
        r = sales.post(f"/api/v1/receivables/{first['id']}/payments", json=body)
        assert r.status_code == 422 and field in fields_of(r), (body, r)
    partly = sales.post(f"/api/v1/receivables/{first['id']}/payments",
                        json={"amount": "40.00", "paid_on": "2026-01-05", "reference": "BANK-1"})
    assert partly.status_code == 201 and partly.json["status"] == "partially_paid", partly
    paid = sales.post(f"/api/v1/receivables/{first['id']}/payments", json={"amount": "2.38", "reference": "BANK-2"})
    assert (paid.json["status"], paid.json["paid_amount"], len(paid.json["payments"])) == ("paid", "42.38", 2)
    replan = sales.post(f"/api/v1/contracts/{cid}/receivables-plan", json={"installments": [
        {"label": "全款", "percent": 100, "due_date": "2031-01-01"}]})
    assert replan.status_code == 409, replan
    assert sales.post(f"/api/v1/receivables/{second['id']}/payments", json={"amount": "8.87"}).status_code == 201

    # The scheduler as of the day after the second's due date: overdue, one event, however often it runs.
    as_of = (date.fromisoformat(second["due_date"]) + timedelta(days=1)).isoformat()
    assert api.post("/api/v1/admin/scheduler/run", json={"as_of": second["due_date"]}).json["overdue"] == []
    run = api.post("/api/v1/admin/scheduler/run", json={"as_of": as_of})
    assert run.status_code == 200 and [o["id"] for o in run.json["overdue"]] == [second["id"]], run
    assert api.post("/api/v1/admin/scheduler/run", json={"as_of": as_of}).json["overdue"] == []
    statuses = [r["status"] for r in sales.get(f"/api/v1/contracts/{cid}/receivables").json["items"]]
    assert statuses == ["paid", "overdue"]
    overdue = sales.get("/api/v1/receivables", params={"status": "overdue", "customer_id": contract["customer_id"]})
    assert [r["id"] for r in overdue.json["items"]] == [second["id"]] and overdue.json["total"] == 1
    assert other.get("/api/v1/receivables", params={"status": "overdue"}).json["total"] == 0
    # Paying an overdue installment in part keeps it overdue; paying the rest makes it paid.
    assert sales.post(f"/api/v1/receivables/{second['id']}/payments",
                      json={"amount": "89.99"}).json["status"] == "overdue"
    overpaid = sales.post(f"/api/v1/receivables/{second['id']}/payments", json={"amount": "0.02"})
    assert overpaid.status_code == 422 and "0.01" in fields_of(overpaid)["amount"][0], overpaid
    assert sales.post(f"/api/v1/receivables/{second['id']}/payments",
                      json={"amount": "0.01"}).json["status"] == "paid"
    types = timeline_types(sales, cid)
    assert types.count("receivable.overdue") == 1 and types.count("receivable.paid") == 2
    assert types.count("receivables.planned") == 2
    # Each part payment is announced too (payment.recorded), to finance, with what is still due.
    assert types.count("payment.recorded") == 3

    def part_payments():
        inbox = api.get("/api/v1/departments/finance/notifications", params={"limit": 200}).json["items"]
        return [m for m in inbox if m["reason"] == "payment_recorded" and m["contract"]["id"] == cid]

    told = wait_for(lambda: len(part_payments()) == 3 and part_payments(), message="finance told of part payments")
    first_part = next(m for m in told if m["lines"][0]["receivable_id"] == first["id"])
    assert first_part["type"] == "payment.recorded"
    assert "40.00" in first_part["text"] and "2.38" in first_part["text"], first_part["text"]
    return as_of


def schedule(sales, source_id, **extra):
    r = sales.post("/api/v1/recurring-contracts", json={
        "source_contract_id": source_id, "interval": "monthly", "every": 1, "start_date": "2031-01-31", **extra})
    assert r.status_code == 201, r
    return r.json


def runs_of(api, schedule_id) -> list[tuple[str, str]]:
    return [(r["run_on"], r["contract_id"]) for r in api.get(f"/api/v1/recurring-contracts/{schedule_id}")
            .json["runs"]]


EXPECTED_RUNS = ["2031-01-31", "2031-02-28", "2031-03-31", "2031-04-30"]


def check_recurring(api, sales, other, customer, env, overdue_as_of):
    source = sales.contract(customer["id"], [("PUMP-10", 1)], payment_terms="月结 30 天")
    # Bad input first.
    for body, field in (({"interval": "daily"}, "interval"), ({"every": 0}, "every"), ({"every": "2"}, "every"),
                        ({"start_date": "2031-02-30"}, "start_date"), ({"end_date": "2030-01-01"}, "end_date"),
                        ({"start_date": "9999-12-31"}, "start_date"), ({"end_date": "9999-12-31"}, "end_date"),
                        ({"source_contract_id": "nope"}, "source_contract_id")):
        r = sales.post("/api/v1/recurring-contracts", json={
            "source_contract_id": source["id"], "interval": "monthly", "start_date": "2031-01-31", **body})
        assert r.status_code == 422 and field in fields_of(r), (body, r)
    assert other.post("/api/v1/recurring-contracts", json={
        "source_contract_id": source["id"], "interval": "monthly", "start_date": "2031-01-31"}).status_code == 422
    assert sales.post("/api/v1/admin/scheduler/run", json={"as_of": SCHEDULER_AS_OF}).status_code == 403
    assert api.post("/api/v1/admin/scheduler/run", json={"as_of": "someday"}).status_code == 422

    first = schedule(sales, source["id"], send_to_customer=False)
    assert (first["status"], first["next_run_on"], first["runs"]) == ("active", "2031-01-31", [])
    # Repeated twice (a double click, or another cycle while this one runs), the customer would get two contracts
    # a period: refused, naming the schedule that runs.
    twice = [sales.post("/api/v1/recurring-contracts", json={
        "source_contract_id": source["id"], "interval": interval, "start_date": "2031-01-31"})
        for interval in ("monthly", "quarterly")]
    for refused in twice:
        assert refused.status_code == 409 and first["id"] in fields_of(refused)["source_contract_id"][0], refused
    run = api.post("/api/v1/admin/scheduler/run", json={"as_of": SCHEDULER_AS_OF})
    assert run.status_code == 200 and run.json["failed"] == [] and run.json["overdue"] == [], run
    assert [g["run_on"] for g in run.json["generated"]] == EXPECTED_RUNS
    runs = runs_of(sales, first["id"])
    assert [r for r, _ in runs] == EXPECTED_RUNS
    got = sales.get(f"/api/v1/recurring-contracts/{first['id']}").json
    assert (got["next_run_on"], got["next_due_on"]) == ("2031-05-31", "2031-05-01")
    generated = sales.get(f"/api/v1/contracts/{runs[0][1]}").json
    assert (generated["recurring_id"], generated["status"], generated["total"], generated["payment_terms"]) == (
        first["id"], "draft", source["total"], "月结 30 天")
    assert [(l["product_code"], l["quantity"], l["unit_price"]) for l in generated["lines"]] == [
        ("PUMP-10", "1", "12.50")]
    # Run again: still four.
    again = api.post("/api/v1/admin/scheduler/run", json={"as_of": SCHEDULER_AS_OF})
    assert again.json["generated"] == [] and len(runs_of(sales, first["id"])) == 4

    # A second schedule, auto-confirmed, run by two processes and two HTTP requests at the same moment.
    second_source = sales.contract(customer["id"], [("PUMP-10", 1)], payment_terms="月结 30 天")
    second = schedule(sales, second_source["id"], auto_confirm=True)
    results = run_concurrently(api, env, SCHEDULER_AS_OF, processes=2, requests=2)
    total = sum(len([g for g in r["generated"] if g["schedule_id"] == second["id"]]) for r in results)
    assert total == 4, results
    runs = runs_of(sales, second["id"])
    assert [r for r, _ in runs] == EXPECTED_RUNS and len({c for _, c in runs}) == 4
    assert len(runs_of(sales, first["id"])) == 4
    recurring_contracts = sales.get("/api/v1/contracts", params={"customer_id": customer["id"], "limit": 200}).json
    by_schedule = [c for c in recurring_contracts["items"] if c["recurring_id"] == second["id"]]
    assert len(by_schedule) == 4 and {c["status"] for c in by_schedule} == {"confirmed"}
    wait_for(lambda: all(sales.get(f"/api/v1/contracts/{c['id']}").json["stock_status"] in ("reserved", "short")
                         for c in by_schedule), message="generated contracts reserved")
    # Each period's contract prints the period it covers and the contract it renews.
    for (run_on, contract_id), until in ((runs[0], "2031-02-27"), (runs[1], "2031-03-30")):
        pdf = wait_for(lambda: (r := sales.get(f"/api/v1/contracts/{contract_id}/pdf")).status_code == 200 and r,
                       timeout=60, message="a period's PDF")
        printed = re.sub(r"\s+", "", pdf_text(pdf.content))
        assert f"本期：{run_on}至{until}，续订合同{second_source['number']}" in printed, printed
    # The overdue check ran in every one of those runs: still exactly one receivable.overdue.
    assert api.post("/api/v1/admin/scheduler/run", json={"as_of": overdue_as_of}).json["overdue"] == []

    # Pause, then resume: the listing shows them, another salesperson does not see them.
    paused = sales.post(f"/api/v1/recurring-contracts/{first['id']}/pause")
    assert paused.status_code == 200 and paused.json["status"] == "paused"
    later = api.post("/api/v1/admin/scheduler/run", json={"as_of": "2031-06-15"}).json["generated"]
    assert [(g["schedule_id"], g["run_on"]) for g in later] == [(second["id"], "2031-05-31"),
                                                               (second["id"], "2031-06-30")]
    assert len(runs_of(sales, first["id"])) == 4 and len(runs_of(sales, second["id"])) == 6
    # Paused, its contract may repeat another way; the paused one then cannot come back beside it.
    replacement = schedule(sales, source["id"], interval="quarterly", start_date="2032-01-31")
    blocked = sales.post(f"/api/v1/recurring-contracts/{first['id']}/resume")
    assert blocked.status_code == 409 and replacement["id"] in fields_of(blocked)["source_contract_id"][0], blocked
    assert sales.get(f"/api/v1/recurring-contracts/{first['id']}").json["status"] == "paused"
    assert sales.post(f"/api/v1/recurring-contracts/{replacement['id']}/pause").json["status"] == "paused"
    resumed = sales.post(f"/api/v1/recurring-contracts/{first['id']}/resume")
    assert resumed.status_code == 200 and resumed.json["status"] == "active"
    assert resumed.json["next_run_on"] == "2031-05-31"  # future periods are not skipped by a pause
    listing = sales.get("/api/v1/recurring-contracts").json
    assert listing["total"] == 3 and {s["id"] for s in listing["items"]} == {first["id"], second["id"],
                                                                            replacement["id"]}
    assert other.get("/api/v1/recurring-contracts").json["total"] == 0
    assert other.get(f"/api/v1/recurring-contracts/{first['id']}").status_code == 404
    assert other.post(f"/api/v1/recurring-contracts/{first['id']}/pause").status_code == 404
    assert "recurring.generated" in timeline_types(sales, source["id"])


def run_concurrently(api, env, as_of, processes, requests) -> list[dict]:
    """Scheduler runs released at one moment: separate OS processes and HTTP requests to the gateway."""
    gate = Path(tempfile.mkdtemp(prefix="scheduler-gate-"))
    code = (
        "import os, sys, time, json\n"
        "from crmkit.service import open_database\n"
        "from crmkit.settings import Settings\n"
        "from services.contracts import spec\n"
        "from services.contracts.scheduler import run_due\n"
        "from datetime import date\n"
        "settings = Settings.from_env('contracts')\n"
        "db = open_database(spec(), settings)\n"
        "gate = sys.argv[1]\n"
        "open(os.path.join(gate, 'ready-' + sys.argv[2]), 'w').close()\n"
        "while not os.path.exists(os.path.join(gate, 'go')):\n"
        "    time.sleep(0.002)\n"
        "print(json.dumps(run_due(db, settings, date.fromisoformat(sys.argv[3])).to_dict()))\n"
    )
    try:
        return _race(api, env, as_of, processes, requests, gate, code)
    finally:
        shutil.rmtree(gate, ignore_errors=True)


def _race(api, env, as_of, processes, requests, gate, code) -> list[dict]:
    child_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(gate), str(i), as_of], env=child_env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(processes)]
    wait_for(lambda: all((gate / f"ready-{i}").exists() or procs[i].poll() is not None for i in range(processes)),
             timeout=240, message="scheduler processes ready")
    barrier = threading.Barrier(requests + 1)

    def request():
        barrier.wait()
        return api.post("/api/v1/admin/scheduler/run", json={"as_of": as_of})

    with ThreadPoolExecutor(requests) as pool:
        futures = [pool.submit(request) for _ in range(requests)]
        (gate / "go").touch()
        barrier.wait()
        replies = [f.result() for f in futures]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    for reply in replies:
        assert reply.status_code == 200, reply
        results.append(reply.json)
    return results


def run_fulfilment(api, env):
    api.product("PUMP-10", stock=20, price="12.50", name="离心泵", unit="台")
    sales = api.user("sally", "sales", email="sally@example.cn")
    other = api.user("oscar", "sales")
    customer = sales.customer(address="杭州市西湖区文三路 100 号")
    contract = check_deliveries(api, sales, other, customer)
    check_bad_deliveries(api, sales, customer)
    overdue_as_of = check_receivables(api, sales, other, contract)
    check_recurring(api, sales, other, customer, env, overdue_as_of)


def test_fulfilment_embedded(embedded):
    run_fulfilment(embedded.api, embedded.env)


@pytest.mark.e2e
def test_fulfilment_on_rabbitmq_and_postgresql(cluster):
    run_fulfilment(cluster.api, cluster.env)


def test_a_catalogue_price_changes_for_new_contracts_only(embedded):
    api = embedded.api
    api.product("LAMP", stock=10, price="30.00")
    customer = api.customer()["id"]
    before = api.contract(customer, [("LAMP", 1)])
    changed = api.patch("/api/v1/products/LAMP", json={"unit_price": "32.50", "name": "台灯 LED"})
    assert changed.status_code == 200, changed
    assert (changed.json["unit_price"], changed.json["name"], changed.json["on_hand"]) == ("32.50", "台灯 LED", "10")
    after = api.contract(customer, [("LAMP", 1)])
    assert [(l["unit_price"], l["name"]) for l in after["lines"]] == [("32.50", "台灯 LED")]
    assert api.get(f"/api/v1/contracts/{before['id']}").json["lines"][0]["unit_price"] == "30.00"
    sales = api.user("sam")
    assert sales.patch("/api/v1/products/LAMP", json={"unit_price": "1.00"}).status_code == 403
    for body, field in (({"unit_price": "-1"}, "unit_price"), ({"code": "X"}, "code"), ({"name": ""}, "name")):
        refused = api.patch("/api/v1/products/LAMP", json=body)
        assert refused.status_code == 422 and field in refused.json["error"]["fields"], refused
    assert api.patch("/api/v1/products/NOPE", json={"unit_price": "1.00"}).status_code == 404
    assert api.get("/api/v1/products/LAMP").json["unit_price"] == "32.50"


def test_a_stock_adjustment_says_how_far_it_may_go(embedded):
    api = embedded.api
    api.product("ROPE", stock=10, price="3.00")

    def adjust(delta):
        return api.post("/api/v1/products/ROPE/stock", json={"delta": delta, "reason": "count"})

    below_zero = adjust("-11")
    assert below_zero.status_code == 422, below_zero
    assert below_zero.json["error"]["message"] == "Stock cannot go below zero (10 on hand)."
    assert below_zero.json["error"]["fields"] == {"delta": ["At least -10."]}
    contract = api.contract(api.customer()["id"], [("ROPE", 4)], confirm=True)
    wait_for(lambda: api.get(f"/api/v1/contracts/{contract['id']}").json["stock_status"] == "reserved",
             message="reserved")
    held = adjust("-7")
    assert held.status_code == 422 and "reserved for contracts (4 of 10 on hand)" in held.json["error"]["message"]
    assert held.json["error"]["fields"] == {"delta": ["At least -6."]}
    assert adjust("-6").status_code == 200
