"""Receivables: a contract's plan, the collections list, payments."""
from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, current_app
from marshmallow import ValidationError
from sqlalchemy import func, select

from crmkit.errors import NotFound, ValidationFailed
from crmkit.web.auth import caller
from crmkit.web.errors import flatten_messages
from crmkit.web.idempotency import idempotent
from crmkit.web.pagination import fetch_page, page, page_args
from crmkit.web.requests import json_body, load, load_args
from services.contracts import receivables
from services.contracts.access import contract_for, own_filter, require_reader
from services.contracts.fulfilment_models import Receivable
from services.contracts.fulfilment_rules import outstanding
from services.contracts.fulfilment_schemas import PaymentIn, PaymentVoidIn, PlanIn, ReceivableOut, ReceivableQuery
from services.contracts.models import Contract
from services.contracts.settings_store import load_settings

bp = Blueprint("receivables", __name__, url_prefix="/api/v1")
out = ReceivableOut()


def _db():
    return current_app.extensions["crm_db"]


def dump(r: Receivable, contract: Contract) -> dict:
    return out.dump({**{c: getattr(r, c) for c in ("id", "seq", "label", "amount", "due_date", "paid_amount",
                                                   "status", "contract_id", "payments")},
                     "due_days_after": {"event": r.due_event, "days": r.due_days} if r.due_event else None,
                     # Nothing is to be collected on an installment cancelled with its contract.
                     "outstanding": Decimal(0) if r.status == "cancelled" else outstanding(r.amount, r.paid_amount),
                     "contract_number": contract.number,
                     "customer_id": contract.customer_id, "currency": contract.currency})


def _writer():
    who = caller()
    require_reader(who)
    who.require("sales", "manager", "admin")
    return who


def _plan_input(session) -> list[dict]:
    """The body's installments, or the settings' default_installments when the body is empty."""
    body = json_body(required=False)
    if body:
        return PlanIn().load(body)["installments"]
    defaults = load_settings(session).get("default_installments") or []
    if not defaults:
        raise ValidationFailed("Give installments; the settings have no default_installments to use instead.",
                               {"installments": ["Missing data for required field."]})
    try:
        return PlanIn().load({"installments": defaults})["installments"]
    except ValidationError as exc:
        fields = {f"settings.default_{k}": v for k, v in flatten_messages(exc.messages).items()}
        raise ValidationFailed("The settings' default_installments are not a valid plan.", fields)


@bp.post("/contracts/<contract_id>/receivables-plan")
@idempotent
def set_plan(contract_id):
    who = _writer()
    with _db().session() as session:
        contract = contract_for(session, who, contract_id, lock=True)
        rows = receivables.plan(session, contract, _plan_input(session))
        return page([dump(r, contract) for r in rows], len(rows)), 201


@bp.get("/contracts/<contract_id>/receivables")
def contract_receivables(contract_id):
    require_reader(caller())
    limit, offset = page_args()
    with _db().session() as session:
        contract = contract_for(session, caller(), contract_id)
        query = select(Receivable).where(Receivable.contract_id == contract.id)
        rows, total = fetch_page(session, query, (Receivable.seq,), limit, offset)
        return page([dump(r, contract) for r in rows], total)


@bp.get("/receivables")
def list_receivables():
    require_reader(caller())
    args = load_args(ReceivableQuery())
    limit, offset = page_args()
    query = own_filter(select(Receivable, Contract).join(Contract, Contract.id == Receivable.contract_id), caller(),
                       Contract.owner_id)
    if args.get("status"):
        query = query.where(Receivable.status == args["status"])
    if args.get("customer_id"):
        query = query.where(Contract.customer_id == args["customer_id"])
    if args.get("contract_id"):
        query = query.where(Receivable.contract_id == args["contract_id"])
    if args.get("due_from"):
        query = query.where(Receivable.due_date >= args["due_from"])
    if args.get("due_to"):
        query = query.where(Receivable.due_date <= args["due_to"])
    with _db().session() as session:
        total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = session.execute(query.order_by(Receivable.due_date.is_(None), Receivable.due_date, Contract.number,
                                              Receivable.seq).limit(limit).offset(offset)).all()
        return page([dump(r, c) for r, c in rows], total)


def _receivable(session, receivable_id: str, lock: bool = False) -> tuple[Receivable, Contract]:
    """The installment and its contract, 404 unless the caller sees the contract; locks contract first."""
    contract_id = session.execute(select(Receivable.contract_id).where(Receivable.id == receivable_id)).scalar()
    if contract_id is None:
        raise NotFound("No such receivable.")
    try:
        contract = contract_for(session, caller(), contract_id, lock=lock)
    except NotFound:
        raise NotFound("No such receivable.")
    query = select(Receivable).where(Receivable.id == receivable_id)
    receivable = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if receivable is None:  # the plan was replaced while this request waited for the contract
        raise NotFound("No such receivable: the contract's receivables plan has just been replaced.")
    return receivable, contract


@bp.get("/receivables/<receivable_id>")
def get_receivable(receivable_id):
    require_reader(caller())
    with _db().session() as session:
        return dump(*_receivable(session, receivable_id))


@bp.post("/receivables/<receivable_id>/payments")
@idempotent
def add_payment(receivable_id):
    who = _writer()
    data = load(PaymentIn())
    with _db().session() as session:
        receivable, contract = _receivable(session, receivable_id, lock=True)
        receivables.pay(session, contract, receivable, amount=data["amount"], paid_on=data["paid_on"],
                        reference=data["reference"], created_by=who.id)
        return dump(receivable, contract), 201


@bp.post("/receivables/<receivable_id>/payments/<payment_id>/void")
def void_payment(receivable_id, payment_id):
    """A payment entered by mistake: the installment owes it again; the payment stays listed, voided."""
    who = _writer()
    data = load(PaymentVoidIn())
    with _db().session() as session:
        receivable, contract = _receivable(session, receivable_id, lock=True)
        payment = next((p for p in receivable.payments if p.id == payment_id), None)
        if payment is None:
            raise NotFound("No such payment on this installment.")
        receivables.void_payment(session, contract, receivable, payment, reason=data["reason"], voided_by=who.id)
        return dump(receivable, contract)

