"""fetch_page gives the true total whether it counts or reads the end of the list off the page."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from crmkit.db import Database
from crmkit.models import KIT_TABLES, Sequence
from crmkit.web.pagination import fetch_page


@pytest.mark.parametrize("limit,offset,names", [
    (2, 0, ["s0", "s1"]), (2, 4, ["s4"]), (2, 6, []), (5, 0, ["s0", "s1", "s2", "s3", "s4"]), (10, 0, None),
    (200, 3, ["s3", "s4"]), (1, 10**9, []),
])
def test_every_page_reports_the_whole_list_total(tmp_path, limit, offset, names):
    db = Database(f"sqlite:///{tmp_path / 'p.sqlite'}", tables=KIT_TABLES)
    db.create_all()
    with db.session() as session:
        session.add_all(Sequence(name=f"s{i}", value=i) for i in range(5))
    with db.session() as session:
        rows, total = fetch_page(session, select(Sequence), (Sequence.name,), limit, offset)
    assert total == 5
    assert [r.name for r in rows] == (names if names is not None else [f"s{i}" for i in range(5)])
    with db.session() as session:
        assert fetch_page(session, select(Sequence).where(Sequence.value > 9), (Sequence.name,), 2, 0) == ([], 0)
    db.dispose()
