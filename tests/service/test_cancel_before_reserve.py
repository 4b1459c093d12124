"""Inventory handles a contract's confirmation and its cancellation in parallel, in either order: whatever the
order, a cancelled contract ends holding no stock (it once kept a reservation for good when the cancellation
was handled first)."""
from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from sqlalchemy import func, select

from crmkit.messaging.consumer import Worker
from crmkit.messaging.envelope import Envelope
from crmkit.models import OutboxMessage
from crmkit.settings import Settings
from services.inventory.handlers import HANDLERS
from services.inventory.models import TABLES, Product, Reservation


def lines(contract_no: int) -> list[dict]:
    return [{"line_no": 1, "product_code": "P-1", "quantity": "2"},
            {"line_no": 2, "product_code": "P-2", "quantity": "1"},
            {"line_no": 3, "product_code": "NOT-IN-CATALOGUE", "quantity": "1"}]


def confirmed(n: int) -> Envelope:
    return Envelope(type="contract.confirmed", source="contracts", correlation_id=f"c-{n}", data={
        "contract_id": f"c-{n}", "number": f"HT-2026-{n:06d}", "confirmed_seq": n, "owner_id": "u-1",
        "shortage_policy": "warn_sales", "lines": lines(n)})


def cancelled(n: int) -> Envelope:
    return Envelope(type="contract.cancelled", source="contracts", correlation_id=f"c-{n}", data={
        "contract_id": f"c-{n}", "number": f"HT-2026-{n:06d}", "was_confirmed": True, "owner_id": "u-1",
        "lines": lines(n)})


def inventory(make_db, db_url, tmp_path):
    db = make_db(TABLES)
    with db.session() as session:
        for code in ("P-1", "P-2"):
            session.add(Product(code=code, name=code, unit="件", unit_price=Decimal("1.00"), tax_rate=Decimal("0.13"),
                                on_hand=Decimal(100), reserved=Decimal(0)))
    settings = Settings.from_env("inventory", {"DATABASE_URL": db_url, "CRM_VAR_DIR": str(tmp_path),
                                               "CRM_SECRET_KEY": "test"})
    return db, Worker(db, settings, HANDLERS, threads=1)


def held(db) -> dict:
    with db.session() as session:
        return {p.code: (p.on_hand, p.reserved) for p in session.execute(select(Product)).scalars()}


def test_a_cancellation_handled_before_the_confirmation_leaves_nothing_held(make_db, db_url, tmp_path):
    db, worker = inventory(make_db, db_url, tmp_path)
    try:
        assert worker.handle(cancelled(1).to_json(), {}) is None
        assert worker.handle(confirmed(1).to_json(), {}) is None
        assert held(db) == {"P-1": (100, 0), "P-2": (100, 0)}
        with db.session() as session:
            assert {r.status for r in session.execute(select(Reservation)).scalars()} == {"released"}
            kinds = dict(session.execute(select(OutboxMessage.routing_key, func.count())
                                         .group_by(OutboxMessage.routing_key)).all())
        assert kinds == {"stock.released": 1}  # no stock.reserved for a contract that is no more
        # The usual order still holds and releases.
        assert worker.handle(confirmed(2).to_json(), {}) is None
        assert held(db) == {"P-1": (100, 2), "P-2": (100, 1)}
        assert worker.handle(cancelled(2).to_json(), {}) is None
        assert held(db) == {"P-1": (100, 0), "P-2": (100, 0)}
    finally:
        worker.pool.shutdown()


def test_confirmations_and_cancellations_handled_at_once_hold_nothing_at_the_end(make_db, db_url, tmp_path):
    # Many handler threads, as a worker runs them: each contract's two events race (on PostgreSQL truly at once).
    db, worker = inventory(make_db, db_url, tmp_path)
    events = [e(n) for n in range(40) for e in (confirmed, cancelled)]
    random.Random(7).shuffle(events)
    try:
        with ThreadPoolExecutor(16) as pool:
            outcomes = list(pool.map(lambda e: worker.handle(e.to_json(), {}), events))
        assert outcomes == [None] * len(events), [o for o in outcomes if o]
        assert held(db) == {"P-1": (100, 0), "P-2": (100, 0)}
        with db.session() as session:
            statuses = dict(session.execute(select(Reservation.status, func.count())
                                            .group_by(Reservation.status)).all())
        assert statuses == {"released": 80}  # two catalogue lines of each of the 40 contracts
    finally:
        worker.pool.shutdown()
