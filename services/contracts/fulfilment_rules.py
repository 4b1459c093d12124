"""Delivery and collection rules, free of any framework: what may still ship, what an installment's state is."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

ZERO = Decimal(0)
RECEIVABLE_STATUSES = ("open", "partially_paid", "paid", "overdue", "cancelled")  # cancelled: with its contract


def deliverable(contracted: Decimal, delivered: Decimal, in_open_notes: Decimal) -> Decimal:
    """What a contract line can still put on a new delivery note."""
    return max(ZERO, contracted - delivered - in_open_notes)


def allocate(requested: Decimal, lines: list[tuple[object, Decimal]]) -> tuple[list[tuple[object, Decimal]], Decimal]:
    """Spread a requested quantity over lines of one product in order: ([(line, quantity)], what did not fit)."""
    taken = []
    for key, room in lines:
        if requested <= ZERO:
            break
        quantity = min(requested, room)
        if quantity > ZERO:
            taken.append((key, quantity))
            requested -= quantity
    return taken, max(requested, ZERO)


def installment_status(amount: Decimal, paid: Decimal, overdue: bool) -> str:
    """paid once fully paid; overdue (once marked) until then; else partially_paid or open."""
    if paid >= amount:
        return "paid"
    if overdue:
        return "overdue"
    return "partially_paid" if paid > ZERO else "open"


def is_past_due(due: date | None, as_of: date) -> bool:
    """Overdue the day after the due date; an installment without a date yet is never overdue."""
    return due is not None and due < as_of


def outstanding(amount: Decimal, paid: Decimal) -> Decimal:
    return max(ZERO, amount - paid)
