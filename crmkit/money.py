"""Money arithmetic for contracts: parsing, line pricing, installment plans, amounts in words.

Pure logic on :class:`decimal.Decimal` only (no float ever touches an amount). Every rounding
step is ROUND_HALF_UP to whole cents, and every intermediate product is computed in a context
wide enough to be exact, so results do not depend on the ambient decimal context.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext

CENT = Decimal("0.01")
MAX_DIGITS = 18
HUNDRED = Decimal(100)

# Inputs have at most 18 digits, so a product of three of them has at most 54: 80 keeps
# multiplication and division by 100 exact (no silent rounding at the default 28 digits).
_EXACT = Context(prec=80, rounding=ROUND_HALF_UP)

# A decimal as people write it: ASCII digits (\d would take any script's), one point, no exponent. Decimal()
# alone would also take "1_000", "1E+3" and "NaN", which no client means as an amount.
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


# --------------------------------------------------------------------------------------------
# Parsing and rounding
# --------------------------------------------------------------------------------------------

def _digit_count(d: Decimal) -> int:
    """Digits as written: integer digits (without leading zeros) plus fractional digits."""
    _, digits, exponent = d.as_tuple()
    if exponent >= 0:
        return 1 if d == 0 else len(digits) + exponent
    return max(len(digits) + exponent, 0) + -exponent


def to_decimal(value: object, field: str) -> Decimal:
    """Parse a str/int/Decimal into a finite Decimal of at most 18 digits, else ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"{field} must be a number, not true/false")
    if isinstance(value, float):
        raise ValueError(f"{field} must be given as a string or an integer, not a floating-point "
                         f"number (e.g. \"12.50\")")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not PLAIN_NUMBER.fullmatch(text):
            shown = value if len(value) <= 40 else value[:40] + "..."
            raise ValueError(f"{field} must be a decimal number such as \"1234.50\", got {shown!r}")
        result = Decimal(text)
    else:
        raise ValueError(f"{field} must be a number, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{field} must be a finite number")
    if _digit_count(result) > MAX_DIGITS:
        raise ValueError(f"{field} has too many digits (at most {MAX_DIGITS} allowed)")
    return result


def _as_decimal(value: object, field: str) -> Decimal:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{field} must be a finite number")
        return value
    return to_decimal(value, field)


def money(d: Decimal) -> Decimal:
    """Round half-up (away from zero on ties) to whole cents; -0.00 becomes 0.00."""
    d = _as_decimal(d, "amount")
    try:
        with localcontext(_EXACT):
            result = d.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueError("amount is too large") from None
    return result.copy_abs() if result == 0 else result


def money_str(d: Decimal) -> str:
    """Fixed-point text with exactly two decimals, e.g. "1234.50" (never exponent notation)."""
    return f"{money(d):f}"


# Unit prices may have more places than amounts: small parts are priced to a fraction of a cent (0.0125 a screw);
# the line amount is still rounded to cents.
PRICE_PLACES = 4


def price_str(d: Decimal) -> str:
    """A unit price as text: two decimals, more only when the price has them ("12.50", "0.035", "0.0125")."""
    d = _as_decimal(d, "unit_price")
    places = min(max(2, -d.normalize().as_tuple().exponent), PRICE_PLACES)
    with localcontext(_EXACT):
        return f"{d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"


def _is_cents(d: Decimal) -> bool:
    return money(d) == d


# --------------------------------------------------------------------------------------------
# Line pricing
# --------------------------------------------------------------------------------------------

def price_line(quantity: Decimal, unit_price: Decimal, discount: Decimal,
               tax_rate: Decimal) -> tuple[Decimal, Decimal]:
    """Return (amount, tax) for one line.

    amount = quantity x unit_price x (1 - discount), rounded half-up to cents;
    tax = amount x tax_rate, computed on the rounded amount and rounded half-up to cents.
    ``discount`` and ``tax_rate`` are fractions (0.1 means 10 %).
    """
    quantity = _as_decimal(quantity, "quantity")
    unit_price = _as_decimal(unit_price, "unit_price")
    discount = _as_decimal(discount, "discount")
    tax_rate = _as_decimal(tax_rate, "tax_rate")
    if quantity < 0:
        raise ValueError("quantity must not be negative")
    if unit_price < 0:
        raise ValueError("unit_price must not be negative")
    if not 0 <= discount <= 1:
        raise ValueError("discount must be between 0 and 1 (a fraction, 0.1 means 10%)")
    if tax_rate < 0:
        raise ValueError("tax_rate must not be negative")
    with localcontext(_EXACT):
        amount = money(quantity * unit_price * (1 - discount))
        tax = money(amount * tax_rate)
    return amount, tax


def totals(lines: Iterable[tuple[Decimal, Decimal]]) -> tuple[Decimal, Decimal, Decimal]:
    """Sum (amount, tax) pairs into (subtotal, tax_total, total); total = subtotal + tax_total."""
    subtotal = Decimal("0.00")
    tax_total = Decimal("0.00")
    with localcontext(_EXACT):
        for amount, tax in lines:
            subtotal += _as_decimal(amount, "amount")
            tax_total += _as_decimal(tax, "tax")
        subtotal, tax_total = money(subtotal), money(tax_total)
        return subtotal, tax_total, money(subtotal + tax_total)


