"""Time in UTC, the only zone the back end stores."""
from datetime import datetime, timezone


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
