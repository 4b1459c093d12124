"""The kit's Worker and Relay against a real RabbitMQ vhost: retries, dead letters, inbox, confirms."""
from __future__ import annotations

import json
import threading
import time

import pytest
from kombu import Connection, Producer, Queue, binding

from crmkit.db import Database, insert_ignore
from crmkit.messaging import topology
from crmkit.messaging.consumer import Worker, keyed_by_event, only_if
from crmkit.messaging.envelope import Envelope
from crmkit.messaging.outbox import Relay, emit, pending_count
from crmkit.models import KIT_TABLES, InboxMessage, OutboxMessage, Sequence
from crmkit.numbering import next_value
from crmkit.settings import Settings
from sqlalchemy import func, select
from support.infra import drop_vhost, make_vhost, wait_for
from support.tcpproxy import TcpProxy

TYPES = ("test.poison", "test.good", "test.flaky")
WORK = Queue("crm.test.work", exchange=topology.EVENTS, durable=True,
             bindings=[binding(topology.EVENTS, routing_key=t) for t in TYPES])


def settings_for(tmp_path, amqp_url) -> Settings:
    return Settings.from_env("inventory", {"AMQP_URL": amqp_url, "CRM_VAR_DIR": str(tmp_path),
                                           "CRM_SECRET_KEY": "test", "CRM_WORKER_THREADS": "2",
                                           "CRM_RELAY_INTERVAL": "0.02"})


@pytest.fixture(scope="module")
def module_vhost():
    """One vhost for the module (rabbitmqctl is slow); each test starts from purged queues."""
    url, vhost = make_vhost()
    yield url
    drop_vhost(vhost)


@pytest.fixture
def amqp_url(module_vhost):
    with Connection(module_vhost) as conn:
        channel = conn.default_channel
        topology.declare_all(channel)
        for queue in (WORK, topology.DEAD_QUEUE):
            queue(channel).declare()
            queue(channel).purge()
    return module_vhost


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'service.sqlite'}", tables=KIT_TABLES)
    database.create_all()
    yield database
    database.dispose()


def effects(db) -> int:
    with db.session() as session:
        return session.execute(select(Sequence.value).where(Sequence.name == "effects")).scalar() or 0


def count_effect(envelope, session, ctx):
    next_value(session, "effects")


