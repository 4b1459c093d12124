"""Calendar rules, free of any framework: recurring run dates (month ends kept) and installment due dates.

A recurring schedule's n-th run date (run_on) is counted from its start, so an anchor on the 31st gives 28 or 29
February, then 31 March. The contract of a run is generated once the run is due (see due_on).
"""
from __future__ import annotations

import calendar
from datetime import date, timedelta

INTERVALS = ("weekly", "monthly", "quarterly", "yearly")
MONTHS_PER = {"monthly": 1, "quarterly": 3, "yearly": 12}
DUE_EVENTS = ("signing", "delivery")


def add_months(anchor: date, months: int) -> date:
    """The anchor's day `months` later, clamped to that month's last day (31 Jan + 1 → 28 or 29 Feb)."""
    index = anchor.year * 12 + anchor.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    if not 1 <= year <= 9999:
        raise OverflowError("date beyond the calendar")
    return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))


def _check(interval: str, every: int) -> None:
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ValueError("every must be a whole number of at least 1")


def nth_run(start: date, interval: str, every: int, n: int) -> date:
    """The n-th run (0 is the start), counted from the start so one clamped month never moves the anchor day."""
    _check(interval, every)
    if interval == "weekly":
        return start + timedelta(weeks=every * n)
    return add_months(start, MONTHS_PER[interval] * every * n)


def next_run_after(start: date, interval: str, every: int, end_date: date | None, after: date | None) -> date | None:
    """The first run strictly after `after` (the start when None); None when it would fall after end_date."""
    _check(interval, every)
    if after is None or after < start:
        n = 0
    elif interval == "weekly":
        n = (after - start).days // (7 * every) + 1
    else:
        # The estimate lands in after's month or earlier; step forward to the first run past it.
        n = ((after.year - start.year) * 12 + after.month - start.month) // (MONTHS_PER[interval] * every)
        try:
            while nth_run(start, interval, every, n) <= after:
                n += 1
        except OverflowError:
            return None
    try:
        run = nth_run(start, interval, every, n)
    except OverflowError:
        return None  # past year 9999: the schedule has nowhere left to go
    return None if end_date is not None and run > end_date else run


def runs_through(start: date, interval: str, every: int, end_date: date | None, through: date) -> list[date]:
    """Every run from the start up to and including `through` (and end_date)."""
    runs = []
    run = next_run_after(start, interval, every, end_date, None)
    while run is not None and run <= through:
        runs.append(run)
        run = next_run_after(start, interval, every, end_date, run)
    return runs


def due_on(run_on: date, interval: str, start: date) -> date:
    """The day a period's contract is generated: a week's on its run day; a month-based period's from the first
    of the run's month (never before the start), so the April contract of a schedule anchored on the 31st exists
    all of April, dated the 30th."""
    if interval == "weekly":
        return run_on
    return max(start, run_on.replace(day=1))


def due_date(fixed: date | None, event: str | None, days: int | None, signed_on: date | None,
             first_shipped_on: date | None) -> date | None:
    """An installment's due date: fixed, or days after signing or the first shipment (None until it happens)."""
    if fixed is not None:
        return fixed
    if event not in DUE_EVENTS:
        return None
    base = signed_on if event == "signing" else first_shipped_on
    return None if base is None else base + timedelta(days=days or 0)
