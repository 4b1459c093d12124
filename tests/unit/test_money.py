"""Unit tests for crmkit.money: pure Decimal logic, no database or app needed."""
from __future__ import annotations

from decimal import Decimal as D, localcontext

import pytest

from crmkit.money import (CENT, amount_in_words, money, money_str, price_line, split_installments,
                          to_decimal, totals)


# ---------------------------------------------------------------------------- to_decimal

@pytest.mark.parametrize("value, expected", [
    ("1234.50", D("1234.50")),
    ("  12 ", D("12")),
    ("-3.5", D("-3.5")),
    ("+7", D("7")),
    (".5", D("0.5")),
    ("0", D("0")),
    (42, D(42)),
    (0, D(0)),
    (D("0.335"), D("0.335")),
    ("999999999999999999", D("999999999999999999")),    # 18 digits
    ("9999999999999999.99", D("9999999999999999.99")),  # 16 + 2 digits
    ("0.000000000000000001", D("1E-18")),               # 18 fractional digits
])
def test_to_decimal_accepts(value, expected):
    result = to_decimal(value, "price")
    assert isinstance(result, D)
    assert result == expected


@pytest.mark.parametrize("value", [
    1.5, 0.1, float("nan"), True, False, None, [1], "abc", "", "  ", "1,000", "1_000", "1e5",
    "12.5.3", "--1", "NaN", "nan", "Infinity", "-Infinity", "inf", "sNaN",
    D("NaN"), D("sNaN"), D("Infinity"), D("-Infinity"),
    "1234567890123456789",        # 19 digits
    "12345678901234567.89",       # 17 + 2 digits
    10 ** 18,                     # 19 digits as an int
    D("1E+18"),
    "0.0000000000000000001",      # 19 fractional digits
])
def test_to_decimal_rejects(value):
    with pytest.raises(ValueError) as info:
        to_decimal(value, "unit_price")
    assert "unit_price" in str(info.value)


def test_to_decimal_float_message_is_human():
    with pytest.raises(ValueError, match="not a floating-point"):
        to_decimal(0.1, "discount")


# ---------------------------------------------------------------------------- money / money_str

@pytest.mark.parametrize("value, expected", [
    (D("1.005"), D("1.01")),
    (D("1.004999"), D("1.00")),
    (D("0.025"), D("0.03")),
    (D("0.015"), D("0.02")),
    (D("2.675"), D("2.68")),
    (D("-0.025"), D("-0.03")),   # half-up means away from zero on ties
    (D("-0.004"), D("0.00")),    # no negative zero
    (D("7"), D("7.00")),
    (5, D("5.00")),
    ("12.345", D("12.35")),
])
def test_money_rounds_half_up(value, expected):
    result = money(value)
    assert result == expected
    assert result.as_tuple().exponent == -2
    assert str(result) == str(expected)


def test_money_ignores_ambient_context():
    with localcontext() as ctx:
        ctx.prec = 3
        assert money(D("12345.675")) == D("12345.68")


@pytest.mark.parametrize("value, expected", [
    (D("1234.5"), "1234.50"),
    (D("0"), "0.00"),
    (D("1E+3"), "1000.00"),
    (D("-0.001"), "0.00"),
    (D("-12.345"), "-12.35"),
    (D("9999999999999999.99"), "9999999999999999.99"),
])
def test_money_str(value, expected):
    assert money_str(value) == expected


def test_cent_constant():
    assert CENT == D("0.01")


# ---------------------------------------------------------------------------- price_line / totals

@pytest.mark.parametrize("quantity, unit_price, discount, tax_rate, amount, tax", [
    ("3", "0.335", "0", "0", "1.01", "0.00"),         # 1.005 -> 1.01
    ("1", "0.025", "0", "0", "0.03", "0.00"),         # 2.5 cents -> 3 cents
    ("1", "0.015", "0", "0", "0.02", "0.00"),         # 1.5 cents -> 2 cents
    ("1", "0.05", "0.5", "0", "0.03", "0.00"),        # 0.025 after discount -> 0.03
    ("1", "0.25", "0", "0.1", "0.25", "0.03"),        # tax 0.025 -> 0.03
    ("1", "0.05", "0", "0.5", "0.05", "0.03"),        # tax 0.025 -> 0.03
    ("10", "99.99", "0", "0.13", "999.90", "129.99"),  # tax 129.987
    ("2", "50", "1", "0.13", "0.00", "0.00"),         # fully discounted
    ("2", "50", "0", "0", "100.00", "0.00"),
    ("0", "50", "0", "0.13", "0.00", "0.00"),
    ("1.5", "3.33", "0.1", "0.06", "4.50", "0.27"),   # 4.4955 -> 4.50 (not 4.49); 0.27
    # tax is charged on the rounded amount: 1.005 -> 1.01, 1.01 * 0.5 = 0.505 -> 0.51
    ("1", "1.005", "0", "0.5", "1.01", "0.51"),
])
def test_price_line(quantity, unit_price, discount, tax_rate, amount, tax):
    got = price_line(D(quantity), D(unit_price), D(discount), D(tax_rate))
    assert got == (D(amount), D(tax))
    assert all(x.as_tuple().exponent == -2 for x in got)


