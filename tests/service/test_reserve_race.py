"""Inventory's contract.confirmed handler under a race on PostgreSQL: no oversell, effects once."""
from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import psycopg
from sqlalchemy import func, select

from crmkit.db import Database
from crmkit.messaging.consumer import Worker
from crmkit.messaging.envelope import Envelope
from crmkit.models import KIT_TABLES, InboxMessage, OutboxMessage
from crmkit.settings import Settings
from services.inventory.handlers import HANDLERS
from services.inventory.models import TABLES, Product, Reservation, StockMove



def confirmed(contract_no: int, envelope_id: str | None = None) -> Envelope:
    contract_id = f"c-{contract_no:03d}"
    data = {"contract_id": contract_id, "number": f"HT-2026-{contract_no:06d}", "confirmed_seq": contract_no,
            "shortage_policy": "warn_sales", "owner_id": "u-1",
            "lines": [{"line_no": 1, "product_code": "RACE-1", "quantity": "1"}]}
    return Envelope(type="contract.confirmed", source="contracts", data=data, correlation_id=contract_id,
                    **({"id": envelope_id} if envelope_id else {}))


def test_a_hundred_concurrent_confirmations_reserve_exactly_the_ten_units_there_are(tmp_path, pg_url):
    settings = Settings.from_env("inventory", {"DATABASE_URL": pg_url, "CRM_VAR_DIR": str(tmp_path),
                                               "CRM_SECRET_KEY": "test"})
    db = Database(settings.database_url, settings.db_schema, tables=KIT_TABLES + TABLES)
    db.create_all()
    with db.session() as session:
        session.add(Product(code="RACE-1", name="race", unit="件", unit_price=Decimal("1.00"),
                            tax_rate=Decimal("0.13"), on_hand=Decimal(10), reserved=Decimal(0)))
    worker = Worker(db, settings, HANDLERS, threads=1)

    # Each event arrives twice with its id (a redelivery), and every tenth contract once more under a
    # new id (the publisher sent it twice): the race, the inbox and the business guard at once.
    events = [confirmed(n) for n in range(100)]
    deliveries = [(e.to_json(), {}) for e in events] * 2
    deliveries += [(confirmed(n, str(uuid.uuid4())).to_json(), {}) for n in range(0, 100, 10)]
    deliveries.sort(key=lambda item: hash(item[0]))

    violations, samples = [], []
    stop = threading.Event()

    def sample():
        plain_url = pg_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain_url, autocommit=True) as conn:
            while not stop.is_set():
                on_hand, reserved = conn.execute(
                    "SELECT on_hand, reserved FROM inventory.products WHERE code = 'RACE-1'").fetchone()
                samples.append(reserved)
                if reserved > on_hand or reserved < 0:
                    violations.append((on_hand, reserved))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            outcomes = list(pool.map(lambda item: worker.handle(*item), deliveries))
    finally:
        stop.set()
        sampler.join(10)
        worker.pool.shutdown()

    assert outcomes == [None] * len(deliveries), [o for o in outcomes if o]
    assert violations == []
    assert len(samples) > 10 and samples[-1] == 10
    with db.session() as session:
        product = session.get(Product, "RACE-1")
        assert (product.on_hand, product.reserved) == (10, 10)
        reservations = session.execute(select(Reservation)).scalars().all()
        assert len(reservations) == 100  # one per contract line, never two
        assert sorted(r.reserved for r in reservations).count(1) == 10
        moves = session.execute(select(StockMove).where(StockMove.kind == "reserved")).scalars().all()
        assert len(moves) == 10 and sum(m.quantity for m in moves) == 10
        assert len({m.contract_id for m in moves}) == 10
        assert session.execute(select(func.count()).select_from(InboxMessage)).scalar_one() == 110
        kinds = dict(session.execute(select(OutboxMessage.routing_key, func.count())
                                     .group_by(OutboxMessage.routing_key)).all())
        assert kinds == {"stock.reserved": 10, "stock.shortage": 90}
    db.dispose()
