"""Decimal fields take numbers as people write them, and nothing else a Decimal() would take."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from marshmallow import ValidationError

from crmkit.fields import Date, Money, Quantity


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


@pytest.mark.parametrize("text", ["20261231", "2026-W01-1", "2026-12-3", "2026-1-05", "2026-12-31T00:00",
                                  "２０２６-12-31", "2026-02-30", 20261231, ""])
def test_a_date_is_written_yyyy_mm_dd(text):
    with pytest.raises(ValidationError):
        Date().deserialize(text)


def test_a_date_is_read():
    assert Date().deserialize("2026-12-31") == date(2026, 12, 31)
