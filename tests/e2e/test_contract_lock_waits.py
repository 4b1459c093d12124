"""Requests that wait for a contract's lock act on the contract as the request before them left it.

On PostgreSQL a statement that waits for a row lock gets the locked row as committed by the holder, but rows
read with it as they were when it began: a contract's lines read with the contract were stale after a wait.
Each test here holds the contract's row from outside, queues requests behind it in a known order, lets go,
and checks what a user would see: deliveries lost, a contract confirmed with its old lines, a 500."""
from __future__ import annotations

import threading

import psycopg
import pytest

from support.infra import wait_for

pytestmark = pytest.mark.e2e


class HeldContract:
    """The contract's row locked by another transaction, as a slow request would hold it."""

    def __init__(self, pg_url: str, contract_id: str):
        self.url = pg_url.replace("postgresql+psycopg://", "postgresql://")
        self.contract_id = contract_id

    def __enter__(self):
        self.conn = psycopg.connect(self.url)
        self.conn.execute("SELECT id FROM contracts.contracts WHERE id = %s FOR UPDATE", (self.contract_id,))
        self.replies: dict[str, object] = {}
        self.threads = []
        return self

    def queue(self, name: str, call):
        """Send a request now; it waits behind the lock (and behind those queued before it)."""
        def run():
            self.replies[name] = call()
        waiting = self.waiting()
        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)
        wait_for(lambda: self.waiting() > waiting, message=f"{name} waiting for the contract's lock")

    def waiting(self) -> int:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                "AND wait_event_type = 'Lock'").fetchone()[0]

    def __exit__(self, *exc):
        self.conn.rollback()
        self.conn.close()
        for thread in self.threads:
            thread.join(30)


def reserved(api, contract_id):
    wait_for(lambda: api.get(f"/api/v1/contracts/{contract_id}").json["stock_status"] == "reserved",
             message="stock reserved")


def test_notes_shipped_at_once_all_count(cluster, pg_url):
    api = cluster.api
    api.product("PIPE", stock=100, price="3.00")
    contract = api.contract(api.customer()["id"], [("PIPE", 10)], confirm=True)
    reserved(api, contract["id"])
    notes = [api.post(f"/api/v1/contracts/{contract['id']}/delivery-notes",
                      json={"lines": [{"product_code": "PIPE", "quantity": q}]}).json for q in ("3", "3", "4")]
    with HeldContract(pg_url, contract["id"]) as held:
        for note in notes:
            held.queue(note["number"], lambda note=note: api.post(f"/api/v1/delivery-notes/{note['id']}/ship"))
    assert [held.replies[n["number"]].status_code for n in notes] == [200, 200, 200]
    after = api.get(f"/api/v1/contracts/{contract['id']}").json
    assert after["status"] == "delivered", after  # was partially_delivered: two of the three deliveries lost
    more = api.post(f"/api/v1/contracts/{contract['id']}/delivery-notes")
    assert more.status_code == 409, more  # was a note for what had already gone: the goods sent twice
    wait_for(lambda: api.get("/api/v1/products/PIPE").json["on_hand"] == "90", message="10 taken out")


def test_a_confirmation_behind_a_change_of_lines_confirms_the_new_lines(cluster, pg_url):
    api = cluster.api
    api.product("VALVE", stock=100, price="100.00", tax_rate="0")
    draft = api.contract(api.customer()["id"], [("VALVE", 1)])
    with HeldContract(pg_url, draft["id"]) as held:
        held.queue("patch", lambda: api.patch(f"/api/v1/contracts/{draft['id']}",
                                              json={"lines": [{"product_code": "VALVE", "quantity": "7"}]}))
        held.queue("confirm", lambda: api.post(f"/api/v1/contracts/{draft['id']}/confirm"))
    assert held.replies["patch"].status_code == 200, held.replies["patch"]
    confirmed = held.replies["confirm"]
    assert confirmed.status_code == 200, confirmed
    assert [l["quantity"] for l in confirmed.json["lines"]] == ["7"] and confirmed.json["total"] == "700.00"
    reserved(api, draft["id"])
    assert api.get("/api/v1/products/VALVE").json["reserved"] == "7"  # was 1: the old line reserved


def test_changes_of_lines_queued_together_each_apply(cluster, pg_url):
    api = cluster.api
    api.product("NUT", stock=100, price="1.00")
    draft = api.contract(api.customer()["id"], [("NUT", 1)])
    with HeldContract(pg_url, draft["id"]) as held:
        for q in ("2", "3", "4"):
            held.queue(q, lambda q=q: api.patch(f"/api/v1/contracts/{draft['id']}",
                                                json={"lines": [{"product_code": "NUT", "quantity": q}]}))
    assert [held.replies[q].status_code for q in ("2", "3", "4")] == [200, 200, 200]  # were 500s
    after = api.get(f"/api/v1/contracts/{draft['id']}").json
    # PostgreSQL hands the lock to the first waiter first; the order of the later two is its own.
    assert after["version"] == draft["version"] + 3
    assert [[l["quantity"] for l in held.replies[q].json["lines"]] for q in ("2", "3", "4")] == [["2"], ["3"], ["4"]]
    last = max(("2", "3", "4"), key=lambda q: held.replies[q].json["version"])
    assert [l["quantity"] for l in after["lines"]] == [last]  # the change applied last is what stays