class Running:
    """A Worker on its own thread, stopped at the end of the test."""

    def __init__(self, db, settings, handlers):
        self.worker = Worker(db, settings, handlers, queues=[WORK], threads=2, retry_delays=(0.05, 0.1, 0.1))
        self.thread = threading.Thread(target=self.worker.run_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        assert self.worker.ready.wait(20), "worker did not start consuming"
        return self.worker

    def __exit__(self, *exc):
        self.worker.stop()
        self.thread.join(10)
        self.worker.pool.shutdown(wait=True)
        self.worker.connection.release()


def publish(amqp_url, routing_key, body, message_id=None, content_type="application/json"):
    with Connection(amqp_url) as conn:
        Producer(conn.default_channel).publish(
            body, exchange=topology.EVENTS, routing_key=routing_key, serializer=None, content_type=content_type,
            content_encoding="utf-8", delivery_mode=2, message_id=message_id, declare=[WORK])


def event(type_, data=None, id_=None) -> Envelope:
    return Envelope(type=type_, source="test", data=data or {}, **({"id": id_} if id_ else {}))


def dead_letters(amqp_url) -> list:
    """Everything in crm.dead right now (taken off the queue)."""
    found = []
    with Connection(amqp_url) as conn:
        queue = topology.DEAD_QUEUE(conn.default_channel)
        queue.declare()
        while (message := queue.get(no_ack=True)) is not None:
            found.append(message)
    return found


def queue_depth(amqp_url, queue: Queue) -> int:
    with Connection(amqp_url) as conn:
        return queue(conn.default_channel).queue_declare(passive=True).message_count


def test_poison_message_is_dead_lettered_with_its_error_and_the_queue_keeps_flowing(tmp_path, amqp_url, db):
    calls = []

    def always_fails(envelope, session, ctx):
        calls.append(envelope.id)
        raise RuntimeError("the handler cannot digest this")

    handlers = {"test.poison": always_fails, "test.good": count_effect}
    with Running(db, settings_for(tmp_path, amqp_url), handlers) as worker:
        poison = event("test.poison", {"n": 1})
        publish(amqp_url, "test.poison", poison.to_json(), poison.id)
        good = event("test.good")
        publish(amqp_url, "test.good", good.to_json(), good.id)

        wait_for(lambda: effects(db) == 1, message="the good message after the poison handled")
        dead = wait_for(lambda: dead_letters(amqp_url), message="the poison message in crm.dead")
        wait_for(lambda: queue_depth(amqp_url, WORK) == 0, message="the work queue drained")

    assert len(calls) == len(worker.retry_delays) + 1  # bounded: the first try and one per delay
    assert len(dead) == 1
    message = dead[0]
    assert json.loads(message.body)["id"] == poison.id  # the original body, untouched
    assert message.headers["x-original-queue"] == "crm.test.work"
    assert message.headers["x-original-routing-key"] == "test.poison"
    assert "RuntimeError: the handler cannot digest this" in message.headers["x-error"]
    with db.session() as session:  # the failed attempts left nothing behind, not even an inbox row
        assert session.get(InboxMessage, ("inventory", poison.id)) is None
        assert session.get(InboxMessage, ("inventory", good.id)) is not None


BAD_BODIES = [
    (b"{not json at all", "application/json", "undecodable"),
    (b"\xff\xfe\x00garbage", "application/octet-stream", "undecodable"),
    (json.dumps({"type": "test.good", "data": {}}).encode(), "application/json", "lacks id"),
    (json.dumps(["an", "array"]).encode(), "application/json", "undecodable"),
    # kombu refuses to unpickle; the worker must neither run it nor die of the refusal
    (b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00.", "application/x-python-serialize", "undecodable"),
]


def test_undecodable_messages_go_to_crm_dead_and_the_worker_lives_on(tmp_path, amqp_url, db):
    with Running(db, settings_for(tmp_path, amqp_url), {"test.good": count_effect}):
        for body, content_type, _ in BAD_BODIES:
            publish(amqp_url, "test.good", body, content_type=content_type)
        good = event("test.good")
        publish(amqp_url, "test.good", good.to_json(), good.id)
        wait_for(lambda: effects(db) == 1, message="a good message after the bad ones handled")
        dead = []
        wait_for(lambda: dead.extend(dead_letters(amqp_url)) or len(dead) >= len(BAD_BODIES),
                 message="every bad body in crm.dead")
    assert len(dead) == len(BAD_BODIES)
    by_body = {}
    for message in dead:
        raw = message.body
        by_body[raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw] = message.headers
    for body, _, reason in BAD_BODIES:
        assert reason in by_body[body]["x-error"]
        assert by_body[body]["x-original-queue"] == "crm.test.work"


def test_a_handler_that_fails_once_then_succeeds_has_its_effect_exactly_once(tmp_path, amqp_url, db):
    attempts = []

    def flaky(envelope, session, ctx):
        attempts.append(envelope.id)
        next_value(session, "effects")  # written, then rolled back with the failure below
        if len(attempts) == 1:
            raise ConnectionError("a passing hiccup")

    with Running(db, settings_for(tmp_path, amqp_url), {"test.flaky": flaky}):
        flaky_event = event("test.flaky")
        publish(amqp_url, "test.flaky", flaky_event.to_json(), flaky_event.id)
        wait_for(lambda: effects(db) == 1, message="the flaky message handled")
        wait_for(lambda: queue_depth(amqp_url, WORK) == 0, message="the work queue drained")
    assert len(attempts) == 2
    assert effects(db) == 1
    assert dead_letters(amqp_url) == []
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(InboxMessage)).scalar_one() == 1


def test_the_same_event_delivered_twice_has_its_effect_once(tmp_path, amqp_url, db):
    calls = []

    def record(envelope, session, ctx):
        calls.append(envelope.id)
        next_value(session, "effects")

    with Running(db, settings_for(tmp_path, amqp_url), {"test.good": record}):
        twice = event("test.good")
        publish(amqp_url, "test.good", twice.to_json(), twice.id)
        wait_for(lambda: effects(db) == 1, message="the first copy handled")
        publish(amqp_url, "test.good", twice.to_json(), twice.id)
        # A third, distinct event after the duplicate: once it is handled, the duplicate has been seen.
        after = event("test.good")
        publish(amqp_url, "test.good", after.to_json(), after.id)
        wait_for(lambda: effects(db) == 2 and queue_depth(amqp_url, WORK) == 0, message="the later event handled")
    assert calls.count(twice.id) == 1
    assert effects(db) == 2


def test_a_handler_keyed_by_the_event_writes_once_per_event_without_an_inbox_row(tmp_path, amqp_url, db):
    calls = []

    @keyed_by_event
    def record(envelope, session, ctx):
        calls.append(envelope.id)
        insert_ignore(session, Sequence.__table__, {"name": envelope.id, "value": 1})

    def rows():
        with db.session() as session:
            return session.execute(select(Sequence.name).order_by(Sequence.name)).scalars().all()

    with Running(db, settings_for(tmp_path, amqp_url), {"test.good": record}):
        twice, after = event("test.good"), event("test.good")
        publish(amqp_url, "test.good", twice.to_json(), twice.id)
        wait_for(lambda: rows() == [twice.id], message="the first copy handled")
        publish(amqp_url, "test.good", twice.to_json(), twice.id)
        publish(amqp_url, "test.good", after.to_json(), after.id)
        wait_for(lambda: len(calls) == 3 and queue_depth(amqp_url, WORK) == 0, message="all three consumed")
    assert sorted(calls) == sorted([twice.id, twice.id, after.id])  # the copy ran, and wrote nothing
    assert rows() == sorted([twice.id, after.id])
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(InboxMessage)).scalar() == 0


