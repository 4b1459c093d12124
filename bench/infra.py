"""Fresh PostgreSQL databases and RabbitMQ vhosts per run, free ports, waiting for HTTP."""
from __future__ import annotations

import socket
import subprocess
import time
import uuid
from pathlib import Path

import requests
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, what: str = "service") -> None:
    """Poll until url answers 200; raises RuntimeError with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not become ready at {url} within {timeout:.0f}s")


def unique_name(prefix: str = "crm_bench") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# PostgreSQL: a database of its own per run, made and dropped through the server's maintenance database.

def _server_dsn(database_url: str) -> str:
    """A psycopg DSN for the server's `postgres` database, from any SQLAlchemy-style PostgreSQL URL."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql",
                                                                                  database="postgres")
    return url.render_as_string(hide_password=False)


def make_pg_database(database_url: str, prefix: str = "crm_bench") -> tuple[str, str]:
    """(SQLAlchemy URL of a new empty database on the same server, its name)."""
    import psycopg
    name = unique_name(prefix)
    with psycopg.connect(_server_dsn(database_url), connect_timeout=5, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(database_url.replace("postgres://", "postgresql://", 1)).set(
        drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False), name


def drop_pg_database(database_url: str, name: str) -> None:
    import psycopg
    with psycopg.connect(_server_dsn(database_url), connect_timeout=5, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# RabbitMQ: a vhost of its own per run, so queues start empty and other users of the broker are not touched.

def _rabbitmqctl(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)


def amqp_parts(amqp_url: str) -> tuple[str, str]:
    """(scheme://user:password@host:port, user) of an AMQP URL, without its vhost."""
    scheme, rest = amqp_url.split("://", 1)
    authority = rest.split("/", 1)[0]
    user = authority.rsplit("@", 1)[0].split(":", 1)[0] if "@" in authority else "guest"
    return f"{scheme}://{authority}", user


def make_vhost(amqp_url: str, prefix: str = "crm_bench") -> tuple[str, str]:
    """(AMQP URL of a new vhost on the same broker, the vhost's name)."""
    base, user = amqp_parts(amqp_url)
    vhost = unique_name(prefix)
    result = _rabbitmqctl("add_vhost", vhost)
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl add_vhost failed: {result.stderr.strip()}")
    _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    return f"{base}/{vhost}", vhost


def drop_vhost(vhost: str) -> None:
    _rabbitmqctl("delete_vhost", vhost)


def rabbitmq_reachable(amqp_url: str) -> bool:
    host_port = amqp_parts(amqp_url)[0].split("://", 1)[1].rsplit("@", 1)[-1]
    host, _, port = host_port.partition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port or 5672)), timeout=2).close()
        return True
    except OSError:
        return False
