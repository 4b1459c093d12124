"""Database.one_transaction(): the sessions opened inside it are savepoints of one transaction that commits at
its end (what a keyed request's record and its work need), on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from crmkit.db import Database, after_commit
from crmkit.models import KIT_TABLES, Sequence


@pytest.fixture
def db(kit_db):
    return kit_db


def counters(db) -> dict:
    with db.sessions() as session:  # a session of its own: what others see
        return dict(session.execute(select(Sequence.name, Sequence.value)).all())


def test_blocks_commit_together_at_the_end_and_a_failed_block_rolls_back_alone(db):
    ran = []
    with db.one_transaction():
        with db.session() as session:
            session.add(Sequence(name="first", value=1))
            after_commit(session, lambda: ran.append("first"))
        with pytest.raises(ZeroDivisionError):
            with db.session() as session:
                session.add(Sequence(name="failed", value=1))
                session.flush()
                after_commit(session, lambda: ran.append("failed"))
                1 / 0
        with db.autocommit() as session:  # joins too: it reads what the transaction wrote
            assert session.get(Sequence, "first").value == 1
            session.add(Sequence(name="last", value=3))
        assert ran == []
        if not db.is_sqlite:  # (SQLite's other connections wait for the write lock meanwhile)
            assert counters(db) == {}  # nothing committed before the end
    assert counters(db) == {"first": 1, "last": 3}
    assert ran == ["first"]  # what the failed block asked for went with it


def test_an_error_in_the_whole_leaves_nothing(db):
    ran = []
    with pytest.raises(RuntimeError):
        with db.one_transaction():
            with db.session() as session:
                session.add(Sequence(name="n", value=1))
                after_commit(session, lambda: ran.append("n"))
            raise RuntimeError("the request failed after its work")
    assert counters(db) == {} and ran == []


def test_other_databases_and_other_threads_keep_their_own_transactions(db, tmp_path):
    import threading
    other = Database(f"sqlite:///{tmp_path / 'other.sqlite'}", tables=KIT_TABLES)
    other.create_all()
    seen = {}
    try:
        with db.one_transaction():
            def elsewhere():
                with db.session() as session:
                    session.add(Sequence(name="thread", value=1))
            thread = threading.Thread(target=elsewhere)
            thread.start()
            thread.join(30)
            seen["db"] = counters(db)  # the thread's transaction committed by itself
            with other.session() as session:
                session.add(Sequence(name="elsewhere", value=1))
            seen["other"] = counters(other)  # so did the other database's
            with db.session() as session:
                session.add(Sequence(name="mine", value=1))
        assert seen == {"db": {"thread": 1}, "other": {"elsewhere": 1}}
        assert counters(db) == {"thread": 1, "mine": 1}
    finally:
        other.dispose()
