"""A department queue belongs to the department's consumer as much as to us: it may declare it with its own
arguments (a dead-letter exchange, a length limit), and a full queue refusing new messages holds back only its
own messages. On the real RabbitMQ, read with pika as the department's program does."""
from __future__ import annotations

import json
import time
import uuid

import pika
import pytest
from sqlalchemy import select

from crmkit.db import Database
from crmkit.messaging import broker
from crmkit.messaging.outbox import Relay, emit, emit_department
from crmkit.models import KIT_TABLES, OutboxMessage
from crmkit.settings import Settings


@pytest.fixture
def settings(tmp_path, amqp_url):
    return Settings.from_env("notifications", {"AMQP_URL": amqp_url, "CRM_VAR_DIR": str(tmp_path),
                                               "CRM_SECRET_KEY": "test"})


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'notifications.sqlite'}", tables=KIT_TABLES)
    database.create_all()
    yield database
    database.dispose()


@pytest.fixture
def department(amqp_url):
    """The department's own program: a pika channel on the system's vhost."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    yield connection.channel()
    connection.close()


def declare_their_way(channel, name: str, **arguments):
    channel.exchange_declare("crm.departments", exchange_type="topic", durable=True)
    channel.queue_declare(f"crm.department.{name}", durable=True, arguments=arguments)


def drain(channel, queue: str) -> list[str]:
    ids = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return ids
        assert properties.message_id == json.loads(body)["id"]
        ids.append(properties.message_id)


def message(department: str) -> dict:
    return {"id": str(uuid.uuid4()), "type": "contract.confirmed", "department": department, "reason": "x",
            "occurred_at": "2026-11-28T00:00:00Z", "contract": {}, "lines": [], "text": "t"}


def post(db, *departments: str) -> list[str]:
    ids = []
    with db.session() as session:
        for name in departments:
            body = message(name)
            emit_department(session, name, body)
            ids.append(body["id"])
    return ids


def test_a_department_queue_declared_with_the_departments_own_arguments_is_used_as_it_is(settings, db,
                                                                                         department):
    department.exchange_declare("wh.dlx", exchange_type="fanout", durable=True)
    declare_their_way(department, "warehouse", **{"x-dead-letter-exchange": "wh.dlx", "x-max-length": 1000})
    with broker.connect(settings) as conn:  # what every relay and worker does on connecting: no error
        broker.declare_topology(conn)
        broker.declare_topology(conn)  # and again, on the same channel, after a reconnect
    relay = Relay(db, settings)
    try:
        ids = post(db, "warehouse")
        with db.session() as session:
            emit(session, "notifications", "email.sent", {"email_id": "e-1"})
        assert relay.publish_batch() == 2
    finally:
        relay._reset()
    assert drain(department, "crm.department.warehouse") == ids
    assert department.queue_declare("crm.department.warehouse", passive=True).method.message_count == 0


def test_a_full_department_queue_holds_back_only_its_own_messages(settings, db, department):
    # A department capping its queue while its consumer is down: RabbitMQ nacks what does not fit.
    declare_their_way(department, "finance", **{"x-max-length": 1, "x-overflow": "reject-publish"})
    relay = Relay(db, settings)
    try:
        finance = post(db, "finance", "warehouse", "finance", "warehouse", "finance", "warehouse")[0::2]
        assert relay.publish_batch() == 4  # three for the warehouse, the first for finance
        warehouse = drain(department, "crm.department.warehouse")
        assert len(warehouse) == 3
        with db.session() as session:
            waiting = session.execute(select(OutboxMessage.id, OutboxMessage.attempts).where(
                OutboxMessage.published.is_(False)).order_by(OutboxMessage.seq)).all()
        assert waiting == [(finance[1], 1), (finance[2], 1)]  # kept, not lost

        # Held back for a moment: new messages for others go out at once meanwhile, alone.
        [later] = post(db, "warehouse")
        assert relay.publish_batch() == 1 and drain(department, "crm.department.warehouse") == [later]

        received = drain(department, "crm.department.finance")  # the department's consumer is back
        deadline = time.monotonic() + 20
        while len(received) < 3 and time.monotonic() < deadline:
            relay.publish_batch()
            received += drain(department, "crm.department.finance")
            time.sleep(0.2)
        assert sorted(received) == sorted(finance)  # each once
        assert drain(department, "crm.department.warehouse") == []  # no copies of the others
    finally:
        relay._reset()
