"""Email addresses and subjects as every service accepts them: one plain address, no header smuggling."""
from __future__ import annotations

import re

SUBJECTS = {"contract": ("销售合同", "Sales Contract"), "quote": ("报价单", "Quotation")}
MAX_SUBJECT = 200
MAX_RECIPIENTS = 10
MAX_ADDRESS = 254

_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
# Letters beyond ASCII are allowed in the domain (internationalised domain names), never punctuation.
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9\u00a0-\uffff-]{1,63}(?<!-)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def default_subject(kind: str, number: str) -> str:
    """Bilingual, so the customer reads it whatever their language: '销售合同 HT-… / Sales Contract HT-…'."""
    zh, en = SUBJECTS.get(kind, SUBJECTS["contract"])
    return f"{zh} {number} / {en} {number}"


def address_problem(value) -> str | None:
    """Why `value` is not one plain email address (None when it is): no CR/LF, no name, no second address."""
    if not isinstance(value, str) or not value:
        return "Must be an email address."
    if len(value) > MAX_ADDRESS:
        return f"At most {MAX_ADDRESS} characters."
    if _CONTROL.search(value):
        return "Must not contain line breaks or control characters."
    if any(c in value for c in ",;<>\"() \t"):
        return "Must be a single address without a display name."
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or "@" in local:
        return "Must be a single email address."
    if len(local) > 64 or not _LOCAL.match(local):
        return "The part before @ is not valid."
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return "The domain is not valid."
    return None


def recipients_problems(values, field: str) -> dict:
    """Errors of a list of addresses, keyed 'to.1' as the API names fields; empty when all are fine."""
    if not isinstance(values, list):
        return {field: ["Must be a list of email addresses."]}
    if len(values) > MAX_RECIPIENTS:
        return {field: [f"At most {MAX_RECIPIENTS} addresses."]}
    errors = {}
    for i, value in enumerate(values):
        problem = address_problem(value)
        if problem:
            errors[f"{field}.{i}"] = [problem]
    return errors


def subject_problem(value) -> str | None:
    if not isinstance(value, str):
        return "Must be a string."
    if not value.strip():
        return "Must not be empty."
    if len(value) > MAX_SUBJECT:
        return f"At most {MAX_SUBJECT} characters."
    if _CONTROL.search(value):
        return "Must not contain line breaks or control characters."
    return None
