"""Housekeeping removes the kit's rows past the retention period, and nothing else, on SQLite and PostgreSQL."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from crmkit import housekeeping
from crmkit.models import IdempotencyKey, InboxMessage, OutboxMessage
from crmkit.settings import Settings
from crmkit.timeutil import utcnow

NOW = utcnow()
OLD, RECENT = NOW - timedelta(days=31), NOW - timedelta(days=29)


@pytest.fixture
def db(kit_db):
    return kit_db


def fill(db, old: int = 3) -> None:
    """`old` expired rows of each kind, plus the rows that must stay: recent ones and an old unpublished event."""
    outbox, inbox, keys = [], [], []
    for i, (at, published) in enumerate([(OLD, True)] * old + [(RECENT, True), (OLD, False)]):
        outbox.append({"id": f"e-{i}", "exchange": "crm.events", "routing_key": "t", "body": "{}", "created_at": at,
                       "published": published, "published_at": at if published else None, "attempts": 0})
    for i, at in enumerate([OLD] * old + [RECENT]):
        inbox.append({"consumer": "c", "message_id": f"m-{i}", "type": "t", "handled_at": at})
        keys.append({"user_id": "u", "key": f"k-{i}", "endpoint": "/x", "request_hash": "h", "status": 201,
                     "body": "{}", "created_at": at})
    with db.session() as session:
        for model, rows in ((OutboxMessage, outbox), (InboxMessage, inbox), (IdempotencyKey, keys)):
            session.execute(insert(model), rows)


def left(db) -> dict:
    with db.session() as session:
        return {
            "outbox": sorted(session.execute(select(OutboxMessage.id)).scalars()),
            "inbox": sorted(session.execute(select(InboxMessage.message_id)).scalars()),
            "keys": sorted(session.execute(select(IdempotencyKey.key)).scalars()),
        }


def test_expired_rows_go_in_batches_and_the_rest_stays(db):
    fill(db, old=5)
    removed = housekeeping.remove_expired(db, 30, now=NOW, batch=2)
    assert removed == {"outbox": 5, "inbox": 5, "idempotency_keys": 5}
    # The recent rows, and an old event the relay has not published yet, which must still go out.
    assert left(db) == {"outbox": ["e-5", "e-6"], "inbox": ["m-5"], "keys": ["k-5"]}
    assert housekeeping.remove_expired(db, 30, now=NOW) == {"outbox": 0, "inbox": 0, "idempotency_keys": 0}


def test_a_retention_of_zero_keeps_everything(db):
    fill(db)
    assert housekeeping.remove_expired(db, 0, now=NOW) == {}
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == 5


def test_the_workers_loop_runs_it_and_stops_when_asked(db, monkeypatch, tmp_path):
    fill(db)
    monkeypatch.setattr(housekeeping, "FIRST_RUN_SECONDS", 0.0)
    settings = Settings.from_env("inventory", {"CRM_VAR_DIR": str(tmp_path), "CRM_SECRET_KEY": "t",
                                               "CRM_RETENTION_DAYS": "30"})
    stop = threading.Event()
    loop = threading.Thread(target=housekeeping.housekeeping_loop, args=(settings, db, stop))
    loop.start()
    try:
        for _ in range(300):
            if left(db)["keys"] == ["k-3"]:
                break
            stop.wait(0.1)
        assert left(db) == {"outbox": ["e-3", "e-4"], "inbox": ["m-3"], "keys": ["k-3"]}
    finally:
        stop.set()
        loop.join(10)
    assert not loop.is_alive()
