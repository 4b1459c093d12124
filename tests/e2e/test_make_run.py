"""`make run` from the repository: the embedded mode under gunicorn, over real HTTP, and a SIGKILL loses nothing."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from support.api import Api
from support.infra import ROOT, free_port, wait_for

ADMIN_PASSWORD = "make-run-secret-1"
BATCH = 24


class MakeRun:
    """The command `make run` execs, with var/ in a temporary directory."""

    def __init__(self, tmp_path: Path):
        self.var = tmp_path / "var"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "gunicorn.log"
        drop = {"AMQP_URL", "DATABASE_URL", "PORT", "CRM_SECRET_KEY", "DOCUMENTS_DIR"}
        self.env = {k: v for k, v in os.environ.items()
                    if k not in drop and not k.endswith(("_DATABASE_URL", "_URL")) and not k.startswith("SMTP_")}
        self.env.update(CRM_VAR_DIR=str(self.var), CRM_ADMIN_USER="admin", CRM_ADMIN_PASSWORD=ADMIN_PASSWORD)
        self.proc = None

    def start(self) -> Api:
        gunicorn = Path(sys.executable).parent / "gunicorn"
        argv = [str(gunicorn), "-c", "deploy/gunicorn.conf.py", "-b", f"127.0.0.1:{self.port}", "-w", "1",
                "--threads", "8", "services.embedded:create_app()"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        wait_for(self._healthy, timeout=120, interval=0.2, message="/healthz of make run")
        return Api(self.base_url).login("admin", ADMIN_PASSWORD)

    def _healthy(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text(errors="replace")[-3000:]
        try:
            return requests.get(f"{self.base_url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def kill(self, sig=signal.SIGKILL):
        os.killpg(self.proc.pid, sig)
        self.proc.wait(30)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.kill(signal.SIGTERM)


@pytest.fixture
def make_run(tmp_path):
    runner = MakeRun(tmp_path)
    yield runner
    runner.stop()


def status(api, contract_id) -> dict:
    return api.get(f"/api/v1/contracts/{contract_id}").json


def test_make_run_serves_the_slice_and_a_sigkill_mid_batch_loses_nothing(make_run):
    api = make_run.start()
    assert requests.get(f"{make_run.base_url}/readyz", timeout=5).status_code == 200
    api.product("BOLT-M8", stock=10, price="12.50")
    customer = api.customer()
    first = api.contract(customer["id"], [("BOLT-M8", 4)])
    assert api.post(f"/api/v1/contracts/{first['id']}/confirm").status_code == 200
    wait_for(lambda: status(api, first["id"])["stock_status"] == "reserved", timeout=60, message="reserved")
    assert api.get("/api/v1/products/BOLT-M8").json["reserved"] == "4"
    assert (make_run.var / "secret_key").exists()  # CRM_SECRET_KEY unset: generated once under var/

    # A batch of confirmations, and the whole process SIGKILLed while they are in flight.
    api.product("BATCH-1", stock=1000)
    drafts = [api.contract(customer["id"], [("BATCH-1", n + 1)]) for n in range(BATCH)]
    answered, halfway = [], threading.Event()
    lock = threading.Lock()

    def confirm(contract):
        client = Api(make_run.base_url, token=api.token)
        try:
            code = client.post(f"/api/v1/contracts/{contract['id']}/confirm").status_code
        except requests.RequestException:
            return
        with lock:
            if code == 200:
                answered.append(contract["id"])
            if len(answered) >= BATCH // 2:
                halfway.set()

    # Inventory's database write-locked from here: its handler stops mid-message, so the kill finds
    # work in flight (a leased message, and others queued behind it) rather than a system at rest.
    blocker = sqlite3.connect(make_run.var / "inventory.sqlite", isolation_level=None, timeout=30)
    blocker.execute("BEGIN IMMEDIATE")
    def in_flight() -> tuple[int, int]:
        """Messages waiting for inventory in the embedded broker, and how many of all are leased."""
        broker = sqlite3.connect(make_run.var / "broker.sqlite", timeout=30)
        try:
            return (broker.execute("SELECT count(*) FROM messages WHERE queue = 'crm.inventory.stock'").fetchone()[0],
                    broker.execute("SELECT count(*) FROM messages WHERE leased_until > 0").fetchone()[0])
        finally:
            broker.close()

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(confirm, d) for d in drafts]
        assert halfway.wait(120), "half the confirmations never answered"
        # The relay publishes right after each commit; on a busy machine that may lag the answers a little.
        wait_for(lambda: all(n > 0 for n in in_flight()), timeout=60, message="messages in flight to inventory")
        make_run.kill()
        for future in futures:
            future.result()
    blocker.execute("ROLLBACK")
    blocker.close()
    waiting, leased = in_flight()
    assert waiting > 0 and leased > 0, (waiting, leased)

    api = make_run.start()  # the same var/: the broker's leases are released, the outboxes resume
    for contract_id in answered:  # a confirmation that was answered was committed
        assert status(api, contract_id)["status"] == "confirmed"
    for draft in drafts:  # those cut off by the kill may or may not have committed: finish them
        if status(api, draft["id"])["status"] == "draft":
            assert api.post(f"/api/v1/contracts/{draft['id']}/confirm").status_code == 200

    def all_reserved():
        items = api.get("/api/v1/contracts", params={"status": "confirmed", "limit": 200}).json["items"]
        batch = [c for c in items if c["lines"][0]["product_code"] == "BATCH-1"]
        return len(batch) == BATCH and all(c["stock_status"] == "reserved" for c in batch) and batch

    batch = wait_for(all_reserved, timeout=180, interval=0.5, message="every confirmed contract reserved")
    assert sorted(int(c["lines"][0]["reserved"]) for c in batch) == list(range(1, BATCH + 1))
    total = BATCH * (BATCH + 1) // 2
    product = api.get("/api/v1/products/BATCH-1").json
    assert (product["on_hand"], product["reserved"]) == ("1000", str(total))  # each contract reserved once

    inventory = sqlite3.connect(make_run.var / "inventory.sqlite")
    moves = inventory.execute("SELECT contract_id, count(*), sum(quantity) FROM stock_moves WHERE kind = 'reserved' "
                              "AND product_code = 'BATCH-1' GROUP BY contract_id").fetchall()
    inventory.close()
    assert len(moves) == BATCH and {count for _, count, _ in moves} == {1}
    assert sum(quantity for _, _, quantity in moves) == total
