"""Delivery notes in the caller's transaction: create one from a locked contract, ship it, and their events."""
from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crmkit.errors import Conflict, ValidationFailed
from crmkit.fields import qty_str
from crmkit.messaging.outbox import emit
from crmkit.numbering import next_number
from crmkit.timeutil import business_date, iso, utcnow
from services.contracts import rules
from services.contracts.fulfilment_models import DeliveryLine, DeliveryNote
from services.contracts.fulfilment_rules import allocate, deliverable
from services.contracts.lifecycle import SOURCE, add_timeline
from services.contracts.models import Contract, User
from services.contracts.receivables import complete_if_settled, date_delivery_installments
from services.contracts.settings_store import load_settings

DELIVERABLE = ("confirmed", "partially_delivered")


def in_open_notes(session: Session, contract_id: str) -> dict[int, Decimal]:
    """line_no -> quantity already on delivery notes that have not shipped."""
    rows = session.execute(
        select(DeliveryLine.line_no, func.sum(DeliveryLine.quantity))
        .join(DeliveryNote, DeliveryNote.id == DeliveryLine.delivery_note_id)
        .where(DeliveryNote.contract_id == contract_id, DeliveryNote.status == "open")
        .group_by(DeliveryLine.line_no)).all()
    return {line_no: Decimal(total) for line_no, total in rows}


def create(session: Session, contract: Contract, *, lines: list[dict] | None, ship_date: date | None,
           address: str | None, created_by: str) -> DeliveryNote:
    """A delivery note for what the contract still owes; the caller holds the contract row locked."""
    if contract.status not in DELIVERABLE:
        raise Conflict(f"Only a confirmed or partially delivered contract can be delivered; this one is "
                       f"{contract.status}.", {"status": [f"Is {contract.status}."]})
    pending = in_open_notes(session, contract.id)
    owed = {line.line_no: deliverable(line.quantity, line.delivered, pending.get(line.line_no, Decimal(0)))
            for line in contract.lines}
    # A note ships goods held for this contract, so it takes no more than is reserved for each line: a note for
    # goods that are not there could never ship (see _require_reserved).
    room = {line.line_no: deliverable(min(line.quantity, line.reserved), line.delivered,
                                      pending.get(line.line_no, Decimal(0))) for line in contract.lines}
    by_no = {line.line_no: line for line in contract.lines}
    taken: list[tuple[int, Decimal]] = []
    if lines is None:
        taken = [(no, qty) for no, qty in room.items() if qty > 0]
        if not taken and any(qty > 0 for qty in owed.values()):
            waiting = "its stock is not reserved yet (it is on its way; try again in a moment)" \
                if contract.stock_status == "pending" else "what it still owes is waiting for stock"
            raise Conflict(f"Nothing of this contract can be delivered now: {waiting}.",
                           {"lines": [_waiting_text(by_no[no], qty, contract.stock_status == "pending")
                                      for no, qty in owed.items() if qty > 0]})
        if not taken:
            raise Conflict("Everything on this contract has been delivered or is on an open delivery note.",
                           {"lines": ["Nothing left to deliver."]})
    else:
        errors = {}
        for i, wanted in enumerate(lines):
            candidates = [(l.line_no, room[l.line_no]) for l in contract.lines
                          if l.product_code == wanted["product_code"]]
            if not candidates:
                errors[f"lines.{i}.product_code"] = [f"{wanted['product_code']} is not on this contract."]
                continue
            parts, left = allocate(wanted["quantity"], candidates)
            if left > 0:
                can = sum((qty for _, qty in candidates), Decimal(0))
                owes = sum((owed[no] for no, _ in candidates), Decimal(0))
                if can == owes:
                    why = "(contracted minus delivered minus open delivery notes)."
                elif contract.stock_status == "pending":
                    why = "(the contract's stock is not reserved yet: it is on its way; try again in a moment)."
                else:
                    why = (f"(reserved for this contract and not yet delivered or on an open delivery note; "
                           f"{qty_str(owes - can)} more waits for stock).")
                errors[f"lines.{i}.quantity"] = [
                    f"At most {qty_str(can)} of {wanted['product_code']} can be delivered now {why}"]
                continue
            for no, qty in parts:
                room[no] -= qty
                taken.append((no, qty))
        if errors:
            raise ValidationFailed("Some lines ask for more than can be delivered now.", errors)
    merged: dict[int, Decimal] = {}
    for no, qty in taken:
        merged[no] = merged.get(no, Decimal(0)) + qty
    note = DeliveryNote(
        id=str(uuid.uuid4()), number=next_number(session, "DN", business_date().year), contract_id=contract.id,
        status="open", ship_date=ship_date, created_by=created_by, created_at=utcnow(),
        address=address if address is not None else (contract.customer_snapshot or {}).get("address"),
        lines=[DeliveryLine(line_no=no, product_code=by_no[no].product_code, name=by_no[no].name,
                            unit=by_no[no].unit, quantity=qty) for no, qty in sorted(merged.items())])
    session.add(note)
    session.flush()
    settings = load_settings(session)
    event = emit(session, SOURCE, "delivery.created", note_payload(session, note, contract, settings),
                 correlation_id=contract.id)
    add_timeline(session, contract.id, event.id, "delivery.created",
                 f"Delivery note {note.number} created ({_lines_text(note)})", note.created_at)
    return note


def cancel_open_notes(session: Session, contract: Contract) -> None:
    """With its contract, a note that has not shipped will not: it says so rather than stay open for good."""
    # The warehouse, told of the note, is told of the cancellation by notifications (contract_cancelled).
    for note in session.execute(select(DeliveryNote).where(DeliveryNote.contract_id == contract.id,
                                                           DeliveryNote.status == "open")).scalars():
        note.status = "cancelled"


