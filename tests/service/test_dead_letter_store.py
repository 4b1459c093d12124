"""The dead-letter store: crm.dead reaches it in embedded mode, a redelivery is one letter, a replay is an outbox row."""
from __future__ import annotations

import json

import pytest
from kombu import Connection, Producer
from sqlalchemy import select

from crmkit.db import Database
from crmkit.errors import Conflict, NotFound
from crmkit.messaging import embedded, topology
from crmkit.messaging.envelope import Envelope
from crmkit.models import KIT_TABLES, OutboxMessage
from services.contracts import dead_letters
from services.contracts.dead_letters import DeadLetter

HEADERS = {"x-error": "KeyError: 'contract_id'", "x-original-queue": "crm.inventory.stock",
           "x-original-exchange": "crm.events", "x-original-routing-key": "contract.cancelled",
           "x-dead-lettered-at": "2026-03-01T08:00:00.123456Z", "x-consumer": "inventory"}


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'contracts.sqlite'}", tables=KIT_TABLES + dead_letters.TABLES)
    database.create_all()
    yield database
    database.dispose()


def letters(db) -> list[DeadLetter]:
    with db.session() as session:
        return list(session.execute(select(DeadLetter)).scalars())


def test_a_publish_to_the_crm_dead_fanout_reaches_its_queue_in_the_embedded_broker(tmp_path):
    embedded.register()
    with Connection(f"crmdb+sqlite:///{tmp_path / 'broker.sqlite'}") as conn:
        topology.declare_all(conn.default_channel)
        Producer(conn.default_channel).publish(
            b'{"id": "m-1"}', exchange=topology.DEAD.name, routing_key="contract.cancelled", serializer=None,
            content_type="application/json", content_encoding="utf-8", headers=HEADERS, message_id="m-1")
        message = topology.DEAD_QUEUE(conn.default_channel).get(no_ack=True)
    assert message is not None and message.headers["x-original-queue"] == "crm.inventory.stock"


def test_a_redelivered_dead_letter_is_kept_once_and_a_replay_puts_the_body_on_its_queue(db):
    envelope = Envelope(type="contract.cancelled", source="contracts", data={})
    body = envelope.to_json().encode()
    for _ in range(2):  # crm.dead delivers at least once
        with db.session() as session:
            dead_letters.record(body, dict(HEADERS), {"message_id": "relay-row-id"}, session)
    [letter] = letters(db)
    assert (letter.message_id, letter.type, letter.original_queue, letter.consumer) == (
        envelope.id, "contract.cancelled", "crm.inventory.stock", "inventory")
    assert letter.error == HEADERS["x-error"] and json.loads(letter.body) == envelope.to_dict()

    # The same message failing again later is a second letter (a new x-dead-lettered-at).
    with db.session() as session:
        dead_letters.record(body, dict(HEADERS, **{"x-dead-lettered-at": "2026-03-01T08:05:00Z"}), {}, session)
    assert len(letters(db)) == 2

    with db.session() as session:
        replayed = dead_letters.replay(session, letter.id)
        assert replayed.replay_count == 1 and replayed.replayed_at is not None
    with db.session() as session:
        [row] = session.execute(select(OutboxMessage)).scalars()
        assert (row.exchange, row.routing_key, row.body, row.published) == ("", "crm.inventory.stock",
                                                                            body.decode(), False)


def test_undecodable_bodies_are_kept_and_unknown_queues_are_not_replayed(db):
    with db.session() as session:
        dead_letters.record(b"\xff not json", {"x-original-queue": "crm.nowhere", "x-error": "undecodable"},
                            {"message_id": "m-9"}, session)
    [letter] = letters(db)
    assert letter.message_id == "m-9" and letter.original_queue == "crm.nowhere"
    with pytest.raises(Conflict), db.session() as session:
        dead_letters.replay(session, letter.id)
    with pytest.raises(NotFound), db.session() as session:
        dead_letters.replay(session, "no-such-letter")
