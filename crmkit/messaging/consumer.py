"""The idempotent consumer: dispatch by type, inbox in the handler's transaction, ack after commit.

Handlers run on a small thread pool while the connection thread keeps draining, acking and sending
heartbeats, so a slow handler (a PDF, an SMTP call) never lets RabbitMQ drop the connection. A failing
message is retried in place with backoff a bounded number of times, then published to crm.dead with
its error and acknowledged, so the queue keeps flowing.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from kombu import Producer
from kombu.mixins import ConsumerMixin

from crmkit.db import insert_ignore
from crmkit.messaging import broker, topology
from crmkit.messaging.envelope import Envelope
from crmkit.metrics import EVENTS_HANDLED, HANDLER_SECONDS, QUEUE_WAIT_SECONDS
from crmkit.models import InboxMessage
from crmkit.timeutil import iso, utcnow

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.2, 1.0, 3.0, 6.0)  # then dead-lettered: five attempts in about ten seconds


class Skip(Exception):
    """Raised by a handler, before it writes anything, for a message that needs no effect here.

    The message is still recorded as handled (an inbox row, unless the handler is keyed_by_event); whatever the
    handler had written would be committed with it.
    """


def only_if(predicate):
    """Mark a handler as concerned only with events for which `predicate(envelope)` holds.

    The others are acknowledged without a transaction or an inbox row: they have no effect here, so a
    redelivery has nothing to repeat. (Quotes sees every contract.created; few come from a quote.)
    """
    def mark(handler):
        handler.wants = predicate
        return handler
    return mark


def keyed_by_event(handler):
    """Mark a handler whose only write is one statement keyed by the event's id (an INSERT … ON CONFLICT DO
    NOTHING on it); it may read too.

    A copy of the event writes nothing a second time by itself, and a concurrent copy waits on the first one's
    row, so no inbox row is written for it. With one write and no inbox row there is nothing for a transaction
    to hold together, so it runs without one (Database.autocommit): the timeline entry that most events of a
    saga become in the gateway costs one statement, with no BEGIN or COMMIT.
    """
    handler.keyed_by_event = True
    return handler


def handler_session(db, handler):
    """The session a handler runs in: a transaction, or none for a handler keyed by the event."""
    return db.autocommit() if getattr(handler, "keyed_by_event", False) else db.session()


def concerns(handler, envelope: Envelope) -> bool:
    """False for an event the handler declared (only_if) it has nothing to do with."""
    wants = getattr(handler, "wants", None)
    return wants is None or bool(wants(envelope))


class Worker(ConsumerMixin):
    """Consumes one service's queues and calls `handlers[type](envelope, session, ctx)`.

    `raw_consumers` ({queue name: function(body: bytes, headers, properties, session)}) take whole messages
    that are not events of ours (crm.dead): the function runs in one transaction, the ack follows its commit.
    """

    def __init__(self, db, settings, handlers: dict, ctx=None, queues=None, threads: int | None = None,
                 retry_delays=RETRY_DELAYS, raw_consumers: dict | None = None):
        self.db = db
        self.settings = settings
        self.handlers = handlers
        self.ctx = ctx
        self.consumer_name = settings.service
        self.queues = queues if queues is not None else topology.service_queues(settings.service)
        self.threads = threads or settings.worker_threads
        self.retry_delays = retry_delays
        self.raw_consumers = dict(raw_consumers or {})
        self.connection = broker.connect(settings)
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix=f"{settings.service}-handler")
        self.pending = []  # (message, future, on_failure) of the current connection
        self.ready = threading.Event()

    # kombu ConsumerMixin hooks

    def get_consumers(self, Consumer, channel):
        topology.declare_all(channel)
        self._dead_producer = Producer(channel)
        # on_message takes the raw message: decoding happens in handle(), so a bad body is dead-lettered
        # instead of kombu's default of logging and acknowledging it.
        consumers = []
        if self.queues:
            consumers.append(Consumer(queues=self.queues, on_message=self.on_message, accept=None,
                                      prefetch_count=self.threads * 2))
        for name, function in self.raw_consumers.items():
            # The same prefetch as above: the embedded transport keeps one QoS per channel, the last one set.
            consumers.append(Consumer(queues=[topology.queue_of(name)], accept=None,
                                      prefetch_count=self.threads * 2,
                                      on_message=lambda message, function=function: self.on_raw_message(function,
                                                                                                        message)))
        return consumers

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        self._backoff = 1.0
        self.ready.set()

    def on_connection_error(self, exc, interval):
        # One line per attempt: kombu's own logs a traceback each time, dozens of lines every few seconds per
        # process for as long as the broker is away or refuses our credentials.
        log.warning("%s: cannot reach the broker (%s: %s); trying again in %.0f s", self.consumer_name,
                    type(exc).__name__, exc, interval)

    def on_connection_revived(self):
        # Messages of a lost channel will be redelivered; their handlers' results are dropped here,
        # and the inbox makes the redelivery a no-op for those that did commit.
        self.pending = []

    def on_message(self, message):
        self.pending.append((message, self.pool.submit(self.handle, message.body, message.properties),
                             self._dead_letter))

    def on_raw_message(self, function, message):
        future = self.pool.submit(self.handle_raw, function, message.body, dict(message.headers or {}),
                                  dict(message.properties or {}))
        self.pending.append((message, future, self._requeue))

    def on_iteration(self):
        still = []
        for message, future, on_failure in self.pending:
            if not future.done():
                still.append((message, future, on_failure))
                continue
            outcome = future.result()
            if outcome is None:
                message.ack()
            else:
                on_failure(message, outcome)
        self.pending = still

    def run_forever(self):
        """kombu's run(), reconnecting after a lost connection with a growing pause and one log line."""
        errors = self.connection.connection_errors + self.connection.channel_errors
        self._backoff = 1.0
        while not self.should_stop:
            try:
                for _ in self.consume(limit=None, safety_interval=0.02):
                    pass
            except errors as exc:
                log.warning("%s: connection to the broker lost (%s: %s); reconnecting in %.0f s",
                            self.consumer_name, type(exc).__name__, exc, self._backoff)
                deadline = time.monotonic() + self._backoff
                while not self.should_stop and time.monotonic() < deadline:
                    time.sleep(0.1)
                self._backoff = min(self._backoff * 2, 30.0)

    def stop(self):
        self.should_stop = True

    # the work

    def handle(self, raw, properties) -> str | None:
        """Handle one message; returns None when done (or a duplicate), else the final error text."""
        try:
            body = json.loads(raw)
            envelope = Envelope.from_dict(body)
        except (ValueError, TypeError) as exc:
            return f"undecodable message: {exc}"
        handler = self.handlers.get(envelope.type)
        if handler is None:
            return None  # bound by a wildcard or an older topology: nothing to do here
        if not concerns(handler, envelope):
            EVENTS_HANDLED.labels(self.consumer_name, envelope.type, "ignored").inc()
            return None
        self._observe_wait(envelope)
        last_error = None
        for attempt in range(len(self.retry_delays) + 1):
            if attempt:
                time.sleep(self.retry_delays[attempt - 1])
            try:
                with HANDLER_SECONDS.labels(self.consumer_name, envelope.type).time():
                    outcome = self._handle_once(envelope, handler)
                EVENTS_HANDLED.labels(self.consumer_name, envelope.type, outcome).inc()
                return None
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                log.warning("%s: %s %s failed (attempt %d): %s", self.consumer_name, envelope.type,
                            envelope.id, attempt + 1, last_error)
                if attempt == len(self.retry_delays):
                    log.error("%s", traceback.format_exc())
        EVENTS_HANDLED.labels(self.consumer_name, envelope.type, "dead").inc()
        return last_error

    def handle_raw(self, function, body, headers: dict, properties: dict) -> str | None:
        """Run a raw consumer's function in one transaction, retried like a handler; None when done."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        last_error = None
        for attempt in range(len(self.retry_delays) + 1):
            if attempt:
                time.sleep(self.retry_delays[attempt - 1])
            try:
                with self.db.session() as session:
                    function(body, headers, properties, session)
                return None
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                log.warning("%s: raw message %s failed (attempt %d): %s", self.consumer_name,
                            properties.get("message_id"), attempt + 1, last_error)
        return last_error

    def _handle_once(self, envelope: Envelope, handler) -> str:
        with handler_session(self.db, handler) as session:
            # The inbox row first: a concurrent copy of the same event waits on it, then finds it and
            # does nothing, so the handler never runs twice at once. A handler keyed by the event is its
            # own inbox: its one write is unique per event id.
            if not getattr(handler, "keyed_by_event", False) and not insert_ignore(session, InboxMessage.__table__, {
                    "consumer": self.consumer_name, "message_id": envelope.id, "type": envelope.type,
                    "handled_at": utcnow()}):
                return "duplicate"
            try:
                handler(envelope, session, self.ctx)
            except Skip:
                pass  # raised before the handler wrote anything: only the inbox row (if any) is committed
        return "handled"

    def _observe_wait(self, envelope: Envelope):
        try:
            occurred = datetime.fromisoformat(envelope.occurred_at.replace("Z", "+00:00"))
            QUEUE_WAIT_SECONDS.labels(self.consumer_name, envelope.type).observe(
                max(0.0, (utcnow() - occurred).total_seconds()))
        except (ValueError, AttributeError):
            pass

    def _dead_letter(self, message, error: str):
        info = message.delivery_info or {}
        headers = dict(message.headers or {})
        headers.update({"x-error": error[:2000], "x-original-queue": self._queue_of(info),
                        "x-original-exchange": info.get("exchange", ""),
                        "x-original-routing-key": info.get("routing_key", ""),
                        "x-dead-lettered-at": iso(utcnow()), "x-consumer": self.consumer_name})
        self._dead_producer.publish(
            message.body, exchange=topology.DEAD.name, routing_key=info.get("routing_key", ""),
            serializer=None, content_type="application/json", content_encoding="utf-8", delivery_mode=2,
            headers=headers, message_id=message.properties.get("message_id"), retry=True)
        log.error("%s: dead-lettered %s: %s", self.consumer_name, info.get("routing_key"), error)
        message.ack()

    def _requeue(self, message, error: str):
        # A raw queue is crm.dead itself: dead-lettering would loop, dropping would lose the message, so it
        # goes back to its queue and is tried again (the retries above already spaced the attempts out).
        log.error("%s: raw message %s failed its retries, requeued: %s", self.consumer_name,
                  (message.properties or {}).get("message_id"), error)
        message.requeue()

    def _queue_of(self, info) -> str:
        key = info.get("routing_key", "")
        for queue in self.queues:
            if not info.get("exchange") and queue.name == key:  # the default exchange: a replayed dead letter
                return queue.name
            if any(b.routing_key == key for b in (queue.bindings or [])) or queue.routing_key == key:
                return queue.name
        return self.queues[0].name if self.queues else ""
