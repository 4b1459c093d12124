"""Quote payloads in and out (SPEC §3 shape, with the same line and warning shapes as contracts)."""
from __future__ import annotations

from decimal import Decimal

from marshmallow import Schema, fields, validate

from crmkit.fields import Date, Money, Price, Quantity, Rate, Text, UtcDateTime
from services.quotes.rules import STATUSES

MAX_LINES = 500
CURRENCIES = ["CNY", "USD", "EUR", "HKD", "JPY"]
# Ids travel into other services' URL paths: nothing that could add a path segment or a query.
ID = validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$", error="Not a valid id.")


class LineIn(Schema):
    product_code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    quantity = Quantity(required=True)
    unit_price = Price(load_default=None, allow_none=True)
    discount = Rate(load_default=Decimal(0))


class QuoteIn(Schema):
    customer_id = fields.String(required=True, validate=ID)
    lines = fields.List(fields.Nested(LineIn), required=True, validate=validate.Length(min=1, max=MAX_LINES))
    valid_until = Date(load_default=None, allow_none=True)
    currency = fields.String(load_default="CNY", validate=validate.OneOf(CURRENCIES))
    payment_terms = Text(1000, load_default=None, allow_none=True)
    delivery_date = Date(load_default=None, allow_none=True)
    notes = Text(4000, load_default=None, allow_none=True)


class QuotePatch(Schema):
    customer_id = fields.String(validate=ID)
    lines = fields.List(fields.Nested(LineIn), validate=validate.Length(min=1, max=MAX_LINES))
    valid_until = Date()
    currency = fields.String(validate=validate.OneOf(CURRENCIES))
    payment_terms = Text(1000, allow_none=True)
    delivery_date = Date(allow_none=True)
    notes = Text(4000, allow_none=True)


class RejectIn(Schema):
    reason = Text(1000, load_default=None, allow_none=True)


class LineOut(Schema):
    product_code = fields.String()
    name = fields.String()
    unit = fields.String()
    quantity = Quantity(positive=False)
    unit_price = Price()
    discount = Rate()
    tax_rate = Rate()
    amount = Money()
    tax_amount = Money()
    available = Quantity(positive=False, allow_none=True)
    shortage = Quantity(positive=False, allow_none=True)


class WarningOut(Schema):
    code = fields.String()
    product_code = fields.String(allow_none=True)
    requested = fields.String(allow_none=True)
    available = fields.String(allow_none=True)
    message = fields.String(allow_none=True)


class CustomerSnapshot(Schema):
    name = fields.String()
    email = fields.String(allow_none=True)
    language = fields.String()
    address = fields.String(allow_none=True)
    contact_person = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)


class QuoteOut(Schema):
    id = fields.String()
    number = fields.String()
    customer_id = fields.String()
    customer = fields.Nested(CustomerSnapshot)
    status = fields.String()
    valid_until = Date()
    currency = fields.String()
    lines = fields.List(fields.Nested(LineOut))
    subtotal = Money()
    tax_total = Money()
    total = Money()
    total_in_words = fields.String()
    payment_terms = fields.String(allow_none=True)
    delivery_date = Date(allow_none=True)
    notes = fields.String(allow_none=True)
    contract_id = fields.String(allow_none=True)
    document_id = fields.String(allow_none=True)
    warnings = fields.List(fields.Nested(WarningOut))
    owner_id = fields.String()
    created_by = fields.String()
    created_at = UtcDateTime()
    sent_at = UtcDateTime(allow_none=True)
    accepted_at = UtcDateTime(allow_none=True)
    rejected_at = UtcDateTime(allow_none=True)
    converted_at = UtcDateTime(allow_none=True)


class QuoteQuery(Schema):
    customer_id = fields.String(validate=validate.Length(max=64))
    status = fields.String(validate=validate.OneOf(STATUSES))
    limit = fields.Integer()
    offset = fields.Integer()
