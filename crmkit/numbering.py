"""Document numbers (HT-2026-000001): unique and increasing under concurrent creation."""
from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crmkit.models import Sequence


def next_value(session: Session, name: str) -> int:
    """Increment a named counter inside the caller's transaction; the row lock serialises takers."""
    table = Sequence.__table__  # a Core statement: the ORM's bulk-update machinery costs more than the UPDATE
    increment = update(table).where(table.c.name == name).values(value=table.c.value + 1).returning(table.c.value)
    value = session.execute(increment).scalar()
    if value is None:
        try:
            with session.begin_nested():
                session.add(Sequence(name=name, value=1))
            value = 1
        except IntegrityError:
            value = session.execute(increment).scalar_one()  # another transaction created it first
    return value


def next_number(session: Session, prefix: str, year: int, width: int = 6) -> str:
    return f"{prefix}-{year}-{next_value(session, f'{prefix}-{year}'):0{width}d}"
