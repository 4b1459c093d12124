"""Notifications' reactions to events: department messages, and emails queued for the sender loop.

Each event carries what is needed (customer, salesperson, lines, the company's language), so nothing here
calls another service. Fields are read tolerantly: a missing one prints as a dash, never fails a message.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

from crmkit.messaging.consumer import Skip, only_if
from crmkit.timeutil import as_utc, utcnow
from services.notifications import departments, emails
from services.notifications.rules import (DEPARTMENTS, default_subject, department_text, email_body, items_text,
                                           language_of, money_text)


def make_context(settings, db):
    return SimpleNamespace(settings=settings)


# --- reading event data ----------------------------------------------------------------------------------------

def _at(envelope) -> datetime:
    try:
        return datetime.fromisoformat(envelope.occurred_at.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return utcnow()


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _language(envelope) -> str:
    """The company's language; inventory's events call it `language` (it copies company_language)."""
    data = envelope.data
    value = data.get("company_language") or _dict(data.get("company")).get("language")
    if not value and envelope.source == "inventory":
        value = data.get("language")
    return language_of(value)


def _customer_name(data: dict) -> str | None:
    return data.get("customer_name") or _dict(data.get("customer")).get("name")


def _contract(data: dict, number_is_contracts: bool = True) -> dict:
    """The SPEC `contract` part; `number` is the contract's own only on contract-level events."""
    nested = _dict(data.get("contract"))
    number = data.get("contract_number") or nested.get("number") or (data.get("number") if number_is_contracts
                                                                      else None)
    return departments.contract_ref(data.get("contract_id") or nested.get("id"), number,
                                    _customer_name(data) or nested.get("customer_name"),
                                    data.get("delivery_date") or nested.get("delivery_date"))


def _lines(data: dict) -> list[dict]:
    return [{k: line.get(k) for k in ("line_no", "product_code", "name", "unit", "quantity") if k in line}
            for line in data.get("lines") or [] if isinstance(line, dict)]


def _items(lines: list[dict]) -> list[tuple[str, str]]:
    """(what, how many) per line: the product's name (its code when the event has none), the quantity and unit."""
    return [(line.get("name") or line.get("product_code") or "—",
             " ".join(str(part) for part in (line.get("quantity") or "—", line.get("unit")) if part))
            for line in lines]


def _post(session, envelope, department: str, reason: str, contract: dict, lines: list, recipient_id=None,
          source_key: str | None = None, template: str | None = None, **facts):
    """`template`: another sentence for the same reason (a replaced plan, a cancellation with money received)."""
    text = department_text(template or reason, _language(envelope), department, number=contract.get("number"),
                           customer=contract.get("customer_name"), delivery_date=contract.get("delivery_date"),
                           **facts)
    departments.post(session, department=department, type=envelope.type, reason=reason,
                     text=text, contract=contract, lines=lines, source_key=source_key or envelope.id,
                     occurred_at=_at(envelope), recipient_id=recipient_id, correlation_id=envelope.correlation_id)


def _cancelled(session, data: dict) -> bool:
    """True when the contract was announced cancelled: a request to act on it that arrives later is dropped."""
    contract_id = data.get("contract_id") or _dict(data.get("contract")).get("id")
    departments.hold(session, contract_id)
    return departments.is_cancelled(session, contract_id)


# --- departments -----------------------------------------------------------------------------------------------

def contract_confirmed(envelope, session, ctx):
    """One message per ticked department; and the customer's email when the contract is to be sent."""
    data = envelope.data
    contract = _contract(data)
    lines = _lines(data)
    ticked = [d for d in dict.fromkeys(data.get("notify_departments") or []) if d in DEPARTMENTS]
    if (ticked or data.get("send_to_customer")) and _cancelled(session, data):
        return  # the cancellation overtook it: nobody was told, so nobody is to be told it is off, nor emailed
    for department in ticked:
        # The sales queue is shared by every salesperson: a message there is for the contract's own.
        _post(session, envelope, department, "contract_confirmed", contract, lines,
              recipient_id=data.get("owner_id") if department == "sales" else None)
    if data.get("send_to_customer"):
        _queue_contract_email(session, ctx, data)


def production_requested(envelope, session, ctx):
    _supply_requested(session, envelope, "production")


def procurement_requested(envelope, session, ctx):
    _supply_requested(session, envelope, "procurement")


def _supply_requested(session, envelope, department: str):
    data = envelope.data
    if _cancelled(session, data):
        return
    lines = [{"product_code": data.get("product_code"), "name": data.get("product_name") or data.get("name"),
              "unit": data.get("unit"), "quantity": data.get("quantity")}]
    _post(session, envelope, department, "shortage", _contract(data), lines, items=_items_text(envelope, lines))


