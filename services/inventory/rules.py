"""Stock arithmetic, free of any framework: how much a line can take, who gets arriving goods."""
from __future__ import annotations

from decimal import Decimal

ZERO = Decimal(0)


def reservable(requested: Decimal, available: Decimal) -> tuple[Decimal, Decimal]:
    """(reserved now, still missing) for a line asking `requested` when `available` is free."""
    reserved = max(ZERO, min(requested, available))
    return reserved, requested - reserved


def allocate_arrivals(free: Decimal, waiting: list[tuple[object, Decimal]]) -> list[tuple[object, Decimal]]:
    """Hand `free` units to waiting lines in the order given (first confirmed, first served)."""
    grants = []
    for key, missing in waiting:
        if free <= ZERO:
            break
        take = min(free, missing)
        if take > ZERO:
            grants.append((key, take))
            free -= take
    return grants
