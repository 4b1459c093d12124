"""Quote rules free of any framework: the state machine, lazy expiry, line pricing and the stock check."""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal

from crmkit.errors import Conflict, ValidationFailed, a_or_an
from crmkit.fields import qty_str
from crmkit.money import price_line, size_errors, totals

ZERO = Decimal(0)
DEFAULT_VALIDITY = timedelta(days=30)

TRANSITIONS = {
    "draft": {"sent"},
    # Sent again: to the customer's address of that moment, with a PDF printed anew (a bounced or lost email).
    "sent": {"sent", "accepted", "rejected"},
    "accepted": {"converted"},
    "converted": set(),
    "rejected": set(),
    "expired": set(),
}
STATUSES = tuple(TRANSITIONS)
# Only an offer still waiting for the customer lapses; an accepted quote is a deal whatever the date.
EXPIRING = frozenset({"draft", "sent"})
# Quotes whose lines may still become a contract: these carry stock warnings.
OPEN = frozenset({"draft", "sent", "accepted"})

_VERBS = {"sent": "sent", "accepted": "accepted", "rejected": "rejected", "converted": "converted into a contract"}


def effective_status(status: str, valid_until: date | None, today: date) -> str:
    """The status a reader sees: a draft or sent quote reads as expired after its valid_until day."""
    if status in EXPIRING and valid_until is not None and today > valid_until:
        return "expired"
    return status


def can_move(status: str, valid_until: date | None, target: str, today: date) -> bool:
    return target in TRANSITIONS.get(effective_status(status, valid_until, today), set())


def require_move(status: str, valid_until: date | None, target: str, today: date) -> None:
    """409 unless the quote, as it reads today, may move to `target`."""
    current = effective_status(status, valid_until, today)
    if target in TRANSITIONS.get(current, set()):
        return
    verb = _VERBS.get(target, target)
    if current == "expired":
        message = f"This quote expired after {valid_until.isoformat()}; it can no longer be {verb}."
    else:
        message = f"{a_or_an(current)} quote cannot be {verb}."
    raise Conflict(message, {"status": [f"Is {current}."]})


# A second send this soon after the last is a double click, not a request to mail the customer twice.
RESEND_AFTER = timedelta(seconds=60)


def resend_wait(last_sent_at: datetime | None, now: datetime) -> int:
    """Seconds until a sent quote may be sent again (0: now)."""
    if last_sent_at is None:
        return 0
    left = (last_sent_at + RESEND_AFTER - now).total_seconds()
    return max(0, math.ceil(left))


def require_editable(status: str) -> None:
    """Only drafts change; a lapsed draft may too, so that a new valid_until revives it."""
    if status != "draft":
        raise Conflict(f"Only a draft quote can be changed; this one is {status}.", {"status": [f"Is {status}."]})


def default_valid_until(today: date) -> date:
    return today + DEFAULT_VALIDITY


def require_valid_until(valid_until: date, today: date) -> None:
    if valid_until < today:
        raise ValidationFailed("A quote cannot be valid only in the past.",
                               {"valid_until": [f"Must be {today.isoformat()} or later."]})


def price_lines(lines_in: list[dict], products: dict[str, dict], currency: str) -> list[dict]:
    """Lines typed by product code, priced: catalogue name, unit, price and tax unless the line overrides them."""
    errors = {}
    for i, line in enumerate(lines_in):
        product = products.get(line["product_code"])
        if product is None:
            errors[f"lines.{i}.product_code"] = [f"Unknown product code {line['product_code']}."]
        elif line.get("unit_price") is None and (product.get("currency") or currency) != currency:
            errors[f"lines.{i}.unit_price"] = [f"The catalogue price is in {product['currency']}; "
                                               f"give a price in {currency}."]
    if errors:
        raise ValidationFailed("Some lines cannot be priced from the catalogue.", errors)
    priced = []
    for i, line in enumerate(lines_in):
        product = products[line["product_code"]]
        unit_price = line.get("unit_price")
        unit_price = Decimal(product["unit_price"]) if unit_price is None else unit_price
        discount = line.get("discount") or ZERO
        tax_rate = Decimal(product["tax_rate"])
        amount, tax = price_line(line["quantity"], unit_price, discount, tax_rate)
        priced.append({"line_no": i + 1, "product_code": product["code"], "name": product["name"],
                       "unit": product["unit"], "quantity": line["quantity"], "unit_price": unit_price,
                       "discount": discount, "tax_rate": tax_rate, "amount": amount, "tax_amount": tax})
    errors = size_errors([(line["amount"], line["tax_amount"]) for line in priced])
    if errors:
        raise ValidationFailed("Some lines are too large.", errors)
    return priced


def quote_totals(lines: list[dict]) -> tuple[Decimal, Decimal, Decimal]:
    """(subtotal, tax_total, total) of priced lines."""
    return totals((line["amount"], line["tax_amount"]) for line in lines)


def stock_check(lines: list[tuple[str, Decimal]], available: dict[str, Decimal] | None,
                warn: bool) -> tuple[list[tuple[Decimal | None, Decimal | None]], list[dict]]:
    """Per (code, quantity) line its (available, shortage), and a warning per short line when `warn`."""
    if available is None:
        return [(None, None)] * len(lines), ([{"code": "stock_unknown",
                                               "message": "Stock could not be checked right now."}] if warn else [])
    per_line, warnings = [], []
    for code, quantity in lines:
        free = available.get(code)
        shortage = None if free is None else max(ZERO, quantity - free)
        per_line.append((free, shortage))
        if warn and shortage:
            warnings.append({"code": "insufficient_stock", "product_code": code, "requested": qty_str(quantity),
                             "available": qty_str(free)})
    return per_line, warnings
