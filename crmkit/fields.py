"""marshmallow fields for the public shapes: money and quantities as decimal strings, never floats."""
from __future__ import annotations

import re
from decimal import Decimal

from marshmallow import ValidationError, fields, validate

from crmkit.money import PLAIN_NUMBER, PRICE_PLACES, price_str

MAX_AMOUNT = Decimal("1000000000000")  # a trillion: beyond any contract, below Numeric(18,2)'s limit
MAX_QUANTITY = Decimal("1000000000")


class _Decimal(fields.Decimal):
    """A decimal from a string or an integer; floats and booleans are refused (no binary rounding)."""

    def __init__(self, *, places: int, minimum=None, maximum=None, exclusive_minimum=False, normalize=False,
                 **kwargs):
        self.places_allowed = places
        self.normalize_output = normalize
        self.minimum, self.maximum, self.exclusive_minimum = minimum, maximum, exclusive_minimum
        super().__init__(as_string=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or isinstance(value, float) or not isinstance(value, (str, int, Decimal)):
            raise ValidationError("Must be a decimal string such as \"12.50\" or an integer.")
        text = str(value).strip()
        if not PLAIN_NUMBER.fullmatch(text):
            raise ValidationError("Not a valid number.")
        number = Decimal(text)
        if number == 0:
            number = abs(number)  # "-0" is zero, not a negative amount to print as "-0.00"
        if -number.as_tuple().exponent > self.places_allowed:
            raise ValidationError(f"At most {self.places_allowed} decimal places.")
        if self.minimum is not None and (number <= self.minimum if self.exclusive_minimum else number < self.minimum):
            raise ValidationError(f"Must be greater than {'' if self.exclusive_minimum else 'or equal to '}"
                                  f"{self.minimum}.")
        if self.maximum is not None and number > self.maximum:
            raise ValidationError(f"Must be at most {self.maximum}.")
        return number

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if self.normalize_output:
            return qty_str(value)
        return format(Decimal(value).quantize(Decimal(1).scaleb(-self.places_allowed)), "f")


def Money(*, minimum=Decimal(0), **kwargs):
    return _Decimal(places=2, minimum=minimum, maximum=MAX_AMOUNT, **kwargs)


class _Price(_Decimal):
    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else price_str(value)


def Price(**kwargs):
    """A unit price: up to PRICE_PLACES decimals in and out, two at least out ("12.50", "0.0125")."""
    return _Price(places=PRICE_PLACES, minimum=Decimal(0), maximum=MAX_AMOUNT, **kwargs)


def Quantity(*, positive=True, **kwargs):
    return _Decimal(places=3, minimum=Decimal(0), exclusive_minimum=positive, maximum=MAX_QUANTITY, normalize=True,
                    **kwargs)


def Signed(places=3, **kwargs):
    """A signed quantity (stock adjustments)."""
    return _Decimal(places=places, minimum=-MAX_QUANTITY, maximum=MAX_QUANTITY, normalize=True, **kwargs)


def Rate(**kwargs):
    """A fraction from 0 to 1 (tax rate, discount)."""
    return _Decimal(places=4, minimum=Decimal(0), maximum=Decimal(1), normalize=True, **kwargs)


def Text(max_length: int = 200, required: bool = False, min_length: int = 0, **kwargs):
    return fields.String(required=required, validate=validate.Length(min=min_length, max=max_length), **kwargs)


def check_range(data: dict, start: str, end: str) -> None:
    """A from/to pair of a list's filter: the end may not come before the start (named in the error)."""
    if data.get(start) is not None and data.get(end) is not None and data[end] < data[start]:
        raise ValidationError(f"Must not be before {start} ({data[start].isoformat()}).", end)


def qty_str(value) -> str:
    """A quantity as the shortest decimal string ("10", "2.5")."""
    value = Decimal(value)
    return format(value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize(), "f")


class Date(fields.Date):
    """A calendar date written YYYY-MM-DD, as SPEC says; Python's parser alone also takes "20261231" and
    "2026-W01-1"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
            raise ValidationError("Not a valid date; write it YYYY-MM-DD.")
        return super()._deserialize(value, attr, data, **kwargs)


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class UtcDateTime(fields.DateTime):
    """ISO 8601 in UTC with a Z, also for naive values SQLite hands back."""

    def _serialize(self, value, attr, obj, **kwargs):
        from crmkit.timeutil import iso
        return iso(value)
