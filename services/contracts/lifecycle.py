"""Contract operations in the caller's transaction: create, change, confirm, cancel, and their events."""
from __future__ import annotations

import functools
import uuid
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.orm import Session, aliased, make_transient_to_detached, object_session
from sqlalchemy.orm.attributes import set_committed_value

from crmkit.db import dialect_insert, insert_ignore, row_values
from crmkit.errors import Conflict, ValidationFailed
from crmkit.fields import qty_str
from crmkit.messaging.outbox import emit
from crmkit.money import amount_in_words, money_str, price_line, price_str, size_errors, totals
from crmkit.numbering import next_number, next_value
from crmkit.timeutil import business_date, iso, utcnow
from services.contracts import rules, schedule
from services.contracts.fulfilment_models import RecurringRun, RecurringSchedule
from services.contracts.models import Contract, ContractLine, Customer, TimelineEntry
from services.contracts.settings_store import load_settings

SOURCE = "contracts"
ZERO = Decimal(0)


def build_lines(lines_in: list[dict], products: dict[str, dict]) -> list[ContractLine]:
    """Lines typed by product code: name, unit, price and tax from the catalogue, unless overridden."""
    errors = {}
    for i, line in enumerate(lines_in):
        if line["product_code"] not in products:
            errors[f"lines.{i}.product_code"] = [f"Unknown product code {line['product_code']}."]
    if errors:
        raise ValidationFailed("Some lines name products that are not in the catalogue.", errors)
    built = []
    for i, line in enumerate(lines_in):
        product = products[line["product_code"]]
        unit_price = line.get("unit_price")
        unit_price = Decimal(product["unit_price"]) if unit_price is None else unit_price
        discount = line.get("discount") or ZERO
        tax_rate = Decimal(line["tax_rate"]) if line.get("tax_rate") is not None else Decimal(product["tax_rate"])
        amount, tax = price_line(line["quantity"], unit_price, discount, tax_rate)
        built.append(ContractLine(line_no=i + 1, product_code=product["code"],
                                  name=line.get("name") or product["name"], unit=line.get("unit") or product["unit"],
                                  quantity=line["quantity"], unit_price=unit_price, discount=discount,
                                  tax_rate=tax_rate, amount=amount, tax_amount=tax, reserved=ZERO, delivered=ZERO))
    errors = size_errors([(line.amount, line.tax_amount) for line in built])
    if errors:
        raise ValidationFailed("Some lines are too large.", errors)
    return built


def set_lines(contract: Contract, lines: list[ContractLine]) -> None:
    session = object_session(contract)
    if session is not None and contract.lines:
        # The unit of work inserts new rows before deleting orphans: the old lines go first, or the new
        # (contract_id, line_no) pairs collide with them.
        contract.lines.clear()
        session.flush()
    contract.lines = lines
    contract.subtotal, contract.tax_total, contract.total = totals((l.amount, l.tax_amount) for l in lines)


def customer_snapshot(customer: Customer) -> dict:
    return {"name": customer.name, "address": customer.address, "contact_person": customer.contact_person,
            "email": customer.email, "phone": customer.phone, "language": customer.language}


def create(session: Session, *, customer: Customer, lines: list[ContractLine], created_by: str,
           delivery_date: date | None = None, payment_terms: str | None = None,
           notify_departments: list | None = None, send_to_customer: bool | None = None,
           quote_id: str | None = None, recurring_id: str | None = None, currency: str = "CNY",
           settings: dict | None = None) -> Contract:
    """A draft; `settings`: the company settings when the caller has already read them."""
    settings = settings if settings is not None else load_settings(session)
    now = utcnow()
    contract = Contract(
        id=str(uuid.uuid4()), number=next_number(session, "HT", business_date(now).year), version=1, customer_id=customer.id,
        customer_snapshot=customer_snapshot(customer), quote_id=quote_id, recurring_id=recurring_id,
        status="draft", currency=currency, delivery_date=delivery_date,
        payment_terms=payment_terms if payment_terms is not None else settings["default_payment_terms"],
        notify_departments=list(dict.fromkeys(notify_departments if notify_departments is not None
                                              else settings["default_notify_departments"])),
        send_to_customer=bool(send_to_customer) if send_to_customer is not None else False,
        stock_status="pending", warnings=[], owner_id=customer.owner, created_by=created_by, created_at=now)
    set_lines(contract, lines)
    _insert_new(session, contract)
    event = emit(session, SOURCE, "contract.created", {
        "contract_id": contract.id, "number": contract.number, "customer_id": customer.id, "quote_id": quote_id,
        "recurring_id": recurring_id, "total": money_str(contract.total), "owner_id": contract.owner_id,
    }, correlation_id=contract.id)
    add_timeline(session, contract.id, event.id, "contract.created",
                 f"Contract {contract.number} created" + (" from a quote" if quote_id else ""), now)
    return contract


