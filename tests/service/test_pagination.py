"""fetch_page gives the true total whether it counts or reads the end of the list off the page; so does its
prebuilt form, whose LIMIT and OFFSET are bound parameters (SQLite and PostgreSQL)."""
from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select

from crmkit.db import Database
from crmkit.models import KIT_TABLES, Sequence
from crmkit.web.pagination import fetch_page, fetch_prebuilt_page, page_statements

ALL = [f"s{i}" for i in range(5)]
PREBUILT = page_statements(select(Sequence).where(Sequence.value >= bindparam("low")), (Sequence.name,))


def _page(session, how, low, limit, offset):
    if how == "built per call":
        return fetch_page(session, select(Sequence).where(Sequence.value >= low), (Sequence.name,), limit, offset)
    return fetch_prebuilt_page(session, PREBUILT, {"low": low}, limit, offset)


@pytest.fixture
def db(db_url):
    database = Database(db_url, tables=KIT_TABLES)
    database.create_all()
    with database.session() as session:
        session.add_all(Sequence(name=f"s{i}", value=i) for i in range(5))
    yield database
    database.dispose()


@pytest.mark.parametrize("how", ["built per call", "prebuilt"])
def test_every_page_reports_the_whole_list_total(db, how):
    pages = [(2, 0, ["s0", "s1"]), (2, 4, ["s4"]), (2, 6, []), (5, 0, ALL), (10, 0, ALL), (200, 3, ["s3", "s4"]),
             (1, 10**9, [])]
    with db.session() as session:
        for limit, offset, names in pages:
            rows, total = _page(session, how, 0, limit, offset)
            assert (total, [r.name for r in rows]) == (5, names), (limit, offset)
        assert _page(session, how, 10, 2, 0) == ([], 0)
        # The other parameters count too: a full page of a shorter list.
        rows, total = _page(session, how, 3, 1, 0)
        assert (total, [r.name for r in rows]) == (2, ["s3"])
