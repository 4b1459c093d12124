"""The embedded broker: a kombu transport keeping messages in one SQLite file.

kombu's own SQLAlchemy transport hides a message when it is fetched and never shows it again if the
process dies before the ack; this one leases it instead, so an unacknowledged message comes back
after a crash (at-least-once, like RabbitMQ). Bindings live in memory per process, which is why the
embedded mode runs every service in one process and declares the whole topology on each connection.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from kombu.transport import TRANSPORT_ALIASES, virtual
from kombu.utils.encoding import bytes_to_str

LEASE_SECONDS = 300.0
_SHARED_STATE = virtual.BrokerState()
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    tag TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    leased_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_messages_queue ON messages (queue, leased_until, id);
"""


def _connect(path: str) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    return conn


def database_path(hostname: str) -> str:
    """The file behind a URL of the form crmdb+sqlite:///path/broker.sqlite."""
    return hostname[len("sqlite:///"):] if hostname.startswith("sqlite:///") else hostname


def release_all_leases(path: str) -> int:
    """Make every leased message visible again; called when the only consuming process starts."""
    conn = _connect(path)
    try:
        return conn.execute("UPDATE messages SET leased_until = 0 WHERE leased_until > 0").rowcount
    finally:
        conn.close()


class Channel(virtual.Channel):
    polling_interval = 0.05
    _lock = threading.Lock()

    def __init__(self, connection, **kwargs):
        super().__init__(connection, **kwargs)
        self._db = _connect(database_path(connection.client.hostname))

    def _write(self, sql, params=()):
        return self._db.execute(sql, params)

    def _new_queue(self, queue, **kwargs):
        pass

    def _has_queue(self, queue, **kwargs):
        return True

    def _put(self, queue, message, **kwargs):
        # A topic publish hands the same dict to several queues: each stored copy gets its own tag.
        message = dict(message, properties=dict(message["properties"], delivery_tag=str(uuid.uuid4())))
        self._write("INSERT INTO messages (queue, tag, payload) VALUES (?, ?, ?)",
                    (queue, message["properties"]["delivery_tag"], json.dumps(message)))

    # kombu's virtual fanout exchange delivers only through _put_fanout (made for Redis pub/sub): without it a
    # publish to crm.dead (fanout) vanished. Here a fanout is one stored copy per bound queue.
    supports_fanout = True

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        pass  # the bindings are in the shared in-memory state already

    def _put_fanout(self, exchange, message, routing_key, **kwargs):
        for queue in self._lookup(exchange, routing_key):
            self._put(queue, message, **kwargs)

    def _get(self, queue):
        now = time.time()
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            row = cur.execute("SELECT id, payload FROM messages WHERE queue = ? AND leased_until < ? "
                              "ORDER BY id LIMIT 1", (queue, now)).fetchone()
            if row is None:
                raise virtual.Empty()
            cur.execute("UPDATE messages SET leased_until = ? WHERE id = ?", (now + LEASE_SECONDS, row[0]))
        finally:
            cur.execute("COMMIT")
        return json.loads(bytes_to_str(row[1]))

    def _size(self, queue):
        return self._db.execute("SELECT count(*) FROM messages WHERE queue = ?", (queue,)).fetchone()[0]

    def _purge(self, queue):
        return self._write("DELETE FROM messages WHERE queue = ? AND leased_until = 0", (queue,)).rowcount

    def _delete(self, queue, *args, **kwargs):
        self._purge(queue)

    def basic_ack(self, delivery_tag, multiple=False):
        self._write("DELETE FROM messages WHERE tag = ?", (delivery_tag,))
        super().basic_ack(delivery_tag, multiple)

    def basic_reject(self, delivery_tag, requeue=False):
        if requeue:
            self._write("UPDATE messages SET leased_until = 0 WHERE tag = ?", (delivery_tag,))
        else:
            self._write("DELETE FROM messages WHERE tag = ?", (delivery_tag,))
        self.qos._quick_ack(delivery_tag)

    def _restore(self, message):
        # Unacknowledged at close: the stored copy is still there, so only its lease is lifted.
        self._write("UPDATE messages SET leased_until = 0 WHERE tag = ?", (message.delivery_tag,))

    def close(self):
        super().close()
        try:
            self._db.close()
        except sqlite3.Error:
            pass


class Transport(virtual.Transport):
    Channel = Channel
    driver_type = "sqlite"
    driver_name = "crmdb"
    default_port = 0
    connection_errors = virtual.Transport.connection_errors + (sqlite3.OperationalError,)

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        self.state = _SHARED_STATE

    def driver_version(self):
        return sqlite3.sqlite_version


def register() -> None:
    TRANSPORT_ALIASES.setdefault("crmdb", "crmkit.messaging.embedded:Transport")