def _insert_new(session: Session, contract: Contract) -> None:
    """Write a new contract and its lines with two prebuilt statements, then attach them to the session as if
    they had been loaded: what follows (the view, the events, a confirm in the same request) uses them as usual.

    The unit of work's flush of the same rows cost about twice as much CPU, the largest part of a create.
    Every column gets a value on the object, so nothing is expired and read back later.
    """
    session.execute(_CONTRACT_INSERT, row_values(contract))
    for line in contract.lines:
        line.contract_id = contract.id
    ids = session.execute(_LINE_INSERT, [row_values(line) for line in contract.lines]).scalars().all()
    for line, line_id in zip(contract.lines, ids, strict=True):
        line.id = line_id
        make_transient_to_detached(line)
    make_transient_to_detached(contract)
    session.add(contract)  # cascades to the lines


def confirm(session: Session, contract: Contract, customer: Customer, owner, settings: dict | None = None) -> None:
    """draft → confirmed: freeze the customer, then one event starts reservation, PDF, email and notices.
    `settings`: the company settings when the caller has already read them."""
    rules.require_move(contract.status, "confirmed")
    settings = settings if settings is not None else load_settings(session)
    now = utcnow()
    changes = {"status": "confirmed", "confirmed_at": now, "customer_snapshot": customer_snapshot(customer),
               "confirmed_seq": next_value(session, "confirmations"), "stock_status": "pending"}
    # One prebuilt UPDATE, and the object told these are the stored values: the unit of work's flush of the
    # same change cost about twice as much.
    session.execute(_CONFIRM, {"cid": contract.id, **changes})
    for key, value in changes.items():
        set_committed_value(contract, key, value)
    payload = confirmed_payload(contract, settings, owner)
    if contract.recurring_id:
        payload["period"] = recurring_period(session, contract)
    event = emit(session, SOURCE, "contract.confirmed", payload, correlation_id=contract.id)
    add_timeline(session, contract.id, event.id, "contract.confirmed", f"Contract {contract.number} confirmed", now)


def confirmed_payload(contract: Contract, settings: dict, owner) -> dict:
    """Everything inventory, documents and notifications need to act without calling back."""
    language = contract.customer_snapshot.get("language") or "zh-CN"
    return {
        "contract_id": contract.id, "number": contract.number, "version": contract.version,
        "customer_id": contract.customer_id, "customer": contract.customer_snapshot,
        "language": language, "company": settings["company"], "company_language": settings["company"]["language"],
        "shortage_policy": settings["shortage_policy"],
        "owner_id": contract.owner_id, "owner": {"id": owner.id, "username": owner.username, "email": owner.email}
        if owner else None,
        "lines": [line_payload(l) for l in contract.lines],
        "subtotal": money_str(contract.subtotal), "tax_total": money_str(contract.tax_total),
        "total": money_str(contract.total), "currency": contract.currency,
        "total_in_words": amount_in_words(contract.total, language, contract.currency),
        "delivery_date": contract.delivery_date.isoformat() if contract.delivery_date else None,
        "payment_terms": contract.payment_terms, "notify_departments": contract.notify_departments,
        "send_to_customer": contract.send_to_customer, "confirmed_seq": contract.confirmed_seq,
        "created_at": iso(contract.created_at), "confirmed_at": iso(contract.confirmed_at),
    }


def recurring_period(session: Session, contract: Contract) -> dict | None:
    """The period a contract generated by a recurring schedule covers, which its PDF prints: from its run to the
    day before the next (or the schedule's end), and the contract it repeats."""
    source, row = aliased(Contract), RecurringSchedule
    found = session.execute(  # columns, not the schedule: loading it would load all its runs
        select(RecurringRun.run_on, row.start_date, row.interval, row.every, row.end_date, source.number)
        .join(row, row.id == RecurringRun.schedule_id)
        .join(source, source.id == row.source_contract_id)
        .where(RecurringRun.schedule_id == contract.recurring_id, RecurringRun.contract_id == contract.id)).first()
    if found is None:
        return None
    following = schedule.next_run_after(found.start_date, found.interval, found.every, found.end_date, found.run_on)
    until = following - timedelta(days=1) if following else found.end_date
    return {"from": found.run_on.isoformat(), "until": until.isoformat() if until else None,
            "interval": found.interval, "every": found.every, "source_number": found.number}


