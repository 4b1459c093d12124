"""A web process's commit wakes the relays of other processes by NOTIFY, on the real PostgreSQL.

The relays poll once a second as a safety net, so a lost NOTIFY would only make every event a second late:
no flow test would fail. These tests listen on the channel as the relay's listener does.
"""
from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import func, select

from crmkit.db import Database
from crmkit.messaging.outbox import emit, notify_channel
from crmkit.models import KIT_TABLES, OutboxMessage


@pytest.fixture
def db(pg_url):
    database = Database(pg_url, schema="contracts", tables=KIT_TABLES)
    database.create_all()
    yield database
    database.dispose()


@pytest.fixture
def listener(db):
    """A connection LISTENing on the outbox's channel, like a relay in another process."""
    dsn = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'LISTEN "{notify_channel(db.engine)}"')
        yield conn


def notifications(conn, seconds: float) -> list:
    """Every notification that arrives within `seconds`."""
    found, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        found.extend(conn.notifies(timeout=left, stop_after=1))
    return found


def test_a_commit_that_wrote_events_sends_one_notify_on_the_services_channel(db, listener):
    with db.session() as session:
        emit(session, "contracts", "contract.created", {"n": 1})
        emit(session, "contracts", "contract.confirmed", {"n": 2})
        # Delivered at commit, not before: a relay woken now would find nothing.
        assert notifications(listener, 0.3) == []
    heard = notifications(listener, 2.0)
    assert [n.channel for n in heard] == ["crm_outbox_contracts"]
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == 2


def test_a_transaction_rolled_back_writes_no_event_and_wakes_nobody(db, listener):
    with pytest.raises(RuntimeError):
        with db.session() as session:
            emit(session, "contracts", "contract.created", {"n": 1})
            raise RuntimeError("the request failed after its event was written")
    assert notifications(listener, 1.0) == []
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == 0
    # The next transaction announces itself again.
    with db.session() as session:
        emit(session, "contracts", "contract.created", {"n": 2})
    assert len(notifications(listener, 2.0)) == 1