def _items_text(envelope, lines) -> str:
    return items_text(_items(lines), _language(envelope))


@only_if(lambda envelope: envelope.data.get("policy") == "warn_sales")
def stock_shortage(envelope, session, ctx):
    """Under warn_sales the salesperson is warned; under notify_production, production.requested does the work."""
    data = envelope.data
    short = [{"line_no": l.get("line_no"), "product_code": l.get("product_code"), "name": l.get("name"),
              "unit": l.get("unit"), "quantity": l.get("missing"), "requested": l.get("requested"),
              "reserved": l.get("reserved")}
             for l in data.get("lines") or [] if isinstance(l, dict) and str(l.get("missing") or "0") not in ("0", "")]
    _post(session, envelope, "sales", "stock_warning", _contract(data), short, recipient_id=data.get("owner_id"),
          items=_items_text(envelope, short))


def delivery_created(envelope, session, ctx):
    _delivery(session, envelope, "delivery_created")


def delivery_shipped(envelope, session, ctx):
    _delivery(session, envelope, "delivery_shipped")


def _delivery(session, envelope, reason: str):
    data = envelope.data
    if reason == "delivery_created" and _cancelled(session, data):
        return
    contract = _contract(data, number_is_contracts=False)
    delivery_number = data.get("delivery_number") or (data.get("number") if data.get("number") != contract["number"]
                                                      else None)
    _post(session, envelope, "warehouse", reason, contract, _lines(data), delivery_number=delivery_number,
          ship_date=data.get("ship_date"))


def receivables_planned(envelope, session, ctx):
    """Finance is told, and so is the salesperson whose customer it is (SPEC §4), as for paid and overdue."""
    data = envelope.data
    if _cancelled(session, data):
        return
    plan = data.get("installments") or data.get("receivables") or []
    lines = [{k: item.get(k) for k in ("seq", "label", "amount", "due_date")}
             for item in plan if isinstance(item, dict)]
    contract = _contract(data)
    facts = {"count": len(lines), "total": money_text(data.get("total"), data.get("currency")),
             "template": "receivables_replaced" if data.get("replaced") else None}
    _post(session, envelope, "finance", "receivables_planned", contract, lines, **facts)
    if data.get("owner_id"):
        _post(session, envelope, "sales", "receivables_planned", contract, lines, recipient_id=data["owner_id"],
              **facts)


def receivable_paid(envelope, session, ctx):
    _receivable(session, envelope, "receivable_paid", data_amount=("payment_amount", "paid", "amount"))


def payment_recorded(envelope, session, ctx):
    _receivable(session, envelope, "payment_recorded", data_amount=("payment_amount",))


def payment_voided(envelope, session, ctx):
    _receivable(session, envelope, "payment_voided", data_amount=("payment_amount",),
                void_reason=str(envelope.data.get("void_reason") or "—")[:200])


def receivable_overdue(envelope, session, ctx):
    _receivable(session, envelope, "receivable_overdue", data_amount=("outstanding", "amount"))


def _receivable(session, envelope, reason: str, data_amount: tuple, **extra):
    """Finance is told, and so is the salesperson whose customer it is."""
    data = envelope.data
    item = _dict(data.get("receivable")) or data
    amount = next((item.get(k) or data.get(k) for k in data_amount if item.get(k) or data.get(k)), None)
    facts = {"seq": item.get("seq"), "label": item.get("label"), "due_date": item.get("due_date"),
             "amount": money_text(amount, data.get("currency")),
             "outstanding": money_text(item.get("outstanding"), data.get("currency")), **extra}
    line = {k: item.get(k) for k in ("receivable_id", "seq", "label", "amount", "paid_amount", "due_date", "status")}
    line["receivable_id"] = line["receivable_id"] or data.get("receivable_id") or item.get("id")
    contract = _contract(data)
    _post(session, envelope, "finance", reason, contract, [line], **facts)
    if data.get("owner_id"):
        _post(session, envelope, "sales", reason, contract, [line], recipient_id=data["owner_id"], **facts)


def contract_cancelled(envelope, session, ctx):
    """Each department told about the contract hears, once, that it is cancelled; the others hear nothing."""
    data = envelope.data
    contract_id = data.get("contract_id")
    if not contract_id:
        raise Skip()
    departments.hold(session, contract_id)
    departments.mark_cancelled(session, contract_id)
    emails.withdraw(session, contract_id)
    received = money_text(data["received"], data.get("currency")) if data.get("received") else None
    for department, earlier in departments.told_about(session, contract_id).items():
        paid = received is not None and department == "finance"
        _post(session, envelope, department, "contract_cancelled", _cancelled_ref(data, earlier[0]["contract"]),
              _lines(data) or _goods_told(earlier), source_key=f"contract.cancelled:{contract_id}",
              template="contract_cancelled_paid" if paid else None, received=received)