def line_payload(line: ContractLine) -> dict:
    return {"line_no": line.line_no, "product_code": line.product_code, "name": line.name, "unit": line.unit,
            "quantity": qty_str(line.quantity), "unit_price": price_str(line.unit_price),
            "discount": format(line.discount.normalize(), "f"), "tax_rate": format(line.tax_rate.normalize(), "f"),
            "amount": money_str(line.amount), "tax_amount": money_str(line.tax_amount)}


def cancel(session: Session, contract: Contract, reason: str | None = None, received: Decimal | None = None) -> None:
    """`received`: what the customer has paid so far, for finance to settle (a refund, a credit)."""
    if contract.status in ("confirmed",) and any(l.delivered > ZERO for l in contract.lines):
        raise Conflict("Goods of this contract have been delivered; it can no longer be cancelled.")
    rules.require_move(contract.status, "cancelled")
    was_confirmed = contract.status == "confirmed"
    contract.status = "cancelled"
    contract.cancelled_at = utcnow()
    event = emit(session, SOURCE, "contract.cancelled", {
        "contract_id": contract.id, "number": contract.number, "was_confirmed": was_confirmed,
        "owner_id": contract.owner_id, "reason": reason,
        "received": money_str(received) if received else None, "currency": contract.currency,
        # What notifications needs to tell the departments it had notified, without calling back.
        "customer_name": (contract.customer_snapshot or {}).get("name"),
        "delivery_date": contract.delivery_date.isoformat() if contract.delivery_date else None,
        "notify_departments": contract.notify_departments, "lines": [line_payload(l) for l in contract.lines],
        "company_language": load_settings(session)["company"]["language"]}, correlation_id=contract.id)
    if not was_confirmed:
        contract.stock_status = "released" if contract.stock_status != "pending" else contract.stock_status
    add_timeline(session, contract.id, event.id, "contract.cancelled", f"Contract {contract.number} cancelled",
                 contract.cancelled_at)


def add_timeline(session: Session, contract_id: str, event_id: str, type: str, summary: str, at=None) -> None:
    """One entry per (contract, event): a second one for the same event is ignored."""
    insert_ignore(session, TimelineEntry.__table__, {"contract_id": contract_id, "event_id": event_id, "type": type,
                                                     "summary": summary, "at": at or utcnow()})


def add_timeline_if_contract(session: Session, contract_id: str, event_id: str, type: str, summary: str,
                             at=None) -> bool:
    """add_timeline for an event that may name a contract this service does not have; False when it does not.

    One statement on the usual path (the entry is written only if the contract exists) instead of a lookup and
    an insert: this runs for most events of every saga.
    """
    values = {"contract_id": contract_id, "event_id": event_id, "type": type, "summary": summary,
              "at": at or utcnow()}
    if session.execute(_timeline_if_contract(session.get_bind().dialect.name), values).first() is not None:
        return True
    # Nothing written: the entry was there already (a copy of the event), or there is no such contract.
    return contract_exists(session, contract_id)


def contract_exists(session: Session, contract_id: str) -> bool:
    """One indexed read, nothing loaded: for event handlers that act only on contracts of this service."""
    return session.execute(_CONTRACT_EXISTS, {"contract_id": contract_id}).first() is not None


_TIMELINE = TimelineEntry.__table__
_CONTRACTS = Contract.__table__
_CONTRACT_INSERT = insert(_CONTRACTS)
_LINES = ContractLine.__table__
# Ids in the order of the rows given, so that each line object gets its own.
_LINE_INSERT = insert(_LINES).returning(_LINES.c.id, sort_by_parameter_order=True)
# No SET clause of its own: it is made of the columns named in the parameters (confirm's `changes`).
_CONFIRM = update(_CONTRACTS).where(_CONTRACTS.c.id == bindparam("cid"))
_CONTRACT_EXISTS = select(_CONTRACTS.c.id).where(_CONTRACTS.c.id == bindparam("contract_id"))


@functools.lru_cache(maxsize=None)
def _timeline_if_contract(dialect_name: str):
    columns = ["contract_id", "event_id", "type", "summary", "at"]
    row = select(*(bindparam(name, type_=_TIMELINE.c[name].type) for name in columns)).where(
        exists().where(_CONTRACTS.c.id == bindparam("contract_id")))
    return (dialect_insert(dialect_name)(_TIMELINE).from_select(columns, row)
            .on_conflict_do_nothing().returning(_TIMELINE.c.id))


def require_customer_unchanged(contract: Contract, customer_id: str | None) -> None:
    if customer_id is not None and customer_id != contract.customer_id:
        raise Conflict("The customer of a contract never changes.", {"customer_id": ["Cannot be changed."]})
