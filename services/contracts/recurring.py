"""Recurring schedules in the caller's transaction: create, pause, resume, and generate one period's contract."""
from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from crmkit.errors import Conflict, ValidationFailed
from crmkit.messaging.outbox import emit
from crmkit.money import money_str
from crmkit.timeutil import business_date, utcnow
from services.contracts import lifecycle, schedule
from services.contracts.fulfilment_models import RecurringRun, RecurringSchedule
from services.contracts.models import Contract, ContractLine, Customer, User
from services.contracts.settings_store import load_settings

ZERO_DAYS = timedelta(0)


def create(session: Session, source: Contract, data: dict, created_by: str) -> RecurringSchedule:
    if source.status == "cancelled":
        raise ValidationFailed("A cancelled contract cannot be repeated.",
                               {"source_contract_id": ["The contract is cancelled."]})
    row = RecurringSchedule(
        id=str(uuid.uuid4()), source_contract_id=source.id, customer_id=source.customer_id, owner_id=source.owner_id,
        interval=data["interval"], every=data["every"], start_date=data["start_date"], end_date=data["end_date"],
        auto_confirm=data["auto_confirm"], send_to_customer=data["send_to_customer"], status="active",
        created_by=created_by, created_at=utcnow(), runs=[])
    advance(row, None)
    if row.status == "active":
        _refuse_second_active(session, source, row.id)
    session.add(row)
    session.flush()
    lifecycle.add_timeline(session, source.id, f"recurring:{row.id}", "recurring.scheduled",
                           f"Repeats {_cycle(row)} from {row.start_date.isoformat()}"
                           + (f" to {row.end_date.isoformat()}" if row.end_date else ""), row.created_at)
    return row


def _refuse_second_active(session: Session, source: Contract, schedule_id: str) -> None:
    """One active schedule per source contract: a second would send the customer every period's contract twice
    (a double click, or a new schedule made to replace one still running). The caller holds the source's row lock,
    so two requests cannot both pass."""
    other = session.execute(  # columns, not the schedule: loading it would load all its runs
        select(RecurringSchedule.id, RecurringSchedule.interval, RecurringSchedule.every).where(
            RecurringSchedule.source_contract_id == source.id, RecurringSchedule.status == "active",
            RecurringSchedule.id != schedule_id).limit(1)).first()
    if other is not None:
        raise Conflict(f"Contract {source.number} already repeats {_cycle(other)} (recurring contract {other.id}); "
                       "pause that one first to repeat it differently.",
                       {"source_contract_id": [f"Already repeated by the active recurring contract {other.id}."]})


def pause(row: RecurringSchedule, today: date) -> None:
    if row.status == "ended":
        raise Conflict("The schedule has ended.", {"status": ["Is ended."]})
    if row.status == "active":
        row.status, row.paused_on = "paused", today


def resume(row: RecurringSchedule, today: date, source: Contract | None = None) -> None:
    """paused → active; periods dated while it was paused are skipped, not generated late. `source`, when given,
    is locked by the caller (after the schedule: the scheduler's order)."""
    if row.status == "ended":
        raise Conflict("The schedule has ended.", {"status": ["Is ended."]})
    if source is not None and source.status == "cancelled":
        raise Conflict(f"The source contract {source.number} is cancelled: there is nothing to repeat.",
                       {"source_contract_id": ["The contract is cancelled."]})
    if row.status != "paused":
        return
    if source is not None and object_session(row) is not None:
        _refuse_second_active(object_session(row), source, row.id)
    row.status, row.paused_on, paused_on = "active", None, row.paused_on
    if row.next_run_on is not None and paused_on is not None and paused_on <= row.next_run_on < today:
        advance(row, today - timedelta(days=1))


def advance(row: RecurringSchedule, after: date | None) -> None:
    """Point the schedule at its first run after `after` (the first of all when None), or end it."""
    row.next_run_on = schedule.next_run_after(row.start_date, row.interval, row.every, row.end_date, after)
    row.next_due_on = schedule.due_on(row.next_run_on, row.interval, row.start_date) if row.next_run_on else None
    if row.next_run_on is None:
        row.status = "ended"


class SourceCancelled(Exception):
    """The source contract was cancelled after the schedule was made: no period is generated from it any more."""


