"""Inventory payloads in and out."""
from __future__ import annotations

from decimal import Decimal

from marshmallow import Schema, fields, validate

from crmkit.fields import Price, Quantity, Rate, Signed, Text

CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$", error="Letters, digits, '.', '_' or '-', at most 64.")


# The department asked for more of a product when a contract is short of it (under notify_production).
REPLENISHED_BY = ("production", "procurement")


class ProductIn(Schema):
    code = fields.String(required=True, validate=CODE)
    name = Text(200, required=True, min_length=1)
    unit = Text(32, required=True, min_length=1)
    unit_price = Price(required=True)
    currency = fields.String(load_default="CNY", validate=validate.OneOf(["CNY", "USD", "EUR", "HKD", "JPY"]))
    tax_rate = Rate(load_default=Decimal("0.13"))
    replenished_by = fields.String(load_default="production", validate=validate.OneOf(REPLENISHED_BY))
    # No on_hand: stock only arrives through POST /products/{code}/stock, which writes the stock ledger.


class ProductPatch(Schema):
    """A catalogue change (price, name, ...): new contracts and quotes take it; those made before keep theirs."""
    name = Text(200, min_length=1)
    unit = Text(32, min_length=1)
    unit_price = Price()
    currency = fields.String(validate=validate.OneOf(["CNY", "USD", "EUR", "HKD", "JPY"]))
    tax_rate = Rate()
    replenished_by = fields.String(validate=validate.OneOf(REPLENISHED_BY))


class ProductOut(Schema):
    code = fields.String()
    name = fields.String()
    unit = fields.String()
    unit_price = Price()
    currency = fields.String()
    tax_rate = Rate()
    replenished_by = fields.String()
    on_hand = Quantity(positive=False)
    reserved = Quantity(positive=False)
    available = Quantity(positive=False)


class StockIn(Schema):
    delta = Signed(required=True)
    reason = Text(500, required=True, min_length=1)


class ProductQuery(Schema):
    codes = fields.String(validate=validate.Length(max=5000))
    q = fields.String(validate=validate.Length(max=200))
    limit = fields.Integer()
    offset = fields.Integer()