def test_price_line_is_exact_beyond_default_precision():
    # 999999999999999999 x 1.00000000000000001 x 0.005 = 5000000000000000.044999...995 (39
    # digits); rounding it to the default 28 digits first would give .045 and then .05.
    amount, _ = price_line(D("999999999999999999"), D("1.00000000000000001"), D("0.995"), D("0"))
    assert amount == D("5000000000000000.04")


@pytest.mark.parametrize("quantity, unit_price, discount, tax_rate, message", [
    ("-1", "10", "0", "0", "quantity"),
    ("1", "-10", "0", "0", "unit_price"),
    ("1", "10", "-0.1", "0", "discount"),
    ("1", "10", "1.01", "0", "discount"),
    ("1", "10", "0", "-0.13", "tax_rate"),
])
def test_price_line_rejects(quantity, unit_price, discount, tax_rate, message):
    with pytest.raises(ValueError, match=message):
        price_line(D(quantity), D(unit_price), D(discount), D(tax_rate))


def test_price_line_rejects_float():
    with pytest.raises(ValueError, match="unit_price"):
        price_line(D("1"), 0.1, D("0"), D("0"))


def test_totals():
    lines = [price_line(D("3"), D("0.335"), D("0"), D("0.13")),   # 1.01, 0.13
             price_line(D("10"), D("99.99"), D("0"), D("0.13")),  # 999.90, 129.99
             price_line(D("1"), D("0.25"), D("0"), D("0.1"))]     # 0.25, 0.03
    assert totals(lines) == (D("1001.16"), D("130.15"), D("1131.31"))


def test_totals_accepts_generator_and_empty():
    assert totals(iter([(D("1.10"), D("0.20"))])) == (D("1.10"), D("0.20"), D("1.30"))
    subtotal, tax_total, total = totals([])
    assert (str(subtotal), str(tax_total), str(total)) == ("0.00", "0.00", "0.00")


def test_totals_total_is_subtotal_plus_tax():
    subtotal, tax_total, total = totals([(D("0.01"), D("0.00"))] * 300 + [(D("5.55"), D("0.72"))])
    assert subtotal == D("8.55") and tax_total == D("0.72") and total == subtotal + tax_total


# ---------------------------------------------------------------------------- split_installments

def P(x):
    return ("percent", D(x))


def A(x):
    return ("amount", D(x))


@pytest.mark.parametrize("total, parts, expected", [
    ("100.01", [P(30), P(70)], ["30.00", "70.01"]),
    ("100.00", [P(30), P(70)], ["30.00", "70.00"]),
    ("100", [P("33.33"), P("33.33"), P("33.34")], ["33.33", "33.33", "33.34"]),
    ("100.00", [P(50), P(50)], ["50.00", "50.00"]),
    ("0.03", [P(50), P(50)], ["0.02", "0.01"]),           # 0.015 -> 0.02, remainder to last
    ("0.05", [P(50), P(50)], ["0.03", "0.02"]),
    ("10.00", [P(100)], ["10.00"]),
    ("1000.01", [P(10), P(20), P(30), P(40)], ["100.00", "200.00", "300.00", "400.01"]),
    ("99.99", [P("12.5"), P("12.5"), P(75)], ["12.50", "12.50", "74.99"]),
    ("100.00", [A("20.00"), A("80.00")], ["20.00", "80.00"]),
    ("1000.00", [A("200"), P(80)], ["200.00", "800.00"]),
    ("1000.00", [P(80), A("200")], ["800.00", "200.00"]),
    # mixed: 25% of 200.02 is 50.005 twice; the rounding cent comes off the last percentage,
    # the fixed amount stays as given
    ("200.02", [P(25), P(25), A("100.01")], ["50.01", "50.00", "100.01"]),
])
def test_split_installments(total, parts, expected):
    result = split_installments(D(total), parts)
    assert result == [D(x) for x in expected]
    assert sum(result) == D(total)
    assert all(x.as_tuple().exponent == -2 for x in result)


