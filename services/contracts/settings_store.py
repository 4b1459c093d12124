"""Company settings: one JSON document with defaults, read inside the caller's transaction."""
from __future__ import annotations

import copy

from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit.db import insert_ignore
from services.contracts.models import SettingsRow

DEFAULTS = {
    "company": {"name": "", "address": "", "phone": "", "tax_id": "", "bank_account": "", "language": "zh-CN",
                "terms": "", "footer": "", "email": None},
    "shortage_policy": "notify_production",
    "default_payment_terms": "",
    "default_notify_departments": [],
    # The receivables plan used when POST /contracts/{id}/receivables-plan has no body.
    "default_installments": [],
}


def load_settings(session: Session) -> dict:
    row = session.get(SettingsRow, "company")
    return merged_settings(row.value if row is not None else None)


def merged_settings(stored: dict | None) -> dict:
    """The stored document over the defaults."""
    merged = copy.deepcopy(DEFAULTS)
    stored = stored or {}
    merged.update({k: v for k, v in stored.items() if k != "company"})
    merged["company"].update(stored.get("company") or {})
    return merged


# The stored document as one more column of a statement the caller runs anyway (create and confirm read the
# customer): the same snapshot as a read of its own, without the round trip. Pass what it returns to
# merged_settings().
SETTINGS_COLUMN = select(SettingsRow.value).where(SettingsRow.key == "company").scalar_subquery().label("settings")


def update_settings(session: Session, changes: dict) -> dict:
    """Apply a PUT: each key given replaces its value (inside `company` too); a key left out keeps its own."""
    # The row exists and is locked before it is read, so two admins' PUTs of different keys both keep theirs.
    insert_ignore(session, SettingsRow.__table__, {"key": "company", "value": {}})
    row = session.get(SettingsRow, "company", with_for_update=True, populate_existing=True)
    stored = copy.deepcopy(row.value or {})
    stored.update({key: value for key, value in changes.items() if key != "company"})
    if "company" in changes:
        stored["company"] = {**(stored.get("company") or {}), **changes["company"]}
    row.value = stored  # a new object: the JSON column sees the change
    return merged_settings(stored)