def _cancelled_ref(data: dict, earlier: dict | None) -> dict:
    """The contract as the event names it; what an older event left out, as the department was told it."""
    ref, earlier = _contract(data), _dict(earlier)
    return {key: value if value is not None else earlier.get(key) for key, value in ref.items()}


def _goods_told(earlier: list[dict]) -> list:
    """The goods lines a department was told about (a contract.cancelled without its lines)."""
    confirmed = [m["lines"] for m in earlier if m["reason"] == "contract_confirmed"]
    if confirmed:
        return confirmed[0]
    return [line for m in earlier if m["reason"] in ("shortage", "delivery_created") for line in m["lines"] or []]


def recurring_failed(envelope, session, ctx):
    data = envelope.data
    contract = _contract(data)
    contract["number"] = contract["number"] or data.get("source_number")
    _post(session, envelope, "sales", "recurring_failed", contract, [], recipient_id=data.get("owner_id"),
          error=str(data.get("error") or "—")[:300])


# --- emails ----------------------------------------------------------------------------------------------------

def _queue_email(session, ctx, data: dict, *, request_key: str, kind: str, to, **extra):
    """Queue an email to the customer of `data` (a contract or quote event); the PDF is attached at send time."""
    customer = _dict(data.get("customer"))
    number = data.get("number") or ""
    body = email_body(kind, number, data.get("language") or customer.get("language"), customer.get("name"),
                      data.get("message"), _dict(data.get("company")).get("name"))
    emails.queue(session, request_key=request_key, kind=kind, to=to, subject=data.get("subject")
                 or default_subject(kind, number), body=body, number=number, owner_id=data.get("owner_id"),
                 reply_to=_dict(data.get("owner")).get("email"), customer_name=customer.get("name"),
                 company_language=data.get("company_language"), settings=ctx.settings, **extra)


def _customer_address(data: dict) -> list:
    address = _dict(data.get("customer")).get("email")
    return [address] if address else []


def _queue_contract_email(session, ctx, data: dict):
    """The automatic email of a confirmed contract: one per contract, sent once its PDF is rendered."""
    _queue_email(session, ctx, {**data, "message": None, "subject": None},
                 request_key=f"contract:{data['contract_id']}", kind="contract", to=_customer_address(data),
                 contract_id=data["contract_id"])


CLOCK_SLACK = timedelta(seconds=2)


def quote_sent(envelope, session, ctx):
    """Sending a quote means emailing its PDF to the customer, once documents has rendered it."""
    data = envelope.data
    if not data.get("quote_id"):
        raise Skip()
    # A quote sent again is printed again (the customer's address may be what changed): its email takes that PDF,
    # not the one printed for the earlier send. The slack only absorbs clocks a little apart between hosts.
    _queue_email(session, ctx, {**data, "message": None, "subject": None}, request_key=f"quote.sent:{envelope.id}",
                 kind="quote", to=_customer_address(data), quote_id=data["quote_id"],
                 pdf_since=as_utc(_at(envelope)) - CLOCK_SLACK)


def email_requested(envelope, session, ctx):
    """POST /contracts/{id}/send: addresses and subject were validated by the gateway (and again at send)."""
    data = envelope.data
    _queue_email(session, ctx, data, request_key=f"request:{data['email_id']}", kind="contract", to=data.get("to"),
                 email_id=data["email_id"], cc=data.get("cc"), contract_id=data.get("contract_id"),
                 document_id=data.get("document_id"))


def document_rendered(envelope, session, ctx):
    """Remember the PDF; emails waiting for it (automatic, requested, quotes) now become due."""
    data = dict(envelope.data)
    data["owner_id"] = data.get("owner_id") or data.get("contract_id") or data.get("quote_id")
    emails.remember_document(session, data, as_utc(_at(envelope)))  # compared with UTC times, also as SQLite text


HANDLERS = {
    "contract.confirmed": contract_confirmed,
    "contract.cancelled": contract_cancelled,
    "production.requested": production_requested,
    "procurement.requested": procurement_requested,
    "stock.shortage": stock_shortage,
    "delivery.created": delivery_created,
    "delivery.shipped": delivery_shipped,
    "receivables.planned": receivables_planned,
    "receivable.paid": receivable_paid,
    "payment.recorded": payment_recorded,
    "payment.voided": payment_voided,
    "receivable.overdue": receivable_overdue,
    "recurring.failed": recurring_failed,
    "quote.sent": quote_sent,
    "email.requested": email_requested,
    "document.rendered": document_rendered,
}
