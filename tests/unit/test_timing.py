"""Server-Timing collection: what a request adds, nested calls, nothing outside a request."""
from __future__ import annotations

from crmkit import timing


def test_a_request_reports_its_parts_and_a_nested_one_keeps_its_own():
    outer = timing.start()
    timing.add("db", 0.004)
    timing.add("db", 0.002)
    inner = timing.start()  # an embedded call to another service: its own request
    timing.add("db", 0.5)
    assert timing.finish(inner, 0.6) == 'app;dur=600.0, db;dur=500.0;desc="1"'
    timing.add("inventory", 0.61)  # the caller times the call as a whole
    header = timing.finish(outer, 0.7)
    assert header == 'app;dur=700.0, db;dur=6.0;desc="2", inventory;dur=610.0;desc="1"'
    assert timing.parse(header) == {"app": 700.0, "db": 6.0, "inventory": 610.0}


def test_nothing_is_collected_outside_a_request():
    timing.add("db", 1.0)  # a worker's statement
    token = timing.start()
    assert timing.finish(token, 0.001) == "app;dur=1.0"


def test_parse_skips_what_it_cannot_read():
    assert timing.parse(None) == {}
    assert timing.parse('cache;desc="hit", db;dur=x, app;dur=3.5') == {"app": 3.5}