def generate(session: Session, row: RecurringSchedule, run_on: date) -> Contract:
    """The period's contract, a copy of the source's lines and prices, and the run row that makes it unique."""
    # FOR SHARE: a cancel of the source waits for this period's commit, or this one sees it cancelled.
    source = session.get(Contract, row.source_contract_id, with_for_update={"read": True})
    if source.status == "cancelled":
        # Raised before anything is written; the scheduler reports it, and report_failure pauses the schedule.
        raise SourceCancelled(f"the source contract {source.number} is cancelled; the schedule is paused")
    customer = session.get(Customer, source.customer_id)
    if customer is None:
        raise LookupError(f"the customer {source.customer_id} of the source contract is gone")
    lines = [ContractLine(line_no=l.line_no, product_code=l.product_code, name=l.name, unit=l.unit,
                          quantity=l.quantity, unit_price=l.unit_price, discount=l.discount, tax_rate=l.tax_rate,
                          amount=l.amount, tax_amount=l.tax_amount) for l in source.lines]
    contract = lifecycle.create(
        session, customer=customer, lines=lines, created_by=row.created_by, delivery_date=_delivery(source, run_on),
        payment_terms=source.payment_terms, notify_departments=source.notify_departments,
        send_to_customer=row.send_to_customer, recurring_id=row.id, currency=source.currency)
    session.add(RecurringRun(schedule_id=row.id, run_on=run_on, contract_id=contract.id, created_at=utcnow()))
    session.flush()  # a concurrent scheduler that generated this period already fails here, before any more work
    if row.auto_confirm:
        lifecycle.confirm(session, contract, customer, session.get(User, contract.owner_id))
    advance(row, run_on)
    row.last_error = row.failed_run_on = None
    event = emit(session, lifecycle.SOURCE, "recurring.generated", {
        "schedule_id": row.id, "run_on": run_on.isoformat(), "contract_id": contract.id, "number": contract.number,
        "source_contract_id": source.id, "customer_id": customer.id, "customer_name": customer.name,
        "total": money_str(contract.total), "confirmed": row.auto_confirm, "owner_id": contract.owner_id,
        "next_run_on": row.next_run_on.isoformat() if row.next_run_on else None}, correlation_id=contract.id)
    lifecycle.add_timeline(session, contract.id, event.id, "recurring.generated",
                           f"Generated for the period of {run_on.isoformat()} from contract {source.number}")
    lifecycle.add_timeline(session, source.id, event.id, "recurring.generated",
                           f"Contract {contract.number} generated for {run_on.isoformat()}")
    return contract


def report_failure(session: Session, row: RecurringSchedule, run_on: date, error: str) -> bool:
    """Keep the schedule active for the next run (paused if its source is cancelled); tell the salesperson once."""
    row.last_error = error[:2000]
    source = session.get(Contract, row.source_contract_id)
    if source is not None and source.status == "cancelled":
        pause_for_cancelled_source(row, source)
    if row.failed_run_on == run_on:
        return False
    row.failed_run_on = run_on
    owner = session.get(User, row.owner_id)
    event = emit(session, lifecycle.SOURCE, "recurring.failed", {
        "schedule_id": row.id, "run_on": run_on.isoformat(), "source_contract_id": row.source_contract_id,
        "contract_id": row.source_contract_id, "contract_number": source.number if source else None,
        "source_number": source.number if source else None, "customer_id": row.customer_id,
        "customer_name": (source.customer_snapshot or {}).get("name") if source else None,
        "error": row.last_error, "owner_id": row.owner_id,
        "company_language": load_settings(session)["company"]["language"],
        "owner": {"id": owner.id, "username": owner.username, "email": owner.email} if owner else None,
    }, correlation_id=row.source_contract_id)
    if source is not None:
        lifecycle.add_timeline(session, source.id, event.id, "recurring.failed",
                               f"The contract for {run_on.isoformat()} could not be generated: {error}"[:500])
    return True


def pause_from_cancelled(session: Session, source: Contract) -> list[RecurringSchedule]:
    """Pause the active schedules that repeat `source`, a contract whose cancellation is committed.

    Run in a transaction of its own after the cancellation's, holding no lock on the contract: a scheduler run
    generating a period (which holds the schedule, then waits to read the contract), a resume or a customer's
    reassignment may hold a schedule, and this waits for them rather than skip it. Inside the cancellation's
    transaction it would have to skip them (waiting there locks the two rows in the opposite order), and a
    skipped schedule stayed active on a cancelled contract.
    """
    query = (select(RecurringSchedule).where(RecurringSchedule.source_contract_id == source.id,
                                             RecurringSchedule.status == "active").order_by(RecurringSchedule.id))
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    rows = list(session.execute(query).scalars())
    for row in rows:
        pause_for_cancelled_source(row, source)
    if rows:
        lifecycle.add_timeline(session, source.id, f"recurring-paused:{source.id}", "recurring.paused",
                               f"Recurring schedule{'s' if len(rows) > 1 else ''} paused: the contract is cancelled",
                               source.cancelled_at)
    return rows


def pause_for_cancelled_source(row: RecurringSchedule, source: Contract) -> None:
    """Pause a schedule whose source is cancelled, saying why in last_error (shown with the schedule)."""
    # A retry cannot help, unlike other failures: paused, it leaves the scheduler's due list, and resume refuses
    # while the source stays cancelled.
    if row.status == "active":
        row.status, row.paused_on = "paused", business_date()
    if row.status == "paused":
        row.last_error = (f"Paused: the source contract {source.number} was cancelled; no contract is generated "
                          "from it.")


def _delivery(source: Contract, run_on: date) -> date | None:
    """Keep the source's lead time: delivery as many days after the period as it was after the source's creation."""
    if source.delivery_date is None or source.created_at is None:
        return None
    lead = source.delivery_date - business_date(source.created_at)
    return run_on + max(lead, ZERO_DAYS)


def _cycle(row: RecurringSchedule) -> str:
    unit = {"weekly": "week", "monthly": "month", "quarterly": "quarter", "yearly": "year"}[row.interval]
    return f"every {unit}" if row.every == 1 else f"every {row.every} {unit}s"