def test_events_a_handler_is_not_concerned_with_are_acknowledged_without_a_transaction(tmp_path, amqp_url, db):
    calls = []

    @only_if(lambda envelope: envelope.data.get("mine") is True)
    def record(envelope, session, ctx):
        calls.append(envelope.id)
        next_value(session, "effects")

    with Running(db, settings_for(tmp_path, amqp_url), {"test.good": record}):
        others = [event("test.good", {"mine": False}) for _ in range(3)]
        mine = event("test.good", {"mine": True})
        for one in others + [mine]:
            publish(amqp_url, "test.good", one.to_json(), one.id)
        wait_for(lambda: effects(db) == 1 and queue_depth(amqp_url, WORK) == 0, message="all four consumed")
    assert calls == [mine.id]
    assert dead_letters(amqp_url) == []
    with db.session() as session:  # only the handled one left an inbox row
        assert session.execute(select(InboxMessage.message_id)).scalars().all() == [mine.id]


def test_the_relay_publishes_with_confirms_and_marks_rows_published(tmp_path, amqp_url, db):
    settings = settings_for(tmp_path, amqp_url)
    with Connection(amqp_url) as conn:
        WORK(conn.default_channel).declare()
    with db.session() as session:
        sent = [emit(session, "test", "test.good", {"n": i}) for i in range(5)]
    relay = Relay(db, settings)
    try:
        assert relay.publish_batch() == 5
    finally:
        relay._reset()
    assert pending_count(db) == 0
    with db.session() as session:
        rows = session.execute(select(OutboxMessage).order_by(OutboxMessage.seq)).scalars().all()
        assert all(row.published and row.published_at for row in rows)
    received = []
    with Connection(amqp_url) as conn:
        queue = WORK(conn.default_channel)
        while (message := queue.get(no_ack=True)) is not None:
            received.append(message)
    assert [json.loads(m.body)["id"] for m in received] == [e.id for e in sent]
    assert all(m.properties["delivery_mode"] == 2 for m in received)
    assert [m.properties["message_id"] for m in received] == [e.id for e in sent]


