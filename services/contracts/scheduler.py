"""The scheduler: due recurring periods become contracts exactly once, past-due installments become overdue.

Runs on a timer in the contracts worker and on POST /admin/scheduler/run. Each period is one transaction
holding the schedule row lock and inserting the (schedule_id, run_on) row with the contract, so a second
scheduler at the same moment either skips the locked schedule or loses on the unique key and rolls back.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crmkit.timeutil import business_date
from services.contracts import receivables, recurring
from services.contracts.fulfilment_models import Receivable, RecurringRun, RecurringSchedule
from services.contracts.models import Contract
from services.contracts.settings_store import load_settings

log = logging.getLogger(__name__)

OVERDUE_BATCH = 200
MAX_CONFLICTS = 5  # unique-key losses in a row on one schedule before leaving it to the next run
# Periods one schedule may generate in one run: a start date typed years back catches up over a few ticks
# of the timer instead of holding one request for thousands of contracts.
MAX_PERIODS_PER_RUN = 100


@dataclass
class Report:
    as_of: date
    generated: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    overdue: list = field(default_factory=list)
    deferred: list = field(default_factory=list)  # schedules with periods still due, left to the next run

    def to_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "generated": self.generated, "failed": self.failed,
                "overdue": self.overdue, "deferred": self.deferred}


def run_due(db, settings, as_of: date) -> Report:
    """Generate every due period up to as_of (catching up missed ones) and mark installments overdue."""
    report = Report(as_of)
    with db.session() as session:
        due = session.execute(select(RecurringSchedule.id).where(
            RecurringSchedule.status == "active", RecurringSchedule.next_due_on <= as_of)
            .order_by(RecurringSchedule.next_due_on, RecurringSchedule.id)).scalars().all()
    for schedule_id in due:
        _run_schedule(db, schedule_id, as_of, report)
    _mark_overdue(db, as_of, report)
    return report


def _lock_schedule(session, db, schedule_id: str, skip_locked: bool):
    query = select(RecurringSchedule).where(RecurringSchedule.id == schedule_id)
    if not db.is_sqlite:  # SQLite already serialises writers (BEGIN IMMEDIATE)
        query = query.with_for_update(skip_locked=skip_locked)
    return session.execute(query).scalar_one_or_none()


def _run_schedule(db, schedule_id: str, as_of: date, report: Report) -> None:
    """One transaction per period, in order, until the schedule is past as_of or a period fails."""
    conflicts = periods = 0
    while True:
        if periods >= MAX_PERIODS_PER_RUN:
            report.deferred.append(schedule_id)
            return
        run_on = None
        try:
            with db.session() as session:
                row = _lock_schedule(session, db, schedule_id, skip_locked=True)
                if row is None or row.status != "active" or row.next_due_on is None or row.next_due_on > as_of:
                    return  # another scheduler holds it, or nothing is due
                run_on = row.next_run_on
                contract = recurring.generate(session, row, run_on)
                done = {"schedule_id": schedule_id, "run_on": run_on.isoformat(), "contract_id": contract.id,
                        "number": contract.number}
            report.generated.append(done)
            conflicts, periods = 0, periods + 1
        except IntegrityError as exc:
            # Another scheduler generated this period first; ours rolled back. Read the schedule again.
            conflicts += 1
            if conflicts >= MAX_CONFLICTS:
                return
            if not _skip_generated(db, schedule_id, run_on):
                _failed(db, schedule_id, run_on, exc, report)  # a constraint other than the period's key
                return
        except Exception as exc:
            _failed(db, schedule_id, run_on, exc, report)
            return


def _skip_generated(db, schedule_id: str, run_on: date) -> bool:
    """After a unique-key loss: True when the period exists (moving the schedule past it if still needed)."""
    with db.session() as session:
        row = _lock_schedule(session, db, schedule_id, skip_locked=False)
        if row is None:
            return False
        exists = session.execute(select(RecurringRun.id).where(RecurringRun.schedule_id == schedule_id,
                                                               RecurringRun.run_on == run_on)).first()
        if exists and row.next_run_on == run_on:
            recurring.advance(row, run_on)
        return exists is not None


def _failed(db, schedule_id: str, run_on: date | None, exc: Exception, report: Report) -> None:
    # The first line only: a database error's SQL and parameters are no news for a salesperson's inbox.
    error = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"[:300]
    log.warning("recurring schedule %s: period %s failed: %s", schedule_id, run_on, error)
    report.failed.append({"schedule_id": schedule_id, "run_on": run_on.isoformat() if run_on else None,
                          "error": error[:500]})
    if run_on is None:
        return
    try:
        with db.session() as session:
            row = _lock_schedule(session, db, schedule_id, skip_locked=False)
            if row is not None:
                recurring.report_failure(session, row, run_on, error)
    except Exception:  # the database itself is failing: the next run will try (and report) again
        log.exception("recurring schedule %s: could not record the failure", schedule_id)


def _mark_overdue(db, as_of: date, report: Report) -> None:
    """Installments past due and unpaid become overdue, in batches, each with its one event."""
    while True:
        with db.session() as session:
            query = (select(Receivable, Contract).join(Contract, Contract.id == Receivable.contract_id)
                     .where(Receivable.status.in_(("open", "partially_paid")), Receivable.overdue_at.is_(None),
                            Receivable.due_date.is_not(None), Receivable.due_date < as_of,
                            Contract.status != "cancelled")
                     .order_by(Receivable.due_date, Receivable.id).limit(OVERDUE_BATCH))
            if not db.is_sqlite:
                # Two schedulers split the rows; the status and overdue_at filters make a taken row vanish.
                query = query.with_for_update(of=Receivable, skip_locked=True)
            rows = session.execute(query).all()
            if not rows:
                return
            settings = load_settings(session)
            for receivable, contract in rows:
                receivables.mark_overdue(session, receivable, contract, settings)
                report.overdue.append({"id": receivable.id, "contract_id": contract.id, "seq": receivable.seq})
        if len(rows) < OVERDUE_BATCH:
            return


def scheduler_loop(settings, db, ctx, stop_event) -> None:
    """The contracts worker's timer: run the scheduler as of today every settings.scheduler_interval seconds."""
    while not stop_event.is_set():
        try:
            report = run_due(db, settings, business_date())
            if report.generated or report.failed or report.overdue:
                log.info("scheduler: %d generated, %d failed, %d overdue", len(report.generated),
                         len(report.failed), len(report.overdue))
        except Exception:  # the database is away: try again on the next tick
            log.exception("scheduler run failed")
        stop_event.wait(settings.scheduler_interval)


def main(argv=None) -> None:
    """`python -m services.contracts.scheduler [--as-of YYYY-MM-DD]`: one run, as the timer does, then exit."""
    import argparse
    import json

    from crmkit.service import open_database, setup_logging
    from crmkit.settings import Settings
    from services.contracts import spec

    parser = argparse.ArgumentParser(prog="services.contracts.scheduler")
    parser.add_argument("--as-of", type=date.fromisoformat, default=None, help="default: today in CRM_TIMEZONE")
    args = parser.parse_args(argv)
    setup_logging()
    settings = Settings.from_env("contracts")
    db = open_database(spec(), settings)
    try:
        print(json.dumps(run_due(db, settings, args.as_of or business_date()).to_dict()), flush=True)
    finally:
        db.dispose()


if __name__ == "__main__":
    main()
