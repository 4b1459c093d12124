"""No oversell: a hundred one-unit contracts confirmed at once race for ten units; exactly ten win."""
from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from support import pg
from support.api import Api
from support.infra import ProcessCluster, wait_for

CONTRACTS = 100
UNITS = 10
THREADS = 16


class Sampler:
    """Reads (on_hand, reserved) over and over while the race runs; remembers every violation."""

    def __init__(self, read):
        self.read = read
        self.samples: list[tuple[Decimal, Decimal]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            on_hand, reserved = self.read()
            self.samples.append((Decimal(str(on_hand)), Decimal(str(reserved))))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)

    @property
    def violations(self):
        return [(on_hand, reserved) for on_hand, reserved in self.samples if not 0 <= reserved <= on_hand]


def race(api: Api, client_for, sampler_read) -> dict:
    """Make the drafts, confirm them all from THREADS threads, wait for inventory's verdicts."""
    api.product("ONE-UNIT", stock=UNITS, price="99.00")
    customer = api.customer()
    with ThreadPoolExecutor(8) as pool:
        drafts = list(pool.map(lambda _: client_for().contract(customer["id"], [("ONE-UNIT", 1)]),
                               range(CONTRACTS)))
    assert {d["status"] for d in drafts} == {"draft"}

    barrier = threading.Barrier(THREADS)
    local = threading.local()

    def confirm(contract):
        if not hasattr(local, "api"):
            local.api = client_for()
            barrier.wait(30)  # every thread starts confirming at the same moment
        return local.api.post(f"/api/v1/contracts/{contract['id']}/confirm").status_code

    with Sampler(sampler_read) as sampler:
        with ThreadPoolExecutor(THREADS) as pool:
            codes = list(pool.map(confirm, drafts))
        assert codes == [200] * CONTRACTS

        def verdicts():
            items = api.get("/api/v1/contracts", params={"status": "confirmed", "limit": 200}).json["items"]
            done = {c["id"]: c["stock_status"] for c in items if c["stock_status"] in ("reserved", "short")}
            return done if len(done) == CONTRACTS else None

        status = wait_for(verdicts, timeout=120, interval=0.3, message="every contract reserved or short")
    assert sampler.violations == [], sampler.violations[:5]
    assert len(sampler.samples) > 10
    reserved = sorted(cid for cid, s in status.items() if s == "reserved")
    assert len(reserved) == UNITS
    assert sum(1 for s in status.values() if s == "short") == CONTRACTS - UNITS
    product = api.get("/api/v1/products/ONE-UNIT").json
    assert (product["on_hand"], product["reserved"], product["available"]) == ("10", "10", "0")
    return {"reserved": reserved, "drafts": drafts}


def check_ledger(rows, reserved_ids):
    """rows: (kind, quantity, contract_id) of the product's stock ledger."""
    received = [Decimal(str(q)) for kind, q, _ in rows if kind == "received"]
    reservations = [(Decimal(str(q)), cid) for kind, q, cid in rows if kind == "reserved"]
    assert received == [Decimal(UNITS)]
    assert len(reservations) == UNITS and {q for q, _ in reservations} == {Decimal(1)}
    assert sorted(cid for _, cid in reservations) == reserved_ids  # the ledger names the same ten winners
    assert all(kind in ("received", "reserved") for kind, _, _ in rows)


@pytest.mark.e2e
def test_no_oversell_on_rabbitmq_and_postgresql(tmp_path, pg_url, amqp_url, smtp_server):
    # Three competing inventory workers: the race is between processes, not only threads.
    cluster = ProcessCluster(tmp_path, amqp_url=amqp_url, database_url=pg_url, smtp=smtp_server,
                             workers_per_service={"inventory": 3}).start()
    try:
        with pg.connect(pg_url) as conn:
            def read():
                return conn.execute("SELECT on_hand, reserved FROM inventory.products "
                                    "WHERE code = 'ONE-UNIT'").fetchone() or (0, 0)

            def client():
                return Api(cluster.base_url, token=cluster.api.token)

            outcome = race(cluster.api, client, read)
            rows = conn.execute("SELECT kind, quantity, contract_id FROM inventory.stock_moves "
                                "WHERE product_code = 'ONE-UNIT' ORDER BY id").fetchall()
            check_ledger(rows, outcome["reserved"])
            held = conn.execute("SELECT sum(reserved), count(*) FROM inventory.reservations "
                                "WHERE product_code = 'ONE-UNIT'").fetchone()
            assert (held[0], held[1]) == (UNITS, CONTRACTS)
    except BaseException:
        print(cluster.log_text())
        raise
    finally:
        cluster.stop()


def test_no_oversell_on_sqlite_in_embedded_mode(embedded):
    inventory_db = embedded.var / "inventory.sqlite"
    reader = sqlite3.connect(inventory_db, check_same_thread=False)

    def read():
        return reader.execute("SELECT on_hand, reserved FROM products WHERE code = 'ONE-UNIT'").fetchone() or (0, 0)

    def client():
        api = Api.for_wsgi(embedded.app)  # one test client per thread
        api.token = embedded.api.token
        return api

    outcome = race(embedded.api, client, read)
    rows = reader.execute("SELECT kind, quantity, contract_id FROM stock_moves WHERE product_code = 'ONE-UNIT' "
                          "ORDER BY id").fetchall()
    check_ledger(rows, outcome["reserved"])
    assert reader.execute("SELECT sum(reserved), count(*) FROM reservations").fetchone() == (UNITS, CONTRACTS)
    reader.close()