# Amounts are stored as Numeric(18, 2) and spelled in words below 10**16: a whole document stays well inside.
MAX_TOTAL = Decimal(10) ** 15


def size_errors(priced: list[tuple[Decimal, Decimal]]) -> dict[str, list[str]]:
    """The fields of (amount, tax) lines, or of their sum, past MAX_TOTAL; empty when everything fits."""
    errors = {f"lines.{i}.quantity": ["The line amount is too large."]
              for i, (amount, tax) in enumerate(priced) if amount + tax >= MAX_TOTAL}
    if not errors and totals(priced)[2] >= MAX_TOTAL:
        errors["lines"] = ["The total is too large."]
    return errors


# --------------------------------------------------------------------------------------------
# Installment plans
# --------------------------------------------------------------------------------------------

def split_installments(total: Decimal, parts: list) -> list[Decimal]:
    """Turn a payment plan into installment amounts that sum exactly to ``total``.

    Each part is ("percent", p) - p percent of the total, rounded half-up to cents - or
    ("amount", a) - a fixed amount, kept as given. The cents lost or gained by rounding the
    percentages go to the last percentage installment (which is the last installment whenever
    the plan ends with a percentage); fixed amounts are never altered.
    """
    total = _as_decimal(total, "total")
    if not _is_cents(total):
        raise ValueError("total must be a whole number of cents")
    if total <= 0:
        raise ValueError("total must be greater than zero")
    if not parts:
        raise ValueError("a payment plan needs at least one installment")

    kinds: list[str] = []
    values: list[Decimal] = []
    for index, part in enumerate(parts, start=1):
        try:
            kind, raw = part
        except (TypeError, ValueError):
            raise ValueError(f"installment {index} must be a (kind, value) pair") from None
        if kind not in ("percent", "amount"):
            raise ValueError(f"installment {index} has unknown kind {kind!r} "
                             f"(expected 'percent' or 'amount')")
        value = _as_decimal(raw, f"installment {index}")
        if value <= 0:
            raise ValueError(f"installment {index} must be greater than zero")
        if kind == "percent" and value > 100:
            raise ValueError(f"installment {index} cannot be more than 100%")
        if kind == "amount" and not _is_cents(value):
            raise ValueError(f"installment {index} must be a whole number of cents")
        kinds.append(kind)
        values.append(value)

    with localcontext(_EXACT):
        percent_sum = sum((v for k, v in zip(kinds, values) if k == "percent"), Decimal(0))
        amount_sum = sum((v for k, v in zip(kinds, values) if k == "amount"), Decimal(0))
        if "amount" not in kinds and percent_sum != 100:
            raise ValueError(f"installment percentages add up to {percent_sum.normalize():f}%, "
                             f"not 100%")
        if amount_sum > total:
            raise ValueError(f"fixed installment amounts ({money_str(amount_sum)}) exceed the "
                             f"total ({money_str(total)})")
        exact_sum = amount_sum + total * percent_sum / HUNDRED
        if exact_sum != total:
            raise ValueError(f"installments add up to {exact_sum.normalize():f}, not the total "
                             f"{money_str(total)}")

        result = [money(total * v / HUNDRED) if k == "percent" else v
                  for k, v in zip(kinds, values)]
        remainder = total - sum(result, Decimal(0))
        if remainder:
            last_percent = max(i for i, k in enumerate(kinds) if k == "percent")
            result[last_percent] += remainder
    for index, value in enumerate(result, start=1):
        if value <= 0:
            raise ValueError(f"installment {index} would be {money_str(value)}; every installment "
                             f"must be greater than zero")
    return [money(v) for v in result]


# --------------------------------------------------------------------------------------------
# Amounts in words
# --------------------------------------------------------------------------------------------

_MAX_YUAN = 10 ** 16  # 16 integer digits + 2 decimals = the 18-digit input limit

_ZH_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_ZH_PLACES = ((1000, "仟"), (100, "佰"), (10, "拾"), (1, ""))


def _zh_section(n: int) -> str:
    """1..9999. A run of zeros between non-zero digits is one 零; trailing zeros say nothing."""
    out: list[str] = []
    pending_zero = False
    for place, unit in _ZH_PLACES:
        digit = n // place % 10
        if digit == 0:
            pending_zero = pending_zero or bool(out)
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        out.append(_ZH_DIGITS[digit] + unit)  # 10 -> 壹拾, never a bare 拾
    return "".join(out)


def _zh_below_yi(n: int) -> str:
    """1..99999999, with 万. A gap after 万 (the lower section lacks its 仟) is one 零."""
    high, low = divmod(n, 10_000)
    if not high:
        return _zh_section(low)
    text = _zh_section(high) + "万"
    if low:
        text += ("零" if low < 1000 else "") + _zh_section(low)
    return text


