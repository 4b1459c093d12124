"""Database.autocommit(): on PostgreSQL each statement commits by itself; on SQLite it is an ordinary transaction.

The hot single-statement paths use it (the timeline and catalogue reads, the email sender's claim and its mark
before DATA): the mark in particular must be committed when its statement returns, not when the block ends.
"""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select, text, update

from crmkit.db import Database
from crmkit.models import KIT_TABLES, Sequence


def database(url: str):
    db = Database(url, tables=KIT_TABLES)
    db.create_all()
    with db.session() as session:
        session.add(Sequence(name="n", value=1))
    return db


@pytest.fixture
def pg_db(pg_url):
    db = database(pg_url)
    yield db
    db.dispose()


@pytest.fixture
def sqlite_db(tmp_path):
    db = database(f"sqlite:///{tmp_path / 'service.sqlite'}")
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request):
    return request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")


def value_seen_elsewhere(db) -> int:
    """The counter as another connection sees it now."""
    with db.engine.connect() as conn:
        return conn.execute(select(Sequence.value).where(Sequence.name == "n")).scalar_one()


def bump(session) -> None:
    session.execute(update(Sequence).where(Sequence.name == "n").values(value=Sequence.value + 1))


def test_on_postgresql_a_write_is_committed_when_its_statement_returns(pg_db):
    db = pg_db
    with pytest.raises(RuntimeError):
        with db.autocommit() as session:
            bump(session)
            assert value_seen_elsewhere(db) == 2  # committed already: another connection sees it
            first = session.execute(text("SELECT now()")).scalar_one()
            time.sleep(0.02)
            # No transaction around the statements: each has its own start time.
            assert session.execute(text("SELECT now()")).scalar_one() > first
            raise RuntimeError("after the write")
    assert value_seen_elsewhere(db) == 2  # nothing to roll back: use it only where statements stand alone


def test_on_sqlite_it_is_an_ordinary_transaction(sqlite_db):
    db = sqlite_db
    with pytest.raises(RuntimeError):
        with db.autocommit() as session:
            bump(session)
            raise RuntimeError("after the write")
    assert value_seen_elsewhere(db) == 1


def test_the_connection_goes_back_to_the_pool_with_transactions_again(db):
    """A connection used without transactions must not lend that to the next ordinary session."""
    for _ in range(3):
        with db.autocommit() as session:
            session.execute(select(Sequence.value)).all()
    with pytest.raises(RuntimeError):
        with db.session() as session:
            bump(session)
            raise RuntimeError("rolled back")
    assert value_seen_elsewhere(db) == 1
