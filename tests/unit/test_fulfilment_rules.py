"""What may still ship, and the state of an installment."""
from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from services.contracts.fulfilment_rules import allocate, deliverable, installment_status, is_past_due


def test_deliverable_never_negative():
    assert deliverable(D(10), D(4), D(0)) == D(6)
    assert deliverable(D(10), D(4), D(6)) == D(0)
    assert deliverable(D(10), D(10), D(1)) == D(0)


def test_allocate_over_lines_of_one_product():
    assert allocate(D(7), [("a", D(5)), ("b", D(5))]) == ([("a", D(5)), ("b", D(2))], D(0))
    assert allocate(D(7), [("a", D(0)), ("b", D(6))]) == ([("b", D(6))], D(1))


def test_installment_status():
    assert installment_status(D("30.00"), D("0"), False) == "open"
    assert installment_status(D("30.00"), D("10"), False) == "partially_paid"
    assert installment_status(D("30.00"), D("10"), True) == "overdue"
    assert installment_status(D("30.00"), D("30.00"), True) == "paid"
    assert is_past_due(date(2031, 1, 1), date(2031, 1, 2))
    assert not is_past_due(date(2031, 1, 1), date(2031, 1, 1))
    assert not is_past_due(None, date(2031, 1, 2))
