"""Broker connections: RabbitMQ from AMQP_URL, or the embedded SQLite broker when it is unset."""
from __future__ import annotations

from kombu import Connection

from crmkit.messaging import embedded, topology


def connect(settings, *, confirm: bool = False, heartbeat: int = 30) -> Connection:
    """A new (lazy) connection; callers own it. Nothing connects at import time."""
    embedded.register()
    options = {"confirm_publish": True} if confirm and not settings.embedded else {}
    if settings.embedded:
        return Connection(settings.broker_url, transport_options={"polling_interval": 0.05})
    return Connection(settings.broker_url, heartbeat=heartbeat, transport_options=options,
                      connect_timeout=5)


def declare_topology(connection: Connection) -> None:
    topology.declare_all(connection.default_channel)


def ping(settings) -> bool:
    """True when the broker answers; used by /readyz."""
    with connect(settings) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        conn.default_channel
    return True