def test_a_payment_behind_a_new_plan_is_told_its_installment_is_gone(cluster, pg_url):
    api = cluster.api
    api.product("GEAR", stock=100, price="50.00", tax_rate="0")
    contract = api.contract(api.customer()["id"], [("GEAR", 2)], confirm=True)
    plan = f"/api/v1/contracts/{contract['id']}/receivables-plan"
    first = api.post(plan, json={"installments": [{"label": "全款", "percent": "100", "due_date": "2031-01-31"}]})
    assert first.status_code == 201, first
    old = first.json["items"][0]
    with HeldContract(pg_url, contract["id"]) as held:
        held.queue("plan", lambda: api.post(plan, json={"installments": [
            {"label": "定金", "percent": "30", "due_date": "2031-01-31"},
            {"label": "尾款", "percent": "70", "due_date": "2031-03-31"}]}))
        held.queue("payment", lambda: api.post(f"/api/v1/receivables/{old['id']}/payments",
                                               json={"amount": "10.00", "paid_on": "2026-11-01", "reference": "x"}))
    assert held.replies["plan"].status_code == 201, held.replies["plan"]
    paid = held.replies["payment"]
    assert paid.status_code == 404 and "replaced" in paid.json["error"]["message"], paid  # was a 500
    items = api.get(f"/api/v1/contracts/{contract['id']}/receivables").json["items"]
    assert [(i["label"], i["paid_amount"]) for i in items] == [("定金", "0.00"), ("尾款", "0.00")]


def test_a_customer_handed_over_while_its_schedule_generates_a_period_waits_rather_than_deadlocks(cluster, pg_url):
    """The scheduler holds a schedule, then its source contract, then (inserting the period's contract) a key
    share on the customer. Handing the customer over took the customer, then its contracts: a deadlock, and a
    503 for the admin or a failed period for the salesperson."""
    api = cluster.api
    api.product("TAPE", stock=100, price="5.00")
    customer = api.customer()
    source = api.contract(customer["id"], [("TAPE", 1)])
    schedule = api.post("/api/v1/recurring-contracts", json={
        "source_contract_id": source["id"], "interval": "weekly", "start_date": "2031-01-06"}).json
    bob = api.user("bob")
    bob_id = bob.get("/api/v1/users/me").json["id"]
    url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as scheduler:  # what a scheduler run holds while it generates a period
        scheduler.execute("SET lock_timeout = '20s'")
        scheduler.execute("SELECT id FROM contracts.recurring_schedules WHERE id = %s FOR UPDATE", (schedule["id"],))
        scheduler.execute("SELECT id FROM contracts.contracts WHERE id = %s FOR SHARE", (source["id"],))
        held = HeldContract(pg_url, source["id"])
        held.replies, held.threads = {}, []
        held.queue("patch", lambda: api.patch(f"/api/v1/customers/{customer['id']}", json={"owner": bob_id}))
        # The period's contract references the customer: its foreign key takes this lock.
        scheduler.execute("SELECT id FROM contracts.customers WHERE id = %s FOR KEY SHARE", (customer["id"],))
        scheduler.commit()
    for thread in held.threads:
        thread.join(30)
    assert held.replies["patch"].status_code == 200, held.replies["patch"]
    assert bob.get(f"/api/v1/recurring-contracts/{schedule['id']}").status_code == 200
    assert bob.get(f"/api/v1/contracts/{source['id']}").status_code == 200


def test_a_cancellation_pauses_a_schedule_someone_else_holds_at_that_moment(cluster, pg_url):
    """A resume or a customer's reassignment holding the schedule when its source is cancelled: the pause waits
    for them. It used to skip the schedule, which then stayed active on a cancelled contract (9 of 10 races
    with a reassignment) until a scheduler run failed on it and told the salesperson."""
    api = cluster.api
    api.product("PAPER", stock=100, price="2.00")
    source = api.contract(api.customer()["id"], [("PAPER", 1)], confirm=True)
    schedule = api.post("/api/v1/recurring-contracts", json={
        "source_contract_id": source["id"], "interval": "monthly", "start_date": "2031-01-10"}).json
    held = HeldContract(pg_url, source["id"])
    with psycopg.connect(held.url) as other:  # what a resume or a reassignment holds
        other.execute("SELECT id FROM contracts.recurring_schedules WHERE id = %s FOR UPDATE", (schedule["id"],))
        held.replies, held.threads = {}, []
        held.queue("cancel", lambda: api.post(f"/api/v1/contracts/{source['id']}/cancel"))
        other.commit()
    for thread in held.threads:
        thread.join(30)
    assert held.replies["cancel"].status_code == 200, held.replies["cancel"]
    now = api.get(f"/api/v1/recurring-contracts/{schedule['id']}").json
    assert now["status"] == "paused" and source["number"] in now["last_error"], now
    run = api.post("/api/v1/admin/scheduler/run", json={"as_of": "2031-03-15"}).json
    assert (run["generated"], run["failed"]) == ([], [])  # nothing to tell the salesperson: it was paused


def test_two_requests_to_repeat_one_contract_make_one_schedule(cluster, pg_url):
    """Each checks that the contract has no active schedule yet, under the contract's row lock: the second sees
    the first's, and the customer does not get two contracts a period."""
    api = cluster.api
    api.product("CLIP", stock=100, price="1.00")
    source = api.contract(api.customer()["id"], [("CLIP", 1)])
    body = {"source_contract_id": source["id"], "interval": "monthly", "start_date": "2031-01-10"}
    with HeldContract(pg_url, source["id"]) as held:
        held.queue("monthly", lambda: api.post("/api/v1/recurring-contracts", json=body))
        held.queue("weekly", lambda: api.post("/api/v1/recurring-contracts", json={**body, "interval": "weekly"}))
    assert (held.replies["monthly"].status_code, held.replies["weekly"].status_code) == (201, 409), held.replies
    listed = api.get("/api/v1/recurring-contracts", params={"source_contract_id": source["id"]}).json
    assert [(s["interval"], s["status"]) for s in listed["items"]] == [("monthly", "active")]
