"""Housekeeping: the kit's tables keep published events, handled message ids and replayable answers only for
the retention period (CRM_RETENTION_DAYS, default 30), so a busy system's databases do not grow for good.

Every worker process runs it once an hour. Rows go in small batches, each its own transaction, so the tables
stay writable meanwhile; scaled workers share the work (SKIP LOCKED on PostgreSQL) instead of queueing.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, select, tuple_

from crmkit.models import IdempotencyKey, InboxMessage, OutboxMessage
from crmkit.timeutil import utcnow

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 3600.0
FIRST_RUN_SECONDS = 60.0  # after a start, not during it
BATCH = 1000

_OUTBOX, _INBOX, _KEYS = OutboxMessage.__table__, InboxMessage.__table__, IdempotencyKey.__table__
# name -> (table, its key columns, what makes a row expired given the cutoff)
_EXPIRING = {
    # Only published events: one the relay has not sent yet stays, however old.
    "outbox": (_OUTBOX, (_OUTBOX.c.seq,),
               lambda cutoff: _OUTBOX.c.published.is_(True) & (_OUTBOX.c.created_at < cutoff)),
    "inbox": (_INBOX, (_INBOX.c.consumer, _INBOX.c.message_id), lambda cutoff: _INBOX.c.handled_at < cutoff),
    "idempotency_keys": (_KEYS, (_KEYS.c.user_id, _KEYS.c.key), lambda cutoff: _KEYS.c.created_at < cutoff),
}


def remove_expired(db, retention_days: float, now=None, batch: int = BATCH) -> dict[str, int]:
    """Delete what is older than `retention_days` (nothing when it is 0 or less); rows removed per table."""
    if retention_days <= 0:
        return {}
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    removed = {}
    for name, (table, keys, expired) in _EXPIRING.items():
        chosen = select(*keys).where(expired(cutoff)).limit(batch)
        if not db.is_sqlite:
            chosen = chosen.with_for_update(skip_locked=True)
        statement = delete(table).where((keys[0] if len(keys) == 1 else tuple_(*keys)).in_(chosen))
        removed[name] = 0
        while True:
            with db.session() as session:
                count = session.execute(statement).rowcount
            removed[name] += count
            if count < batch:
                break
    return removed


def housekeeping_loop(settings, db, stop_event) -> None:
    """A worker process's timer: remove_expired() a minute after start, then every hour."""
    if stop_event.wait(FIRST_RUN_SECONDS):
        return
    while True:
        try:
            removed = remove_expired(db, settings.retention_days)
            if any(removed.values()):
                log.info("housekeeping: removed %s (older than %g days)", removed, settings.retention_days)
        except Exception:  # the database is away: try again at the next hour
            log.exception("housekeeping failed")
        if stop_event.wait(INTERVAL_SECONDS):
            return