@pytest.mark.parametrize("total, parts, message", [
    ("100", [P("33.33"), P("33.33"), P("33.33")], "99.99%"),     # 3 x 33.33% is not 100%
    ("100", [P(30), P(60)], "not 100%"),
    ("100", [P(60), P(60)], "not 100%"),
    ("100", [A("60"), A("50")], "exceed"),
    ("100", [A("150"), P(10)], "exceed"),
    ("100", [A("60"), A("30")], "not the total"),               # all-amount plan short
    ("100", [A("40"), P(50)], "not the total"),                 # mixed plan short
    ("100", [A("40"), P(70)], "not the total"),                 # mixed plan over
    ("100", [], "at least one"),
    ("100", [P(0), P(100)], "greater than zero"),
    ("100", [A("0"), A("100")], "greater than zero"),
    ("100", [A("-10"), A("110")], "greater than zero"),
    ("100", [P(150), P(-50)], "100%"),
    ("0.01", [P(50), P(50)], "greater than zero"),             # 0.01 then 0.00
    ("0", [P(100)], "total"),
    ("-10", [P(100)], "total"),
    ("100.005", [P(100)], "cents"),
    ("100", [A("99.995"), A("0.005")], "cents"),
    ("100", [("share", D(100))], "unknown kind"),
    ("100", [P(100), "oops"], "pair"),
    ("100", [("percent", 100.0)], "floating-point"),
])
def test_split_installments_rejects(total, parts, message):
    with pytest.raises(ValueError, match=message):
        split_installments(D(total), parts)


# ---------------------------------------------------------------------------- amount_in_words: zh-CN