def _zh_integer(n: int) -> str:
    """1..10**16-1, with 亿; the part above 亿 may itself carry 万 (壹万亿 = 10**12)."""
    high, low = divmod(n, 10 ** 8)
    if not high:
        return _zh_below_yi(low)
    text = _zh_below_yi(high) + "亿"
    if low:
        text += ("零" if low < 10 ** 7 else "") + _zh_below_yi(low)
    return text


def _zh_words(yuan: int, jiao: int, fen: int) -> str:
    if yuan == 0 and jiao == 0 and fen == 0:
        return "零元整"
    text = _zh_integer(yuan) + "元" if yuan else ""
    if jiao == 0 and fen == 0:
        return text + "整"
    if jiao:
        text += _ZH_DIGITS[jiao] + "角"
    elif yuan:
        text += "零"  # 元 followed directly by 分: the empty 角 is read as 零
    if fen:
        return text + _ZH_DIGITS[fen] + "分"
    return text + "整"


_EN_ONES = ("Zero One Two Three Four Five Six Seven Eight Nine Ten Eleven Twelve Thirteen "
            "Fourteen Fifteen Sixteen Seventeen Eighteen Nineteen").split()
_EN_TENS = "_ _ Twenty Thirty Forty Fifty Sixty Seventy Eighty Ninety".split()
_EN_SCALES = ((10 ** 12, "Trillion"), (10 ** 9, "Billion"), (10 ** 6, "Million"),
              (10 ** 3, "Thousand"))
# code -> (singular, plural) of the main unit; the hundredth is "Cent"/"Cents" throughout.
_EN_CURRENCIES = {"CNY": ("Yuan", "Yuan"), "USD": ("US Dollar", "US Dollars"),
                  "EUR": ("Euro", "Euros")}


def _en_below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = [f"{_EN_ONES[hundreds]} Hundred"] if hundreds else []
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else ""))
    elif rest:
        words.append(_EN_ONES[rest])
    return " ".join(words)


def _en_integer(n: int) -> str:
    if n == 0:
        return "Zero"
    words = []
    for scale, name in _EN_SCALES:
        if n >= scale:
            count, n = divmod(n, scale)
            words.append(f"{_en_integer(count)} {name}")  # count may exceed 999 for Trillion
    if n:
        words.append(_en_below_thousand(n))
    return " ".join(words)


def _en_words(yuan: int, cents: int, currency: str) -> str:
    cent_words = f"{_en_integer(cents)} {'Cent' if cents == 1 else 'Cents'}" if cents else None
    if currency in _EN_CURRENCIES:
        singular, plural = _EN_CURRENCIES[currency]
        unit = singular if yuan == 1 else plural
        if yuan == 0 and cents == 0:
            return f"Zero {plural} Only"
        main = [f"{_en_integer(yuan)} {unit}"] if yuan else []
    else:
        if yuan == 0 and cents == 0:
            return "Zero Only"
        main = [_en_integer(yuan)] if yuan else []
    if cent_words:
        main.append(cent_words)
    return " and ".join(main) + " Only"


# What a Chinese contract writes before the capitals; a code reads as a typo to a Chinese customer.
_ZH_CURRENCIES = {"CNY": "人民币", "USD": "美元", "EUR": "欧元", "JPY": "日元", "HKD": "港币", "GBP": "英镑",
                  "AUD": "澳元", "CAD": "加元", "SGD": "新加坡元", "KRW": "韩元", "TWD": "新台币", "MOP": "澳门元"}


def amount_in_words(amount: Decimal, language: str, currency: str = "CNY") -> str:
    """Spell an amount for printing on a contract.

    zh-CN: Chinese financial capitals, e.g. 人民币壹仟零壹元零壹分; other currencies are
    prefixed with their Chinese name instead of 人民币 (美元壹佰元整), or their code when it has none here
    (CHF壹佰元整). Any other language: English, e.g.
    "One Thousand Two Hundred Thirty-Four Yuan and Fifty Cents Only"; CNY, USD and EUR have
    unit names, other currencies are prefixed with their code ("GBP One Hundred Only").
    The amount is first rounded half-up to cents.
    """
    value = money(amount)
    code = (currency or "").strip().upper()
    if not (len(code) == 3 and code.isascii() and code.isalpha()):
        raise ValueError(f"currency must be a three-letter code such as CNY, got {currency!r}")
    negative = value < 0
    cents_total = int(abs(value) * 100)
    yuan, cents = divmod(cents_total, 100)
    if yuan >= _MAX_YUAN:
        raise ValueError("amount is too large to write in words")

    lang = (language or "").strip().replace("_", "-").lower()
    if lang == "zh-cn":
        prefix = _ZH_CURRENCIES.get(code, code)
        return prefix + ("负" if negative else "") + _zh_words(yuan, *divmod(cents, 10))
    words = _en_words(yuan, cents, code)
    if negative:
        words = "Minus " + words
    return words if code in _EN_CURRENCIES else f"{code} {words}"
