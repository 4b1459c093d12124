"""?limit=&offset= for every list: default 50, limit at most 200, offset not negative."""
from __future__ import annotations

import re

from flask import request
from sqlalchemy import bindparam, func, select

from crmkit.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 10**9  # beyond any list; a larger number overflows the databases' 64-bit OFFSET
_INTEGER = re.compile(r"-?[0-9]+")


def page_args() -> tuple[int, int]:
    errors = {}
    values = {}
    for name, default, low, high in (("limit", DEFAULT_LIMIT, 1, MAX_LIMIT), ("offset", 0, 0, MAX_OFFSET)):
        raw = request.args.get(name)
        if raw is None or raw == "":
            values[name] = default
            continue
        if not _INTEGER.fullmatch(raw):  # int() also takes "1_0", " 5" and "５"
            errors[name] = ["Not a valid integer."]
            continue
        value = int(raw)
        if value < low or (high is not None and value > high):
            errors[name] = [f"Must be between {low} and {high}." if high else f"Must be at least {low}."]
            continue
        values[name] = value
    if errors:
        raise ValidationFailed("Invalid pagination.", errors)
    return values["limit"], values["offset"]


def page(items: list, total: int) -> dict:
    return {"items": items, "total": total}


def fetch_page(session, query, order_by: tuple, limit: int, offset: int) -> tuple[list, int]:
    """One page of an ORM query and the list's total. The COUNT is skipped when the page shows where the list
    ends (fewer rows than asked), which is every call of the short lists on hot paths (timelines, catalogue)."""
    rows = session.execute(query.order_by(*order_by).limit(limit).offset(offset)).scalars().all()
    if _shows_end(rows, limit, offset):
        return rows, offset + len(rows)
    return rows, session.execute(select(func.count()).select_from(query.subquery())).scalar_one()


def page_statements(query, order_by: tuple) -> tuple:
    """fetch_page's two statements for a list read on a hot path, to be built once and kept: the page, with
    LIMIT and OFFSET as the bound parameters `limit` and `offset`, and the COUNT. Run with fetch_prebuilt_page."""
    return (query.order_by(*order_by).limit(bindparam("limit")).offset(bindparam("offset")),
            select(func.count()).select_from(query.subquery()))


def fetch_prebuilt_page(session, statements: tuple, params: dict, limit: int, offset: int) -> tuple[list, int]:
    """fetch_page with page_statements' statements and the values of their other parameters."""
    paged, count = statements
    rows = session.execute(paged, {**params, "limit": limit, "offset": offset}).scalars().all()
    if _shows_end(rows, limit, offset):
        return rows, offset + len(rows)
    return rows, session.execute(count, params).scalar_one()


def _shows_end(rows: list, limit: int, offset: int) -> bool:
    return bool(rows and len(rows) < limit) or (not rows and offset == 0)
