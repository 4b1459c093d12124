"""Recurring run dates and installment due dates: month ends, leap years, every > 1, end dates."""
from __future__ import annotations

from datetime import date

import pytest

from services.contracts.schedule import add_months, due_date, due_on, next_run_after, nth_run, runs_through


def test_month_end_keeps_the_anchor_day():
    runs = runs_through(date(2031, 1, 31), "monthly", 1, None, date(2031, 6, 30))
    assert runs == [date(2031, 1, 31), date(2031, 2, 28), date(2031, 3, 31), date(2031, 4, 30), date(2031, 5, 31),
                    date(2031, 6, 30)]


def test_leap_years():
    assert runs_through(date(2032, 1, 31), "monthly", 1, None, date(2032, 3, 31))[1] == date(2032, 2, 29)
    assert runs_through(date(2028, 2, 29), "yearly", 1, None, date(2033, 1, 1)) == [
        date(2028, 2, 29), date(2029, 2, 28), date(2030, 2, 28), date(2031, 2, 28), date(2032, 2, 29)]
    assert add_months(date(2100, 1, 31), 1) == date(2100, 2, 28)  # 2100 is not a leap year
    assert add_months(date(2000, 1, 31), 1) == date(2000, 2, 29)  # 2000 is


def test_every_two_and_quarterly():
    assert runs_through(date(2031, 1, 31), "monthly", 2, None, date(2031, 12, 31)) == [
        date(2031, 1, 31), date(2031, 3, 31), date(2031, 5, 31), date(2031, 7, 31), date(2031, 9, 30),
        date(2031, 11, 30)]
    assert runs_through(date(2031, 11, 30), "quarterly", 1, None, date(2032, 9, 1)) == [
        date(2031, 11, 30), date(2032, 2, 29), date(2032, 5, 30), date(2032, 8, 30)]
    assert runs_through(date(2031, 1, 1), "weekly", 2, None, date(2031, 2, 1)) == [
        date(2031, 1, 1), date(2031, 1, 15), date(2031, 1, 29)]
    assert nth_run(date(2031, 12, 31), "yearly", 3, 1) == date(2034, 12, 31)


def test_end_date_stops_the_schedule():
    assert runs_through(date(2031, 1, 31), "monthly", 1, date(2031, 3, 31), date(2031, 12, 31)) == [
        date(2031, 1, 31), date(2031, 2, 28), date(2031, 3, 31)]
    assert next_run_after(date(2031, 1, 31), "monthly", 1, date(2031, 3, 30), date(2031, 2, 28)) is None
    assert next_run_after(date(2031, 1, 31), "monthly", 1, date(2031, 1, 31), None) == date(2031, 1, 31)


@pytest.mark.parametrize("interval,every", [("weekly", 1), ("weekly", 3), ("monthly", 1), ("monthly", 5),
                                            ("quarterly", 2), ("yearly", 1)])
def test_next_run_after_agrees_with_counting(interval, every):
    start = date(2031, 1, 31)
    runs = [nth_run(start, interval, every, n) for n in range(400)]
    for probe in (date(2030, 6, 1), date(2031, 1, 31), date(2031, 2, 27), date(2031, 2, 28), date(2031, 3, 1),
                  date(2033, 7, 15), date(2034, 12, 31)):
        expected = next(r for r in runs if r > probe)
        assert next_run_after(start, interval, every, None, probe) == expected


def test_bad_arguments():
    with pytest.raises(ValueError):
        nth_run(date(2031, 1, 1), "daily", 1, 1)
    with pytest.raises(ValueError):
        next_run_after(date(2031, 1, 1), "monthly", 0, None, None)


def test_due_dates():
    signed, shipped = date(2031, 1, 10), date(2031, 2, 1)
    assert due_date(date(2031, 5, 1), None, None, signed, None) == date(2031, 5, 1)
    assert due_date(None, "signing", 30, signed, None) == date(2031, 2, 9)
    assert due_date(None, "delivery", 0, signed, shipped) == shipped
    assert due_date(None, "delivery", 15, signed, None) is None  # not shipped yet: no date, never overdue


def test_a_month_based_period_is_due_from_the_first_of_its_month():
    start = date(2031, 1, 31)
    assert due_on(start, "monthly", start) == start  # never before the start
    assert due_on(date(2031, 4, 30), "monthly", start) == date(2031, 4, 1)
    assert due_on(date(2031, 7, 31), "quarterly", start) == date(2031, 7, 1)
    assert due_on(date(2031, 1, 22), "weekly", date(2031, 1, 8)) == date(2031, 1, 22)
    due = [r for r in runs_through(start, "monthly", 1, None, date(2031, 12, 31))
           if due_on(r, "monthly", start) <= date(2031, 4, 15)]
    assert due == [date(2031, 1, 31), date(2031, 2, 28), date(2031, 3, 31), date(2031, 4, 30)]


def test_a_schedule_ends_at_the_end_of_the_calendar():
    assert next_run_after(date(9999, 12, 31), "monthly", 1, None, date(9999, 12, 31)) is None
    assert next_run_after(date(9999, 12, 25), "weekly", 1, None, date(9999, 12, 25)) is None
    assert next_run_after(date(9998, 12, 31), "yearly", 1, None, date(9999, 6, 1)) == date(9999, 12, 31)
    assert next_run_after(date(9998, 12, 31), "yearly", 1, None, date(9999, 12, 31)) is None
