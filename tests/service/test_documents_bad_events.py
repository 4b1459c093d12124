"""A malformed event fails in the documents worker as in every other consumer: retried, then dead-lettered with its
error on a real RabbitMQ vhost, never acknowledged as if there had been nothing to render."""
from __future__ import annotations

import threading

import pytest
from kombu import Connection, Producer, Queue, binding
from sqlalchemy import func, select

from crmkit.db import Database
from crmkit.messaging import topology
from crmkit.messaging.consumer import Worker
from crmkit.messaging.envelope import Envelope
from crmkit.models import KIT_TABLES, InboxMessage, OutboxMessage
from crmkit.settings import Settings
from services.documents import rules
from services.documents.handlers import HANDLERS, make_context
from services.documents.models import TABLES, Document, DocumentFailure
from support.handlers import run_handler
from support.infra import wait_for

# Each document event without the id of what it prints (SPEC §4 shapes otherwise), and the owner it lacks.
MALFORMED = [
    ("contract.confirmed", {"number": "HT-2026-000001", "total": "56.50", "lines": []}),
    ("quote.sent", {"number": "BJ-2026-000001", "total": "10.00"}),
    ("delivery.created", {"number": "FH-2026-000001", "contract_id": "c-1"}),
    ("receivables.planned", {"contract_number": "HT-2026-000001", "installments": []}),
    ("document.requested", {"kind": "no-such-kind", "doc": {}}),
]
WORK = Queue("crm.test.documents", exchange=topology.EVENTS, durable=True,
             bindings=[binding(topology.EVENTS, routing_key="contract.confirmed")])


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env("documents", {"CRM_VAR_DIR": str(tmp_path / "var"), "CRM_SECRET_KEY": "test-secret"})


@pytest.fixture
def db(make_db):
    return make_db(TABLES)


def count(db, model) -> int:
    with db.session() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.parametrize("type_, data", MALFORMED, ids=[t for t, _ in MALFORMED])
def test_an_event_without_its_owner_id_fails_instead_of_being_skipped(db, settings, type_, data):
    envelope = Envelope(type=type_, source="test", data=data)
    with pytest.raises(rules.BadEvent):
        run_handler(db, HANDLERS, envelope, make_context(settings, db))
    # Nothing was written: no document, no failure row, no event (a retry starts from scratch).
    assert (count(db, Document), count(db, DocumentFailure), count(db, OutboxMessage)) == (0, 0, 0)


def test_a_contract_confirmed_without_its_id_is_dead_lettered_with_its_error(tmp_path, amqp_url, settings):
    db = Database(f"sqlite:///{tmp_path / 'documents.sqlite'}", tables=KIT_TABLES + TABLES)
    db.create_all()
    worker_settings = Settings.from_env("documents", {"AMQP_URL": amqp_url, "CRM_VAR_DIR": str(tmp_path / "var"),
                                                      "CRM_SECRET_KEY": "test", "CRM_WORKER_THREADS": "2"})
    worker = Worker(db, worker_settings, HANDLERS, make_context(worker_settings, db), queues=[WORK], threads=2,
                    retry_delays=(0.05, 0.1))
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        assert worker.ready.wait(20), "worker did not start consuming"
        bad = Envelope(type="contract.confirmed", source="contracts", data=MALFORMED[0][1])
        with Connection(amqp_url) as conn:
            Producer(conn.default_channel).publish(
                bad.to_json(), exchange=topology.EVENTS, routing_key=bad.type, serializer=None,
                content_type="application/json", content_encoding="utf-8", delivery_mode=2, message_id=bad.id)

        def dead():
            with Connection(amqp_url) as conn:
                return topology.DEAD_QUEUE(conn.default_channel).get(no_ack=True)
        message = wait_for(dead, timeout=30, message="the malformed contract.confirmed in crm.dead")
    finally:
        worker.stop()
        thread.join(10)
        worker.pool.shutdown(wait=True)
        worker.connection.release()
    assert Envelope.from_dict(message.decode()).id == bad.id
    assert "BadEvent" in message.headers["x-error"] and "without its id" in message.headers["x-error"]
    assert message.headers["x-original-queue"] == WORK.name and message.headers["x-consumer"] == "documents"
    with db.session() as session:  # not recorded as handled: a replay after a fix would render it
        assert session.get(InboxMessage, ("documents", bad.id)) is None
    db.dispose()
