"""Recurring contracts: schedules made from a source contract, listed, paused and resumed."""
from __future__ import annotations

from flask import Blueprint, current_app
from sqlalchemy import select

from crmkit.errors import NotFound, ValidationFailed
from crmkit.timeutil import business_date
from crmkit.web.auth import caller
from crmkit.web.idempotency import idempotent
from crmkit.web.pagination import fetch_page, page, page_args
from crmkit.web.requests import load, load_args
from services.contracts import recurring
from services.contracts.access import contract_for, own_filter, require_reader
from services.contracts.fulfilment_models import RecurringSchedule
from services.contracts.fulfilment_schemas import RecurringIn, RecurringOut, RecurringQuery
from services.contracts.models import Contract

bp = Blueprint("recurring", __name__, url_prefix="/api/v1/recurring-contracts")
out = RecurringOut()


def _db():
    return current_app.extensions["crm_db"]


def _writer():
    who = caller()
    require_reader(who)
    who.require("sales", "manager", "admin")
    return who


@bp.post("")
@idempotent
def create_schedule():
    who = _writer()
    data = load(RecurringIn())
    with _db().session() as session:
        try:
            # Locked: two requests to repeat one contract cannot both find it without an active schedule.
            source = contract_for(session, who, data["source_contract_id"], lock=True)
        except NotFound:
            raise ValidationFailed("Unknown contract.", {"source_contract_id": ["Unknown contract."]})
        return out.dump(recurring.create(session, source, data, who.id)), 201


@bp.get("")
def list_schedules():
    require_reader(caller())
    args = load_args(RecurringQuery())
    limit, offset = page_args()
    query = own_filter(select(RecurringSchedule), caller(), RecurringSchedule.owner_id)
    if args.get("status"):
        query = query.where(RecurringSchedule.status == args["status"])
    if args.get("source_contract_id"):
        query = query.where(RecurringSchedule.source_contract_id == args["source_contract_id"])
    with _db().session() as session:
        rows, total = fetch_page(session, query, (RecurringSchedule.created_at.desc(), RecurringSchedule.id), limit,
                                 offset)
        return page(out.dump(rows, many=True), total)


def _schedule(session, schedule_id: str, lock: bool = False) -> RecurringSchedule:
    query = own_filter(select(RecurringSchedule).where(RecurringSchedule.id == schedule_id), caller(),
                       RecurringSchedule.owner_id)
    row = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if row is None:
        raise NotFound("No such recurring contract.")
    return row


@bp.get("/<schedule_id>")
def get_schedule(schedule_id):
    require_reader(caller())
    with _db().session() as session:
        return out.dump(_schedule(session, schedule_id))


@bp.post("/<schedule_id>/pause")
def pause_schedule(schedule_id):
    _writer()
    with _db().session() as session:
        row = _schedule(session, schedule_id, lock=True)
        recurring.pause(row, business_date())
        return out.dump(row)


@bp.post("/<schedule_id>/resume")
def resume_schedule(schedule_id):
    _writer()
    with _db().session() as session:
        row = _schedule(session, schedule_id, lock=True)
        source = session.get(Contract, row.source_contract_id, with_for_update=True)
        recurring.resume(row, business_date(), source)
        return out.dump(row)
