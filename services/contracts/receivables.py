"""Receivables in the caller's transaction: plan (or replan) a contract, record payments, mark overdue."""
from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from crmkit.errors import Conflict, ValidationFailed
from crmkit.messaging.outbox import emit
from crmkit.money import money_str, split_installments
from crmkit.timeutil import business_date, iso, utcnow
from services.contracts import schedule
from services.contracts.fulfilment_models import DeliveryNote, Payment, Receivable
from services.contracts.fulfilment_rules import installment_status, outstanding
from services.contracts.lifecycle import SOURCE, add_timeline
from services.contracts.models import Contract, User
from services.contracts.settings_store import load_settings

PLANNABLE = ("confirmed", "partially_delivered", "delivered", "completed")


def _as_date(moment) -> date | None:
    return business_date(moment) if moment is not None else None


def first_shipped_on(session: Session, contract_id: str) -> date | None:
    shipped = session.execute(select(func.min(DeliveryNote.shipped_at)).where(
        DeliveryNote.contract_id == contract_id, DeliveryNote.status == "shipped")).scalar()
    return _as_date(shipped)


def plan(session: Session, contract: Contract, installments: list[dict]) -> list[Receivable]:
    """Replace the contract's plan with installments summing exactly to its total; 409 once money came in."""
    if contract.status not in PLANNABLE:
        raise Conflict(f"A receivables plan needs a confirmed contract; this one is {contract.status}.",
                       {"status": [f"Is {contract.status}."]})
    paid = session.execute(select(func.count()).select_from(Payment).join(
        Receivable, Receivable.id == Payment.receivable_id).where(Receivable.contract_id == contract.id,
                                                                  Payment.voided_at.is_(None))).scalar_one()
    if paid:
        raise Conflict("A payment has been recorded against this plan; it can no longer be replaced.",
                       {"installments": ["A payment exists."]})
    parts = [("percent", i["percent"]) if "percent" in i else ("amount", i["amount"]) for i in installments]
    try:
        amounts = split_installments(contract.total, parts)
    except ValueError as exc:
        raise ValidationFailed(f"The plan does not add up: {exc}.", {"installments": [f"{str(exc).capitalize()}."]})
    # Voided payments go with the plan they were voided on; the timeline keeps each one (payment.voided).
    session.execute(delete(Payment).where(Payment.receivable_id.in_(
        select(Receivable.id).where(Receivable.contract_id == contract.id))))
    replaced = session.execute(delete(Receivable).where(Receivable.contract_id == contract.id)).rowcount
    signed_on, shipped_on = _as_date(contract.confirmed_at), first_shipped_on(session, contract.id)
    rows = []
    for seq, (item, amount) in enumerate(zip(installments, amounts), start=1):
        after = item.get("due_days_after") or {}
        row = Receivable(id=str(uuid.uuid4()), contract_id=contract.id, seq=seq, label=item["label"], amount=amount,
                         due_event=after.get("event"), due_days=after.get("days"), paid_amount=Decimal("0.00"),
                         status="open", created_at=utcnow(), payments=[],
                         due_date=schedule.due_date(item.get("due_date"), after.get("event"), after.get("days"),
                                                    signed_on, shipped_on))
        session.add(row)
        rows.append(row)
    session.flush()
    settings = load_settings(session)
    event = emit(session, SOURCE, "receivables.planned", dict(
        _contract_part(session, contract, settings), replaced=bool(replaced), total=money_str(contract.total),
        installments=[installment_payload(r) for r in rows]), correlation_id=contract.id)
    add_timeline(session, contract.id, event.id, "receivables.planned",
                 f"Receivables plan {'replaced' if replaced else 'set'}: "
                 + ", ".join(f"{r.label} {money_str(r.amount)}" for r in rows), utcnow())
    return rows


