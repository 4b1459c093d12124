"""Document numbers (HT-2026-000001): unique and increasing under concurrent creation."""
from __future__ import annotations

from sqlalchemy import bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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
