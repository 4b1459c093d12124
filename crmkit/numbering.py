"""Document numbers (HT-2026-000001): unique and increasing under concurrent creation."""
from __future__ import annotations

import weakref

from sqlalchemy import bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crmkit.db import dialect_insert
from crmkit.models import Sequence


def next_value(session: Session, name: str) -> int:
    """Increment a named counter inside the caller's transaction; the row lock serialises takers."""
    value = session.execute(_INCREMENT, {"counter": name}).scalar()
    if value is None:
        try:
            with session.begin_nested():
                session.add(Sequence(name=name, value=1))
            value = 1
        except IntegrityError:
            value = session.execute(_INCREMENT, {"counter": name}).scalar_one()  # another transaction created it
    return value


# Core and built once: the ORM's bulk-update machinery, or building the statement per call, costs more than
# the UPDATE itself (twice per contract: its number and its confirmation).
_TABLE = Sequence.__table__
_INCREMENT = (update(_TABLE).where(_TABLE.c.name == bindparam("counter")).values(value=_TABLE.c.value + 1)
              .returning(_TABLE.c.value))


def next_number(session: Session, prefix: str, year: int, width: int = 6) -> str:
    return f"{prefix}-{year}-{next_value(session, f'{prefix}-{year}'):0{width}d}"


def next_ordinal(session: Session, name: str) -> int:
    """The next value of a counter that only orders things (first confirmed, first served), where a gap harms
    nobody. On PostgreSQL it is taken by a statement of its own, committed at once, so the row lock lasts
    that statement: concurrent transactions no longer queue behind each other's commit for it, as they must
    for gap-free document numbers. A caller's transaction that then rolls back leaves a gap. On SQLite,
    where writers take turns anyway, it is taken in the caller's transaction.
    """
    engine = session.get_bind()
    if engine.dialect.name == "sqlite":
        return next_value(session, name)
    engine = getattr(engine, "engine", engine)  # a session bound to a connection: its engine
    # A second connection for a moment, beside the caller's: the pool (5 + 5 overflow) covers a web process's
    # four threads twice over.
    autocommit = _AUTOCOMMIT.get(engine)
    if autocommit is None:
        autocommit = _AUTOCOMMIT[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as conn:
        value = conn.execute(_INCREMENT, {"counter": name}).scalar()
        if value is None:  # the counter's first use
            conn.execute(_CREATE_IF_MISSING, {"name": name, "value": 0})
            value = conn.execute(_INCREMENT, {"counter": name}).scalar_one()
    return value


_AUTOCOMMIT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine -> the same, in autocommit
_CREATE_IF_MISSING = dialect_insert("postgresql")(_TABLE).on_conflict_do_nothing()
