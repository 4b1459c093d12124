"""Fixtures for the three levels: unit (pure), service (real database, in-process apps), e2e (processes)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.infra import (  # noqa: E402
    EmbeddedSystem, ProcessCluster, SmtpCatcher, make_pg_database, make_vhost, drop_pg_database, drop_vhost,
)


@pytest.fixture(scope="session")
def pg_server_url():
    return make_pg_database.server_url()


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    url, name = make_pg_database()
    yield url
    drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh database for a service test, once on each kind we run on (statements are spelled per dialect)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.sqlite'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def make_db(db_url):
    """make_db(tables): a database of the kit's tables (outbox, inbox, idempotency keys, sequences) and these, on
    each kind, its tables created; disposed when the test ends."""
    from crmkit.db import Database
    from crmkit.models import KIT_TABLES
    made = []

    def make(tables=()):
        database = Database(db_url, tables=KIT_TABLES + list(tables))
        database.create_all()
        made.append(database)
        return database

    yield make
    for database in made:
        database.dispose()


@pytest.fixture
def kit_db(make_db):
    """A database holding only the kit's tables, on each kind."""
    return make_db()


@pytest.fixture
def amqp_url():
    """A fresh RabbitMQ vhost for one test, so queues start empty and tests cannot see each other."""
    url, vhost = make_vhost()
    yield url
    drop_vhost(vhost)


@pytest.fixture
def smtp_server(tmp_path):
    server = SmtpCatcher(tmp_path / "mail").start()
    yield server
    server.stop()


@pytest.fixture
def embedded(tmp_path, smtp_server):
    """Every service in this process: SQLite files, the embedded broker, a real SMTP server."""
    system = EmbeddedSystem(tmp_path, smtp_server).start()
    yield system
    system.stop()


@pytest.fixture
def cluster(tmp_path, pg_url, amqp_url, smtp_server):
    """Every service as its own processes (gunicorn + worker) on RabbitMQ and PostgreSQL."""
    system = ProcessCluster(tmp_path, amqp_url=amqp_url, database_url=pg_url, smtp=smtp_server).start()
    yield system
    system.stop()


@pytest.fixture
def two_web_workers(tmp_path, pg_url, amqp_url, smtp_server):
    """As `cluster`, with two gunicorn workers per service, as deployed: what one web process knows (a cache, its
    own metrics), the other does not."""
    system = ProcessCluster(tmp_path, amqp_url=amqp_url, database_url=pg_url, smtp=smtp_server,
                            web_workers=2).start()
    yield system
    system.stop()


def pytest_report_header(config):
    return f"CI={os.environ.get('CI', '')} (missing RabbitMQ/PostgreSQL fail instead of skipping when set)"
