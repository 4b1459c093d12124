"""Unit tests for the quote rules: the state machine, lazy expiry, pricing by product code, the stock check."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from crmkit.errors import Conflict, ValidationFailed
from services.quotes import rules

TODAY = date(2026, 3, 10)
LATER = date(2026, 4, 9)
PRODUCTS = {
    "VALVE": {"code": "VALVE", "name": "闸阀", "unit": "只", "unit_price": "480.00", "tax_rate": "0.13",
              "currency": "CNY", "available": "10"},
    "USD-PART": {"code": "USD-PART", "name": "Imported part", "unit": "pc", "unit_price": "10.00",
                 "tax_rate": "0", "currency": "USD", "available": "0"},
}


@pytest.mark.parametrize("current, target", [
    ("draft", "sent"), ("sent", "sent"), ("sent", "accepted"), ("sent", "rejected"), ("accepted", "converted"),
])
def test_legal_moves(current, target):
    assert rules.can_move(current, LATER, target, TODAY)
    rules.require_move(current, LATER, target, TODAY)


@pytest.mark.parametrize("current, target", [
    ("draft", "accepted"), ("draft", "rejected"), ("draft", "converted"), ("sent", "converted"), ("accepted", "sent"),
    ("accepted", "accepted"), ("accepted", "rejected"), ("converted", "sent"), ("converted", "converted"),
    ("rejected", "accepted"), ("rejected", "sent"),
])
def test_illegal_moves_are_conflicts(current, target):
    assert not rules.can_move(current, LATER, target, TODAY)
    with pytest.raises(Conflict) as error:
        rules.require_move(current, LATER, target, TODAY)
    assert error.value.status == 409 and error.value.fields == {"status": [f"Is {current}."]}
    assert error.value.message.startswith("An accepted quote" if current == "accepted" else f"A {current} quote")


def test_a_sent_quote_is_sent_again_only_a_minute_after_the_last_send():
    sent = datetime(2026, 3, 10, 8, 0, 0, tzinfo=timezone.utc)
    assert rules.resend_wait(None, sent) == 0
    assert rules.resend_wait(sent, sent) == 60
    assert rules.resend_wait(sent, sent + timedelta(seconds=59.2)) == 1  # rounded up: Retry-After never says 0
    assert rules.resend_wait(sent, sent + timedelta(seconds=60)) == 0
    assert rules.resend_wait(sent, sent + timedelta(days=3)) == 0


def test_a_quote_is_valid_through_its_last_day_and_expired_the_day_after():
    assert rules.effective_status("sent", TODAY, TODAY) == "sent"
    assert rules.effective_status("sent", TODAY, date(2026, 3, 11)) == "expired"
    assert rules.effective_status("draft", date(2026, 3, 9), TODAY) == "expired"


@pytest.mark.parametrize("status", ["accepted", "converted", "rejected"])
def test_only_waiting_offers_expire(status):
    assert rules.effective_status(status, date(2020, 1, 1), TODAY) == status


@pytest.mark.parametrize("target", ["sent", "accepted", "converted"])
def test_an_expired_quote_cannot_move_and_says_why(target):
    stored = "draft" if target == "sent" else "sent"
    with pytest.raises(Conflict) as error:
        rules.require_move(stored, date(2026, 3, 9), target, TODAY)
    assert "expired" in error.value.message and error.value.fields == {"status": ["Is expired."]}


def test_only_drafts_change_even_lapsed_ones():
    rules.require_editable("draft")
    for status in ("sent", "accepted", "converted", "rejected"):
        with pytest.raises(Conflict):
            rules.require_editable(status)


def test_valid_until_defaults_to_thirty_days_and_may_not_be_past():
    assert rules.default_valid_until(TODAY) == LATER
    rules.require_valid_until(TODAY, TODAY)
    with pytest.raises(ValidationFailed) as error:
        rules.require_valid_until(date(2026, 3, 9), TODAY)
    assert "valid_until" in error.value.fields


def test_lines_take_the_catalogue_unless_overridden():
    lines = rules.price_lines([
        {"product_code": "VALVE", "quantity": D("5"), "unit_price": None, "discount": D("0.05")},
        {"product_code": "VALVE", "quantity": D("3"), "unit_price": D("450.00"), "discount": D("0")},
    ], PRODUCTS, "CNY")
    assert [(l["line_no"], l["name"], l["unit"], l["unit_price"], l["tax_rate"]) for l in lines] == [
        (1, "闸阀", "只", D("480.00"), D("0.13")), (2, "闸阀", "只", D("450.00"), D("0.13"))]
    assert [(l["amount"], l["tax_amount"]) for l in lines] == [(D("2280.00"), D("296.40")),
                                                              (D("1350.00"), D("175.50"))]
    assert rules.quote_totals(lines) == (D("3630.00"), D("471.90"), D("4101.90"))


def test_half_cents_round_up():
    [line] = rules.price_lines([{"product_code": "VALVE", "quantity": D("0.001"), "unit_price": D("5.00"),
                                 "discount": D("0")}], PRODUCTS, "CNY")
    assert (line["amount"], line["tax_amount"]) == (D("0.01"), D("0.00"))


def test_unknown_codes_and_foreign_prices_name_their_line():
    with pytest.raises(ValidationFailed) as error:
        rules.price_lines([{"product_code": "VALVE", "quantity": D(1)},
                           {"product_code": "NOPE", "quantity": D(1)},
                           {"product_code": "USD-PART", "quantity": D(1)}], PRODUCTS, "CNY")
    assert set(error.value.fields) == {"lines.1.product_code", "lines.2.unit_price"}
    [line] = rules.price_lines([{"product_code": "USD-PART", "quantity": D(2), "unit_price": D("70.00")}],
                               PRODUCTS, "CNY")
    assert line["amount"] == D("140.00")


def test_an_amount_beyond_what_can_be_stored_is_a_validation_error():
    with pytest.raises(ValidationFailed) as error:
        rules.price_lines([{"product_code": "VALVE", "quantity": D("1000000000"), "unit_price": D("999999999999")}],
                          PRODUCTS, "CNY")
    assert "lines.0.quantity" in error.value.fields


def test_stock_check_shows_shortage_and_warns_only_when_asked():
    lines = [("VALVE", D("12")), ("VALVE", D("3")), ("GONE", D("1"))]
    per_line, warnings = rules.stock_check(lines, {"VALVE": D("10")}, warn=True)
    assert per_line == [(D("10"), D("2")), (D("10"), D("0")), (None, None)]
    assert warnings == [{"code": "insufficient_stock", "product_code": "VALVE", "requested": "12",
                         "available": "10"}]
    assert rules.stock_check(lines, {"VALVE": D("10")}, warn=False)[1] == []
    per_line, warnings = rules.stock_check(lines, None, warn=True)
    assert per_line == [(None, None)] * 3 and warnings[0]["code"] == "stock_unknown"
