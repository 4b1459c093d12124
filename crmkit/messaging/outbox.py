"""Transactional outbox: events are rows written with the change, and a relay publishes them."""
from __future__ import annotations

import functools
import logging
import threading
import time
import weakref

from kombu import Producer
from sqlalchemy import bindparam, func, literal, select, update
from sqlalchemy.exc import UnboundExecutionError
from sqlalchemy.orm import Session

from crmkit.db import after_commit, commit_will_run
from crmkit.messaging import broker, topology
from crmkit.messaging.envelope import Envelope, dumps
from crmkit.metrics import EVENTS_PUBLISHED
from crmkit.models import OutboxMessage
from crmkit.timeutil import utcnow

log = logging.getLogger(__name__)

# With a wake-up on every commit that wrote outbox rows, polling is only a safety net.
IDLE_POLL_SECONDS = 1.0
_ANNOUNCED = "crm_outbox_announced"
_relay_wakers: dict[tuple, weakref.WeakSet] = {}  # (database URL, schema) -> wake events of relays in this process


def emit(session: Session, source: str, type: str, data: dict, correlation_id: str | None = None) -> Envelope:
    """Record an event in the caller's transaction; it is published only if that transaction commits."""
    envelope = Envelope(type=type, source=source, data=data, correlation_id=correlation_id)
    enqueue(session, topology.EVENTS.name, type, envelope.to_json(), envelope.id)
    return envelope


def emit_department(session: Session, department: str, message: dict) -> None:
    """Record a department message (SPEC §4 shape) for crm.departments, routed by department name."""
    enqueue(session, topology.DEPARTMENTS.name, department, dumps(message), message["id"])


def enqueue(session: Session, exchange: str, routing_key: str, body: str, row_id: str) -> None:
    """Any outbox row (an event, a department message, a replayed dead letter) and the relay's wake-up."""
    key, channel = _announcement(session)
    # A plain INSERT, not an ORM object: several per transaction on every hot path, and the unit of work's
    # bookkeeping cost more than the statement itself.
    session.execute(_INSERT if channel is None else _insert_notifying(channel),
                    {"id": row_id, "exchange": exchange, "routing_key": routing_key, "body": body,
                     "created_at": utcnow(), "published": False, "attempts": 0})
    if key is not None:  # only now: a failed INSERT announced nothing
        after_commit(session, functools.partial(_wake_relays, key), once_per=_ANNOUNCED)


_INSERT = OutboxMessage.__table__.insert()


@functools.lru_cache(maxsize=None)
def _insert_notifying(channel: str):
    """The INSERT that also sends the NOTIFY: RETURNING evaluates pg_notify, so it needs no round trip of its
    own (on the gateway's create and confirm, that round trip was inside the document counter's lock)."""
    return _INSERT.returning(func.pg_notify(literal(channel), literal("")))


def _outbox_key(bind) -> tuple:
    return str(bind.engine.url), bind.get_execution_options().get("crm_schema")


def notify_channel(bind) -> str:
    """The PostgreSQL NOTIFY channel of one service's outbox (its schema, on a shared database)."""
    schema = _outbox_key(bind)[1]
    return f"crm_outbox_{schema}" if schema else "crm_outbox"


def _announcement(session: Session) -> tuple[tuple | None, str | None]:
    """How this transaction's first outbox row wakes the relays when it commits: this process's directly (the
    outbox's key), other processes' by NOTIFY (the channel, when no relay of this outbox runs here, as in the
    web processes). (None, None) once announced. A NOTIFY is transactional: delivered at commit, dropped on
    rollback, one per channel per transaction.
    """
    if commit_will_run(session, _ANNOUNCED):
        return None, None
    try:
        bind = session.get_bind()
    except UnboundExecutionError:
        return None, None
    key = _outbox_key(bind)
    if bind.dialect.name == "postgresql" and not _relay_wakers.get(key):
        return key, notify_channel(bind)
    return key, None


def _wake_relays(key: tuple) -> None:
    for wake in list(_relay_wakers.get(key, ())):
        wake.set()