def test_a_batch_the_broker_does_not_confirm_stays_unpublished_and_goes_out_again(tmp_path, amqp_url, db_url):
    # The relay marks a batch published as it takes it; the mark must hold only once the broker confirmed.
    database = Database(db_url, tables=KIT_TABLES)
    database.create_all()
    with Connection(amqp_url) as conn:
        WORK(conn.default_channel).declare()
    with database.session() as session:
        sent = [emit(session, "test", "test.good", {"n": i}) for i in range(3)]
    relay = Relay(database, settings_for(tmp_path, amqp_url))
    try:
        relay._ensure_producer()
        confirmed = relay._confirms.wait

        def unconfirmed(timeout):  # as a nack, or acks lost with the connection, would end
            raise TimeoutError("3 publishes not confirmed")

        relay._confirms.wait = unconfirmed
        with pytest.raises(TimeoutError):
            relay.publish_batch()
        assert pending_count(database) == 3
        relay._confirms.wait = confirmed
        assert relay.publish_batch() == 3
        assert pending_count(database) == 0
    finally:
        relay._reset()
        database.dispose()
    ids = []
    with Connection(amqp_url) as conn:
        queue = WORK(conn.default_channel)
        while (message := queue.get(no_ack=True)) is not None:
            ids.append(message.properties["message_id"])
    # The broker did get the first copies: each event arrives twice, in order, and consumers skip the second.
    assert ids == [e.id for e in sent] * 2


def test_a_relay_with_the_broker_away_keeps_its_rows_and_publishes_them_later(tmp_path, amqp_url, db):
    proxy = TcpProxy().start()
    try:
        with Connection(amqp_url) as conn:
            WORK(conn.default_channel).declare()
        proxy.pause()
        relay = Relay(db, settings_for(tmp_path, proxy.url(amqp_url)))
        thread = threading.Thread(target=relay.run, daemon=True)
        thread.start()
        with db.session() as session:
            sent = [emit(session, "test", "test.good", {"n": i}) for i in range(3)]
        # While the broker is away every row stays unpublished (the relay keeps failing and retrying).
        with pytest.raises(AssertionError):
            wait_for(lambda: pending_count(db) < 3, timeout=1.5, message="a row published without a broker")
        assert pending_count(db) == 3
        proxy.resume()
        wait_for(lambda: pending_count(db) == 0, timeout=30, message="the rows published after the broker is back")
        relay.stop()
        thread.join(15)
    finally:
        proxy.stop()
    with Connection(amqp_url) as conn:
        queue = WORK(conn.default_channel)
        ids = []
        while (message := queue.get(no_ack=True)) is not None:
            ids.append(json.loads(message.body)["id"])
    assert ids == [e.id for e in sent]


def test_a_broker_refusing_our_credentials_costs_a_line_per_attempt_not_a_traceback(tmp_path, amqp_url, db, caplog):
    """A wrong AMQP password once wrote some 1,400 log lines (25 tracebacks) in 25 s per worker process."""
    wrong = amqp_url.replace("guest:guest@", "guest:not-the-password@")
    assert wrong != amqp_url
    worker = Worker(db, settings_for(tmp_path, wrong), {"test.good": count_effect}, queues=[WORK], threads=1)
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    with caplog.at_level("INFO"):
        thread.start()
        time.sleep(4)
        worker.stop()
        thread.join(40)
    worker.pool.shutdown(wait=True)
    assert not thread.is_alive()
    lines = [r for r in caplog.records if r.name.startswith(("crmkit", "kombu"))]
    assert 1 <= len(lines) <= 5, [r.getMessage() for r in lines]  # attempts after 1, 2 and 4 s
    assert all(r.exc_info is None for r in lines)
    assert "ACCESS_REFUSED" in lines[0].getMessage() and "reconnecting in" in lines[0].getMessage()
