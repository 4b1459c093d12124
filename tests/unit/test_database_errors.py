"""How the database's refusals reach a client: away is 503, a clash with a concurrent change is 409."""
from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy.exc import OperationalError

from crmkit.web.errors import register_error_handlers


class Refusal(Exception):
    def __init__(self, sqlstate):
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def answer(sqlstate):
    app = Flask(__name__)
    register_error_handlers(app)

    @app.get("/")
    def fail():
        raise OperationalError("UPDATE contracts ...", {}, Refusal(sqlstate))

    return app.test_client().get("/")


@pytest.mark.parametrize("sqlstate", ["40P01", "40001", "55P03"])  # deadlock, serialization, lock not available
def test_a_clash_with_a_concurrent_change_is_a_conflict_to_retry(sqlstate):
    r = answer(sqlstate)
    assert r.status_code == 409 and r.json["error"]["code"] == "conflict" and r.headers["Retry-After"] == "1"
    assert "try again" in r.json["error"]["message"]


@pytest.mark.parametrize("sqlstate", [None, "08006", "57P01"])  # no code (connection gone), connection failure, shutdown
def test_a_database_away_is_unavailable(sqlstate):
    r = answer(sqlstate)
    assert r.status_code == 503 and r.json["error"]["code"] == "unavailable"