@pytest.mark.parametrize("amount, expected", [
    ("1234.50", "人民币壹仟贰佰叁拾肆元伍角整"),
    ("1001.01", "人民币壹仟零壹元零壹分"),
    ("0.05", "人民币伍分"),
    ("10.00", "人民币壹拾元整"),
    ("100000", "人民币壹拾万元整"),
    ("100001", "人民币壹拾万零壹元整"),
    ("12345678.90", "人民币壹仟贰佰叁拾肆万伍仟陆佰柒拾捌元玖角整"),
    ("10020.05", "人民币壹万零贰拾元零伍分"),
    ("100000000", "人民币壹亿元整"),
    ("1000000000.10", "人民币壹拾亿元壹角整"),
    ("0", "人民币零元整"),
    ("1010", "人民币壹仟零壹拾元整"),
    ("100010000", "人民币壹亿零壹万元整"),
    ("10000", "人民币壹万元整"),
    ("1000100", "人民币壹佰万零壹佰元整"),
    # further cases
    ("1", "人民币壹元整"),
    ("15", "人民币壹拾伍元整"),
    ("110", "人民币壹佰壹拾元整"),
    ("0.10", "人民币壹角整"),
    ("0.15", "人民币壹角伍分"),
    ("0.01", "人民币壹分"),
    ("1.23", "人民币壹元贰角叁分"),
    ("10.05", "人民币壹拾元零伍分"),
    ("10.50", "人民币壹拾元伍角整"),
    ("1000.00", "人民币壹仟元整"),
    ("1001000", "人民币壹佰万壹仟元整"),       # trailing zeros of the 万 section: no 零
    ("1010101", "人民币壹佰零壹万零壹佰零壹元整"),
    ("100000001", "人民币壹亿零壹元整"),       # zeros across both section boundaries: one 零
    ("110000000", "人民币壹亿壹仟万元整"),
    ("101000000", "人民币壹亿零壹佰万元整"),
    ("2000000005", "人民币贰拾亿零伍元整"),
    ("1000000000000", "人民币壹万亿元整"),
    ("1000100000000", "人民币壹万零壹亿元整"),
    ("1000000000001", "人民币壹万亿零壹元整"),
    ("9999999999999999.99",
     "人民币玖仟玖佰玖拾玖万玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
    ("1234.505", "人民币壹仟贰佰叁拾肆元伍角壹分"),  # rounded half-up to cents first
    ("0.004", "人民币零元整"),
])
def test_amount_in_words_zh(amount, expected):
    assert amount_in_words(D(amount), "zh-CN") == expected


def test_amount_in_words_zh_no_bare_shi():
    text = amount_in_words(D("10"), "zh-CN")
    assert text.startswith("人民币壹拾")


@pytest.mark.parametrize("amount, currency, expected", [
    ("-1234.50", "CNY", "人民币负壹仟贰佰叁拾肆元伍角整"),
    ("-0.05", "CNY", "人民币负伍分"),
    ("-0.001", "CNY", "人民币零元整"),     # rounds to zero: no 负
    ("100", "USD", "美元壹佰元整"),
    ("100.5", "usd", "美元壹佰元伍角整"),
    ("-3", "EUR", "欧元负叁元整"),
    ("3.96", "CHF", "CHF叁元玖角陆分"),  # no Chinese name here: its code
])
def test_amount_in_words_zh_sign_and_currency(amount, currency, expected):
    assert amount_in_words(D(amount), "zh-CN", currency) == expected


def test_amount_in_words_zh_language_spelling_variants():
    assert amount_in_words(D("10"), "zh_cn") == "人民币壹拾元整"


# ---------------------------------------------------------------------------- amount_in_words: en

@pytest.mark.parametrize("amount, expected", [
    ("1234.50", "One Thousand Two Hundred Thirty-Four Yuan and Fifty Cents Only"),
    ("10.00", "Ten Yuan Only"),
    ("0.05", "Five Cents Only"),
    ("1000000000.10", "One Billion Yuan and Ten Cents Only"),
    ("0", "Zero Yuan Only"),
    ("1", "One Yuan Only"),
    ("0.01", "One Cent Only"),
    ("1001.01", "One Thousand One Yuan and One Cent Only"),
    ("12345678.90",
     "Twelve Million Three Hundred Forty-Five Thousand Six Hundred Seventy-Eight Yuan "
     "and Ninety Cents Only"),
    ("100000", "One Hundred Thousand Yuan Only"),
    ("100001", "One Hundred Thousand One Yuan Only"),
    ("10020.05", "Ten Thousand Twenty Yuan and Five Cents Only"),
    ("100000000", "One Hundred Million Yuan Only"),
    ("1010", "One Thousand Ten Yuan Only"),
    ("100010000", "One Hundred Million Ten Thousand Yuan Only"),
    ("10000", "Ten Thousand Yuan Only"),
    ("1000100", "One Million One Hundred Yuan Only"),
    ("19.99", "Nineteen Yuan and Ninety-Nine Cents Only"),
    ("2000000000000", "Two Trillion Yuan Only"),
    ("9999999999999999.99",
     "Nine Thousand Nine Hundred Ninety-Nine Trillion Nine Hundred Ninety-Nine Billion "
     "Nine Hundred Ninety-Nine Million Nine Hundred Ninety-Nine Thousand Nine Hundred "
     "Ninety-Nine Yuan and Ninety-Nine Cents Only"),
])
def test_amount_in_words_en(amount, expected):
    assert amount_in_words(D(amount), "en") == expected


@pytest.mark.parametrize("amount, currency, expected", [
    ("100", "USD", "One Hundred US Dollars Only"),
    ("1", "USD", "One US Dollar Only"),
    ("1.01", "USD", "One US Dollar and One Cent Only"),
    ("0", "USD", "Zero US Dollars Only"),
    ("2.50", "EUR", "Two Euros and Fifty Cents Only"),
    ("1", "EUR", "One Euro Only"),
    ("100", "GBP", "GBP One Hundred Only"),
    ("100.50", "GBP", "GBP One Hundred and Fifty Cents Only"),
    ("0.50", "JPY", "JPY Fifty Cents Only"),
    ("0", "HKD", "HKD Zero Only"),
    ("-10", "CNY", "Minus Ten Yuan Only"),
    ("-10", "GBP", "GBP Minus Ten Only"),
])
def test_amount_in_words_en_currencies(amount, currency, expected):
    assert amount_in_words(D(amount), "en", currency) == expected


@pytest.mark.parametrize("language", ["fr", "de-DE", "", "zh-TW", "EN", "en-US"])
def test_amount_in_words_other_languages_are_english(language):
    assert amount_in_words(D("1234.50"), language) == (
        "One Thousand Two Hundred Thirty-Four Yuan and Fifty Cents Only")


@pytest.mark.parametrize("amount, currency", [
    (D("10000000000000000"), "CNY"),   # 17 integer digits
    (D("NaN"), "CNY"),
    (D("Infinity"), "CNY"),
    (1.5, "CNY"),
    (D("1"), "US"),
    (D("1"), "U$D"),
    (D("1"), ""),
])
def test_amount_in_words_rejects(amount, currency):
    for language in ("zh-CN", "en"):
        with pytest.raises(ValueError):
            amount_in_words(amount, language, currency)