class BatchConfirms:
    """Publisher confirms for a whole batch: publish every row, then wait once for the broker's acks.

    Waiting for each message's confirm (kombu's confirm_publish) costs a broker round trip per event and
    caps a relay at a few hundred events/s; one wait per batch keeps the same guarantee: nothing is
    marked published until the broker has confirmed it. A nack is per message (a queue full under
    `overflow: reject-publish`, say): the batch learns which publishes were refused.
    """

    def __init__(self, connection):
        self.connection = connection
        channel = connection.default_channel
        channel.confirm_select()
        channel.events["basic_ack"].add(self._ack)
        channel.events["basic_nack"].add(self._nack)
        self.next_tag = 1  # the broker numbers a channel's publishes from 1 after confirm.select
        self.unconfirmed: set[int] = set()
        self.refused: set[int] = set()

    def published(self) -> int:
        """Count one publish; its delivery tag."""
        tag = self.next_tag
        self.unconfirmed.add(tag)
        self.next_tag += 1
        return tag

    def _ack(self, tag, multiple):
        if multiple:
            self.unconfirmed = {t for t in self.unconfirmed if t > tag}
        else:
            self.unconfirmed.discard(tag)

    def _nack(self, tag, multiple):
        self.refused |= {t for t in self.unconfirmed if t <= tag} if multiple else {tag}
        self._ack(tag, multiple)

    def wait(self, timeout: float) -> set[int]:
        """Return once the broker has answered every publish: the tags it refused (nacked). Raise when
        `timeout` passes first."""
        deadline = time.monotonic() + timeout
        while self.unconfirmed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(self.unconfirmed)} publishes not confirmed within {timeout}s")
            self.connection.drain_events(timeout=remaining)
        refused, self.refused = self.refused, set()
        return refused