def ship(session: Session, contract: Contract, note: DeliveryNote) -> None:
    """open → shipped: the lines count as delivered and the contract moves; inventory takes the goods out."""
    if note.status == "cancelled":
        raise Conflict(f"Delivery note {note.number} was cancelled with its contract.", {"status": ["Is cancelled."]})
    if note.status != "open":
        raise Conflict(f"Delivery note {note.number} has already shipped.", {"status": [f"Is {note.status}."]})
    if contract.status not in DELIVERABLE:
        raise Conflict(f"The contract is {contract.status}; its goods cannot ship.",
                       {"status": [f"Contract is {contract.status}."]})
    now = utcnow()
    first = all(line.delivered <= 0 for line in contract.lines)
    by_no = {line.line_no: line for line in contract.lines}
    _require_reserved(contract, note, by_no)
    for line in note.lines:
        by_no[line.line_no].delivered += line.quantity
    note.status = "shipped"
    note.shipped_at = now
    if note.ship_date is None:
        note.ship_date = business_date(now)
    target = rules.delivery_status([(l.quantity, l.delivered) for l in contract.lines])
    if target != contract.status:
        rules.require_move(contract.status, target)
        contract.status = target
    owner = session.get(User, contract.owner_id)
    event = emit(session, SOURCE, "delivery.shipped", {
        "delivery_note_id": note.id, "number": note.number, "contract_id": contract.id,
        "contract_number": contract.number, "contract_status": contract.status, "customer_id": contract.customer_id,
        "customer_name": (contract.customer_snapshot or {}).get("name"), "owner_id": contract.owner_id,
        "owner": _owner(owner), "shipped_at": iso(now), "ship_date": note.ship_date.isoformat(),
        "delivery_date": _delivery_date(contract),
        "lines": [{"line_no": l.line_no, "product_code": l.product_code, "name": l.name, "unit": l.unit,
                   "quantity": qty_str(l.quantity)} for l in note.lines],
        "company_language": load_settings(session)["company"]["language"],  # the warehouse's message
    }, correlation_id=contract.id)
    add_timeline(session, contract.id, event.id, "delivery.shipped",
                 f"Delivery note {note.number} shipped ({_lines_text(note)}); contract {contract.status}", now)
    if first:
        date_delivery_installments(session, contract, business_date(now))
    complete_if_settled(session, contract)


def _waiting_text(line, owed: Decimal, pending: bool) -> str:
    state = "not reserved yet" if pending else "waiting for stock"
    return f"{line.product_code}: {qty_str(owed)} {line.unit or ''} still owed, {state}.".replace("  ", " ")


def _require_reserved(contract: Contract, note: DeliveryNote, by_no: dict) -> None:
    """Goods ship only from what inventory holds for this contract (its stock events keep `reserved` per line).

    Shipping beyond it would take goods that are not there, or that are held for another customer's contract:
    inventory would be told after the fact and could only let its stock go negative.
    """
    wanted: dict[int, Decimal] = {}
    for line in note.lines:
        wanted[line.line_no] = wanted.get(line.line_no, Decimal(0)) + line.quantity
    fields = {}
    for i, line in enumerate(note.lines):
        held = by_no[line.line_no]
        free = max(held.reserved - held.delivered, Decimal(0))
        if wanted[line.line_no] > free:
            fields[f"lines.{i}.quantity"] = [
                f"{qty_str(free)} {held.unit or ''} of {held.product_code} reserved for this contract and not yet "
                f"shipped; this note ships {qty_str(wanted[line.line_no])}.".replace("  ", " ")]
    if not fields:
        return
    if contract.stock_status == "pending":
        why = "the stock of this contract is not reserved yet (it is on its way); try again in a moment"
    else:
        why = ("not enough stock is reserved for this contract: ship what is reserved in a smaller note, or wait "
               "until the missing stock arrives and is reserved")
    raise Conflict(f"Delivery note {note.number} cannot ship: {why}.", fields)


def note_payload(session: Session, note: DeliveryNote, contract: Contract, settings: dict) -> dict:
    """What documents (the 发货单 PDF) and notifications (the warehouse) need without calling back."""
    customer = contract.customer_snapshot or {}
    owner = session.get(User, contract.owner_id)
    return {
        "delivery_note_id": note.id, "number": note.number, "contract_id": contract.id,
        "contract_number": contract.number, "customer_id": contract.customer_id, "customer": customer,
        "customer_name": customer.get("name"), "address": note.address,
        "ship_date": note.ship_date.isoformat() if note.ship_date else None,
        "delivery_date": _delivery_date(contract),
        "lines": [{"line_no": l.line_no, "product_code": l.product_code, "name": l.name, "unit": l.unit,
                   "quantity": qty_str(l.quantity)} for l in note.lines],
        "language": customer.get("language") or "zh-CN", "company": settings["company"],
        "company_language": settings["company"]["language"], "currency": contract.currency,
        "owner_id": contract.owner_id, "owner": _owner(owner), "created_at": iso(note.created_at),
    }


def _delivery_date(contract: Contract) -> str | None:
    """The contract's agreed delivery date: the warehouse's messages show it beside the note's ship date."""
    return contract.delivery_date.isoformat() if contract.delivery_date else None


def _owner(user: User | None) -> dict | None:
    return {"id": user.id, "username": user.username, "email": user.email} if user else None


def _lines_text(note: DeliveryNote) -> str:
    return ", ".join(f"{l.product_code} {qty_str(l.quantity)}" for l in note.lines)
