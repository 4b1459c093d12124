"""Quote operations in the caller's transaction: create, change, send, accept, reject, convert, and their events."""
from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.orm import Session

from crmkit.errors import TooMany, field_error
from crmkit.fields import qty_str
from crmkit.messaging.outbox import emit
from crmkit.money import amount_in_words, money_str, price_str
from crmkit.numbering import next_number
from crmkit.timeutil import as_utc, business_date, iso, utcnow
from services.quotes import rules
from services.quotes.models import Quote, QuoteLine

SOURCE = "quotes"
SNAPSHOT_FIELDS = ("name", "email", "language", "address", "contact_person", "phone")


def today() -> date:
    return business_date()


def status_of(quote: Quote) -> str:
    return rules.effective_status(quote.status, quote.valid_until, today())


def language_of(quote: Quote) -> str:
    return (quote.customer_snapshot or {}).get("language") or "zh-CN"


def words(quote: Quote) -> str:
    return amount_in_words(quote.total, language_of(quote), quote.currency)


def customer_snapshot(customer: dict) -> dict:
    snapshot = {key: customer.get(key) for key in SNAPSHOT_FIELDS}
    snapshot["language"] = snapshot["language"] or "zh-CN"
    return snapshot


def set_lines(session: Session, quote: Quote, priced: list[dict]) -> None:
    if quote.lines:
        # Old lines go first: inserting the new ones before the delete would clash on (quote_id, line_no).
        quote.lines.clear()
        session.flush()
    quote.lines = [QuoteLine(**line) for line in priced]
    quote.subtotal, quote.tax_total, quote.total = rules.quote_totals(priced)


def create(session: Session, *, customer: dict, priced: list[dict], created_by: str, valid_until: date | None,
           currency: str, payment_terms: str | None, delivery_date: date | None, notes: str | None) -> Quote:
    now = utcnow()
    valid_until = valid_until or rules.default_valid_until(business_date(now))
    rules.require_valid_until(valid_until, business_date(now))
    quote = Quote(id=str(uuid.uuid4()), number=next_number(session, "QT", business_date(now).year), customer_id=customer["id"],
                  customer_snapshot=customer_snapshot(customer), owner_id=customer["owner"], owner_since=now,
                  status="draft",
                  valid_until=valid_until, currency=currency, payment_terms=payment_terms,
                  delivery_date=delivery_date, notes=notes, created_by=created_by, created_at=now, updated_at=now)
    set_lines(session, quote, priced)
    session.add(quote)
    session.flush()
    return quote


def change(session: Session, quote: Quote, data: dict, priced: list[dict] | None) -> None:
    """PATCH of a draft: lines are replaced whole; the customer never changes."""
    rules.require_editable(quote.status)
    if data.get("customer_id") not in (None, quote.customer_id):
        raise field_error("customer_id", "The customer of a quote cannot change; make a new quote.")
    if data.get("currency") not in (None, quote.currency) and priced is None:
        raise field_error("currency", "Send the lines along with a new currency, so that they are priced in it.")
    if "valid_until" in data:
        rules.require_valid_until(data["valid_until"], today())
    if priced is not None:
        set_lines(session, quote, priced)
    for key in ("valid_until", "currency", "payment_terms", "delivery_date", "notes"):
        if key in data:
            setattr(quote, key, data[key])
    quote.updated_at = utcnow()


def send(session: Session, quote: Quote, company: dict | None, owner: dict, customer: dict) -> None:
    """Sent as the customer is at this moment (their address, contact, language): what the quote prints and where
    it goes, frozen from here on as a contract's is at signing."""
    now = utcnow()
    require_sendable(quote, now)  # again under the quote's row lock: two clicks at once send once
    quote.customer_snapshot = customer_snapshot(customer)
    quote.status, quote.sent_at = "sent", now  # sent_at: the latest send
    emit(session, SOURCE, "quote.sent", sent_payload(quote, company, owner), correlation_id=quote.id)


def require_sendable(quote: Quote, now) -> None:
    """409 unless a draft or a sent quote still valid; 429 with Retry-After when it was sent moments ago."""
    rules.require_move(quote.status, quote.valid_until, "sent", today())
    if quote.status == "sent":
        wait = rules.resend_wait(as_utc(quote.sent_at), now)
        if wait:
            raise TooMany(f"Quote {quote.number} was sent less than {rules.RESEND_AFTER.seconds} s ago; "
                          f"it can be sent again in {wait} s.", headers={"Retry-After": str(wait)})


def accept(session: Session, quote: Quote) -> None:
    rules.require_move(quote.status, quote.valid_until, "accepted", today())
    quote.status, quote.accepted_at = "accepted", utcnow()
    emit(session, SOURCE, "quote.accepted", {
        "quote_id": quote.id, "number": quote.number, "customer_id": quote.customer_id,
        "customer": quote.customer_snapshot, "owner_id": quote.owner_id, "currency": quote.currency,
        "total": money_str(quote.total), "accepted_at": iso(quote.accepted_at)}, correlation_id=quote.id)


def reject(quote: Quote) -> None:
    rules.require_move(quote.status, quote.valid_until, "rejected", today())
    quote.status, quote.rejected_at = "rejected", utcnow()


def record_conversion(quote: Quote, contract_id: str) -> bool:
    """The gateway made a contract from this quote; False when another contract was recorded first."""
    if quote.contract_id not in (None, contract_id):
        return False
    # Recorded whatever the stored state: the contract exists, so the quote must say so.
    quote.status, quote.contract_id = "converted", contract_id
    quote.converted_at = quote.converted_at or utcnow()
    return True


def sent_payload(quote: Quote, company: dict | None, owner: dict) -> dict:
    """Everything documents and notifications need to render and email the quote without calling back."""
    return {
        "quote_id": quote.id, "number": quote.number, "customer_id": quote.customer_id,
        "customer": quote.customer_snapshot, "language": language_of(quote),
        "company": company, "company_language": (company or {}).get("language"),
        "owner_id": quote.owner_id, "owner": owner,
        "lines": [line_payload(line) for line in quote.lines],
        "subtotal": money_str(quote.subtotal), "tax_total": money_str(quote.tax_total),
        "total": money_str(quote.total), "currency": quote.currency, "total_in_words": words(quote),
        "valid_until": quote.valid_until.isoformat(),
        "delivery_date": quote.delivery_date.isoformat() if quote.delivery_date else None,
        "payment_terms": quote.payment_terms, "notes": quote.notes,
        "created_at": iso(quote.created_at), "sent_at": iso(quote.sent_at),
    }


def line_payload(line: QuoteLine) -> dict:
    return {"line_no": line.line_no, "product_code": line.product_code, "name": line.name, "unit": line.unit,
            "quantity": qty_str(line.quantity), "unit_price": price_str(line.unit_price),
            "discount": qty_str(line.discount), "tax_rate": qty_str(line.tax_rate),
            "amount": money_str(line.amount), "tax_amount": money_str(line.tax_amount)}