class Relay:
    """Publishes unsent outbox rows with publisher confirms; a broker outage only delays them."""

    def __init__(self, db, settings, batch_size: int = 200, confirm_timeout: float = 5.0):
        self.db = db
        self.settings = settings
        self.batch_size = batch_size
        self.confirm_timeout = confirm_timeout
        self.interval = settings.relay_interval
        self.stopped = threading.Event()
        # Set by a commit that wrote outbox rows (this process) or a NOTIFY (another process, PostgreSQL).
        self.wake = threading.Event()
        self.listening = False
        self._conn = None
        self._producer = None
        self._confirms = None
        # One statement takes a batch: it marks the rows published and returns them, and the mark holds only if
        # the transaction commits, which it does after the broker confirmed every row (a SELECT and then an
        # UPDATE cost a statement more per batch, and at moderate load a batch is one or two rows). Plain
        # columns, not ORM objects, and built once: it runs for every batch.
        outbox = OutboxMessage.__table__
        pending = (select(outbox.c.seq).where(outbox.c.published.is_(False)).order_by(outbox.c.seq)
                   .limit(batch_size))
        if not db.is_sqlite:
            # Several relays may run (scaled workers): each takes rows the others have not locked.
            pending = pending.with_for_update(skip_locked=True)
        self._take = self._taking(pending)
        # Rows the broker refused, held back for a while (seq -> (monotonic time due, refusals so far)): the
        # rest of the outbox goes on meanwhile. Kept by this relay only; another relay that takes one is
        # refused too while the cause lasts, and holds it itself.
        self._held: dict[int, tuple[float, int]] = {}
        self._take_unheld = self._taking(pending.where(outbox.c.seq.not_in(bindparam("held", expanding=True))))
        self._unpublish = (update(outbox).where(outbox.c.seq == bindparam("s"))
                           .values(published=False, published_at=None, attempts=outbox.c.attempts + 1))

    @staticmethod
    def _taking(pending):
        outbox = OutboxMessage.__table__
        return (update(outbox).where(outbox.c.seq.in_(pending.scalar_subquery()))
                .values(published=True, published_at=bindparam("at"))
                .returning(outbox.c.seq, outbox.c.id, outbox.c.exchange, outbox.c.routing_key, outbox.c.body))

    def _ensure_producer(self):
        if self._producer is None:
            self._conn = broker.connect(self.settings)
            self._conn.ensure_connection(max_retries=1, timeout=5)
            broker.declare_topology(self._conn)
            # The embedded broker stores a publish before returning: nothing to confirm there.
            self._confirms = None if self.settings.embedded else BatchConfirms(self._conn)
            self._producer = Producer(self._conn.default_channel)
        return self._producer

    def _reset(self):
        self._producer = None
        self._confirms = None
        if self._conn is not None:
            try:
                self._conn.release()
            except Exception:  # the connection is already broken; nothing left to release
                pass
        self._conn = None

    def publish_batch(self) -> int:
        """Publish one batch; returns how many rows were published and marked."""
        # A bare connection, not a session: nothing here is ORM, and at moderate load a batch is one or two
        # rows, so the session's per-transaction bookkeeping was a measurable part of every event's cost.
        held = self._still_held()
        with self.db.engine.begin() as conn:
            if held:
                rows = conn.execute(self._take_unheld, {"at": utcnow(), "held": held}).all()
            else:
                rows = conn.execute(self._take, {"at": utcnow()}).all()
            if not rows:
                return 0
            rows.sort(key=lambda row: row.seq)  # RETURNING keeps no order; events go out as written
            producer = self._ensure_producer()
            tags = []
            for row in rows:
                producer.publish(
                    row.body, exchange=row.exchange, routing_key=row.routing_key,
                    serializer=None, content_type="application/json", content_encoding="utf-8",
                    delivery_mode=2, message_id=row.id, type=row.routing_key, retry=False,
                    timeout=self.confirm_timeout)
                if self._confirms is not None:
                    tags.append(self._confirms.published())
            refused = []
            if self._confirms is not None:
                # Unconfirmed (timeout, lost connection): the exception rolls this transaction back, the rows are
                # unpublished again and the whole batch goes out again; consumers skip the copies. Refused
                # (nacked): only those rows go back, held for a while, and the rest of the batch stands.
                nacked = self._confirms.wait(self.confirm_timeout)
                refused = [row for row, tag in zip(rows, tags) if tag in nacked]
            if refused:
                conn.execute(self._unpublish, [{"s": row.seq} for row in refused])
            if self._held:
                for row in rows:
                    self._held.pop(row.seq, None)
            if refused:
                self._hold(refused)
            EVENTS_PUBLISHED.labels(self.settings.service).inc(len(rows) - len(refused))
            return len(rows) - len(refused)

    def _still_held(self) -> list[int]:
        now = time.monotonic()
        return [seq for seq, (due, _) in self._held.items() if due > now]

    def _hold(self, rows) -> None:
        """Rows the broker refused: tried again after a pause that grows with each refusal (1 s … 60 s)."""
        now, pause = time.monotonic(), 1.0
        for row in rows:
            refusals = self._held.get(row.seq, (0.0, 0))[1] + 1
            pause = min(2.0 ** (refusals - 1), 60.0)
            self._held[row.seq] = (now + pause, refusals)
        if len(self._held) > 10_000:  # rows long since published by another relay, or removed
            self._held = {seq: held for seq, held in self._held.items() if held[0] > now}
        where = sorted({f"{row.exchange or '(default)'}/{row.routing_key}" for row in rows})
        log.warning("relay %s: the broker refused %d message%s for %s (a queue full or refusing, see its "
                    "policy); kept, tried again in %.0f s", self.settings.service, len(rows),
                    "" if len(rows) == 1 else "s", ", ".join(where), pause)

    def _idle_wait(self) -> float:
        """How long to sleep with nothing to publish when no wake-up comes."""
        if self.listening or (self.db.is_sqlite and self.settings.embedded):
            return IDLE_POLL_SECONDS  # every writer wakes us: polling only catches what slipped past
        return self.interval  # writers in other processes we cannot hear: poll

    def _listen(self):
        """Wake on NOTIFY from other processes' commits (the web processes write outbox rows too)."""
        import psycopg
        dsn = self.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        channel = notify_channel(self.db.engine)
        while not self.stopped.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'LISTEN "{channel}"')
                    self.listening = True
                    self.wake.set()  # rows written while nobody listened
                    while not self.stopped.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self.wake.set()
            except Exception as exc:  # database away: the relay polls at its interval until we are back
                log.info("relay %s: not listening for outbox notifications (%s)", self.settings.service, exc)
            finally:
                self.listening = False
            self.stopped.wait(1.0)

    def run(self):
        backoff = 0.5
        # While this relay runs, commits in this process wake it directly and send no NOTIFY: a NOTIFY
        # would cost a statement and wake the listener for a second, empty read of the outbox.
        wakers = _relay_wakers.setdefault(_outbox_key(self.db.engine), weakref.WeakSet())
        wakers.add(self.wake)
        if not self.db.is_sqlite:
            threading.Thread(target=self._listen, name=f"{self.settings.service}-relay-listen", daemon=True).start()
        while not self.stopped.is_set():
            try:
                self.wake.clear()
                count = self.publish_batch()
                backoff = 0.5
                if count < self.batch_size:
                    self.wake.wait(self._idle_wait())
            except Exception as exc:  # broker or database away: keep the rows, try again later
                log.warning("relay %s: publish failed (%s); retrying in %.1fs", self.settings.service, exc, backoff)
                self._reset()
                self.stopped.wait(backoff)
                backoff = min(backoff * 2, 10)
        wakers.discard(self.wake)
        self._reset()

    def stop(self):
        self.stopped.set()
        self.wake.set()


def pending_count(db) -> int:
    from sqlalchemy import func
    with db.session() as session:
        return session.execute(select(func.count()).select_from(OutboxMessage)
                               .where(OutboxMessage.published.is_(False))).scalar_one()
