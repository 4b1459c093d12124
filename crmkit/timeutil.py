"""Time in UTC, the only zone the back end stores; dates in the company's zone, the day its people live in.

A contract confirmed at 07:30 in Shanghai is signed that day, not on the previous one (23:30 UTC): every date
the system sets itself (signing, shipping, a payment recorded without a date, due dates counted from them, the
dates printed on documents, the year in a contract number, "today" for expiry and overdue checks) is the
business date in CRM_TIMEZONE. Times stay UTC.
"""
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

DEFAULT_ZONE = "Asia/Shanghai"
_zone = ZoneInfo(DEFAULT_ZONE)


def use_zone(name: str) -> None:
    """Set the business zone for this process (every service process does, from its settings, on start)."""
    global _zone
    _zone = ZoneInfo(name)


def business_date(moment: datetime | None = None) -> date:
    """The company's date at `moment` (now when None)."""
    return as_utc(moment or utcnow()).astimezone(_zone).date()


def business_days(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """The moments (UTC) the company's day `first` begins and the day after `last` begins: the bounds of a list
    of "signed from 1 to 30 November". None for a bound not given, or beyond what a datetime holds (year 1,
    9999-12-31): there is nothing before or after it to leave out."""
    def start(day: date) -> datetime | None:
        try:
            return datetime.combine(day, time.min, tzinfo=_zone).astimezone(timezone.utc)
        except OverflowError:
            return None
    after = None
    if last is not None and last < date.max:
        after = start(last + timedelta(days=1))
    return (start(first) if first is not None else None), after


def business_time(moment: datetime) -> datetime:
    """A stored time on the company's clock, for a sentence a person reads."""
    return as_utc(moment).astimezone(_zone)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(dt: datetime) -> datetime:
    """A stored time as an aware UTC datetime, whatever the database handed back (SQLite drops the zone)."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z."""
    if dt is None:
        return None
    return as_utc(dt).isoformat().replace("+00:00", "Z")
