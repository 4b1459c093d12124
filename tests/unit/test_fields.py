"""Decimal fields take numbers as people write them, and nothing else a Decimal() would take."""
from __future__ import annotations

from decimal import Decimal

import pytest
from marshmallow import ValidationError

from crmkit.fields import Money, Quantity


@pytest.mark.parametrize("text", ["1_000", "1E+3", "1e3", "١٢", "１２", "0x10", "12.5.1", "", " ", "+", "."])
def test_what_only_looks_like_a_number_is_refused(text):
    for field in (Money(), Quantity()):
        with pytest.raises(ValidationError):
            field.deserialize(text)


@pytest.mark.parametrize("text, value", [("12.50", "12.50"), (" 3 ", "3"), ("12.", "12"), (".5", "0.5"),
                                         ("+1", "1"), (7, "7")])
def test_plain_decimals_are_read_exactly(text, value):
    assert Money().deserialize(text) == Decimal(value)


def test_minus_zero_is_zero():
    money = Money()
    assert money.serialize("p", {"p": money.deserialize("-0")}) == "0.00"
    assert money.serialize("p", {"p": money.deserialize("-0.00")}) == "0.00"