def pay(session: Session, contract: Contract, receivable: Receivable, *, amount: Decimal, paid_on: date | None,
        reference: str | None, created_by: str) -> Payment:
    """Record a payment; partial payments add up, more than what is outstanding is refused."""
    if contract.status == "cancelled":
        raise Conflict("The contract is cancelled; no payment can be recorded on it.", {"status": ["Is cancelled."]})
    if paid_on is not None and paid_on > business_date():
        raise ValidationFailed("A payment is recorded once received.",
                               {"paid_on": [f"{paid_on.isoformat()} is in the future."]})
    left = outstanding(receivable.amount, receivable.paid_amount)
    if amount > left:
        raise ValidationFailed("The payment is more than what is still due.",
                               {"amount": [f"At most {money_str(left)} is still due on this installment."]})
    now = utcnow()
    payment = Payment(id=str(uuid.uuid4()), receivable_id=receivable.id, amount=amount,
                      paid_on=paid_on or business_date(now), reference=reference, created_by=created_by, created_at=now)
    session.add(payment)
    receivable.payments.append(payment)
    receivable.paid_amount += amount
    receivable.status = installment_status(receivable.amount, receivable.paid_amount, receivable.overdue_at is not None)
    summary = f"Payment of {money_str(amount)} on {receivable.label}" + (f" ({reference})" if reference else "")
    # Every payment is announced once: receivable.paid when it settles the installment, payment.recorded when
    # some is still due, so finance can follow part payments too.
    settled = receivable.status == "paid"
    if settled:
        receivable.paid_at = now
    event_type = "receivable.paid" if settled else "payment.recorded"
    event = emit(session, SOURCE, event_type, dict(
        _contract_part(session, contract, load_settings(session)), **installment_payload(receivable),
        receivable_id=receivable.id, payment_id=payment.id, payment_amount=money_str(amount),
        paid_on=payment.paid_on.isoformat(), reference=reference),
        correlation_id=contract.id)
    add_timeline(session, contract.id, event.id, event_type, f"{summary}; installment paid" if settled else summary,
                 now)
    if settled:
        complete_if_settled(session, contract)
    return payment


def void_payment(session: Session, contract: Contract, receivable: Receivable, payment: Payment, *, reason: str,
                 voided_by: str) -> None:
    """Take back a payment entered by mistake (wrong installment, wrong amount): the installment owes it again,
    and a contract it had completed is delivered again. The payment stays listed, voided, with the reason."""
    if contract.status == "cancelled":
        raise Conflict("The contract is cancelled: its installments are closed; record a refund in your books.",
                       {"status": ["Is cancelled."]})
    if payment.voided_at is not None:
        raise Conflict("This payment has already been voided.", {"payment_id": ["Already voided."]})
    now = utcnow()
    payment.voided_at, payment.voided_by, payment.void_reason = now, voided_by, reason
    receivable.paid_amount -= payment.amount
    receivable.status = installment_status(receivable.amount, receivable.paid_amount, receivable.overdue_at is not None)
    if receivable.status != "paid":
        receivable.paid_at = None
    reopened = contract.status == "completed"
    if reopened:
        contract.status = "delivered"
    event = emit(session, SOURCE, "payment.voided", dict(
        _contract_part(session, contract, load_settings(session)), **installment_payload(receivable),
        receivable_id=receivable.id, payment_id=payment.id, payment_amount=money_str(payment.amount),
        paid_on=payment.paid_on.isoformat(), reference=payment.reference, void_reason=reason,
        contract_status=contract.status), correlation_id=contract.id)
    add_timeline(session, contract.id, event.id, "payment.voided",
                 f"Payment of {money_str(payment.amount)} on {receivable.label} voided: {reason}"
                 + ("; the contract is delivered, no longer completed" if reopened else ""), now)


def complete_if_settled(session: Session, contract: Contract) -> None:
    """delivered → completed once every installment of its plan is paid (a contract without a plan stays
    delivered: nothing says what it is owed). Called after each shipment and each payment."""
    if contract.status != "delivered":
        return
    statuses = session.execute(select(Receivable.status).where(Receivable.contract_id == contract.id)).scalars().all()
    if not statuses or any(status != "paid" for status in statuses):
        return
    contract.status = "completed"
    event = emit(session, SOURCE, "contract.completed", {
        "contract_id": contract.id, "number": contract.number, "customer_id": contract.customer_id,
        "customer_name": (contract.customer_snapshot or {}).get("name"), "total": money_str(contract.total),
        "owner_id": contract.owner_id}, correlation_id=contract.id)
    add_timeline(session, contract.id, event.id, "contract.completed",
                 f"Contract {contract.number} delivered and paid in full: completed")


def received(session: Session, contract_id: str) -> Decimal:
    """What the customer has paid on the contract so far."""
    return session.execute(select(func.coalesce(func.sum(Receivable.paid_amount), 0))
                           .where(Receivable.contract_id == contract_id)).scalar_one()


def cancel_installments(session: Session, contract: Contract) -> None:
    """With its contract, what was still to be collected is not: the installments not paid in full are cancelled.

    Money already received stays recorded (paid_amount, the payments); refunding it is finance's to decide.
    """
    rows = session.execute(select(Receivable).where(Receivable.contract_id == contract.id,
                                                    Receivable.status != "paid")).scalars().all()
    if not rows:
        return
    for row in rows:
        row.status = "cancelled"
    left = sum((outstanding(r.amount, r.paid_amount) for r in rows), Decimal(0))
    paid = received(session, contract.id)
    summary = f"{len(rows)} installment{'s' if len(rows) > 1 else ''} cancelled ({money_str(left)} no longer due)"
    if paid:
        summary += f"; {money_str(paid)} already received stays recorded"
    add_timeline(session, contract.id, f"receivables-cancelled:{contract.id}", "receivables.cancelled", summary,
                 contract.cancelled_at)


def date_delivery_installments(session: Session, contract: Contract, shipped_on: date) -> None:
    """The first shipment starts the clock of installments due some days after delivery."""
    rows = session.execute(select(Receivable).where(Receivable.contract_id == contract.id,
                                                    Receivable.due_event == "delivery",
                                                    Receivable.due_date.is_(None))).scalars().all()
    for row in rows:
        row.due_date = schedule.due_date(None, "delivery", row.due_days, None, shipped_on)


def mark_overdue(session: Session, receivable: Receivable, contract: Contract, settings: dict) -> None:
    """Past due and not paid: overdue, with its one receivable.overdue event (overdue_at guards the once)."""
    now = utcnow()
    receivable.overdue_at = now
    receivable.status = installment_status(receivable.amount, receivable.paid_amount, True)
    event = emit(session, SOURCE, "receivable.overdue", dict(
        _contract_part(session, contract, settings), **installment_payload(receivable), receivable_id=receivable.id),
        correlation_id=contract.id)
    add_timeline(session, contract.id, event.id, "receivable.overdue",
                 f"{receivable.label} ({money_str(outstanding(receivable.amount, receivable.paid_amount))} "
                 f"outstanding) overdue since {receivable.due_date.isoformat()}", now)


def installment_payload(r: Receivable) -> dict:
    return {"id": r.id, "seq": r.seq, "label": r.label, "amount": money_str(r.amount),
            "due_date": r.due_date.isoformat() if r.due_date else None, "paid_amount": money_str(r.paid_amount),
            "outstanding": money_str(outstanding(r.amount, r.paid_amount)), "status": r.status}


def _contract_part(session: Session, contract: Contract, settings: dict) -> dict:
    """The contract, customer and salesperson as documents and notifications (finance, sales) need them."""
    customer = contract.customer_snapshot or {}
    owner = session.get(User, contract.owner_id)
    return {"contract_id": contract.id, "contract_number": contract.number, "number": contract.number,
            "customer_id": contract.customer_id, "customer": customer, "customer_name": customer.get("name"),
            "delivery_date": contract.delivery_date.isoformat() if contract.delivery_date else None,
            "currency": contract.currency, "language": customer.get("language") or "zh-CN",
            "company": settings["company"], "company_language": settings["company"]["language"],
            "owner_id": contract.owner_id,
            "owner": {"id": owner.id, "username": owner.username, "email": owner.email} if owner else None,
            "confirmed_at": iso(contract.confirmed_at)}
