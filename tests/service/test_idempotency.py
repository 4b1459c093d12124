"""Idempotency-Key through the gateway's real app, on SQLite and PostgreSQL: a retried POST does its work once,
even when the process that served the first try was killed in the middle of it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[2]
BODY = {"name": "杭州明远机械有限公司", "email": "buyer@example.cn"}


def gateway(db_url: str, var: Path):
    """The gateway's Flask app on this database, and an admin's headers."""
    from crmkit.service import open_database
    from crmkit.settings import Settings
    from services.contracts import spec
    settings = Settings.from_env("contracts", {"DATABASE_URL": db_url, "CRM_VAR_DIR": str(var),
                                               "CRM_SECRET_KEY": "test-secret", "CRM_ADMIN_PASSWORD": "admin-pass"})
    the_spec = spec()
    db = open_database(the_spec, settings)
    client = the_spec.build_app(settings, db).test_client()
    token = client.post("/api/v1/auth/token", json={"username": "admin", "password": "admin-pass"}).get_json()
    return client, {"Authorization": f"Bearer {token['access_token']}"}, db


def customers_named(db, name: str) -> int:
    from services.contracts.models import Customer
    with db.session() as session:
        return session.execute(select(func.count()).select_from(Customer).where(Customer.name == name)).scalar_one()


@pytest.fixture
def var(tmp_path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def app(db_url, var):
    client, auth, db = gateway(db_url, var)
    yield client, auth, db
    db.dispose()


def test_a_retry_after_the_server_was_killed_mid_request_does_the_work_once(db_url, var, tmp_path, app):
    # The first try runs in a process that writes the customer and is then killed before it can answer, as a
    # gateway worker is by an OOM kill or a deploy that does not wait.
    marker = tmp_path / "in-the-middle"
    child = subprocess.Popen([sys.executable, __file__, db_url, str(var), str(marker)], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            if marker.exists() or child.poll() is not None:
                break
            threading.Event().wait(0.1)
        assert marker.exists(), child.stdout.read().decode()[-3000:] if child.poll() is not None else "no marker"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)

    # The client sends the same request again with the same key, as it should: it gets its customer, once.
    client, auth, db = app
    retried = client.post("/api/v1/customers", json=BODY, headers={**auth, "Idempotency-Key": "cust-1"})
    assert retried.status_code == 201, retried.get_json()
    again = client.post("/api/v1/customers", json=BODY, headers={**auth, "Idempotency-Key": "cust-1"})
    assert (again.status_code, again.get_json()["id"]) == (201, retried.get_json()["id"])
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert customers_named(db, BODY["name"]) == 1


def test_the_same_key_at_once_does_the_work_once(app):
    client, auth, db = app
    replies = []

    def post():
        replies.append(client.post("/api/v1/customers", json=BODY, headers={**auth, "Idempotency-Key": "k"}))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r.status_code for r in replies) == [201] * 6, [r.get_json() for r in replies]
    assert len({r.get_json()["id"] for r in replies}) == 1
    assert customers_named(db, BODY["name"]) == 1


def test_a_failed_request_leaves_nothing_and_its_key_can_be_used_again(app):
    client, auth, db = app
    refused = client.post("/api/v1/customers", json={**BODY, "owner": "nobody"},
                          headers={**auth, "Idempotency-Key": "k-2"})
    assert refused.status_code == 422 and "owner" in refused.get_json()["error"]["fields"]
    # Nothing was kept for the key: the same key with another body runs, instead of being refused as a reuse.
    other = client.post("/api/v1/customers", json={**BODY, "owner": "nobody", "phone": "1"},
                        headers={**auth, "Idempotency-Key": "k-2"})
    assert other.status_code == 422 and "owner" in other.get_json()["error"]["fields"]
    created = client.post("/api/v1/customers", json=BODY, headers={**auth, "Idempotency-Key": "k-3"})
    assert created.status_code == 201
    reused = client.post("/api/v1/customers", json={**BODY, "phone": "2"}, headers={**auth, "Idempotency-Key": "k-3"})
    assert reused.status_code == 422 and "Idempotency-Key" in reused.get_json()["error"]["fields"]
    assert customers_named(db, BODY["name"]) == 1


def test_the_same_json_sent_differently_is_the_same_request(app):
    client, auth, db = app
    headers = {**auth, "Idempotency-Key": "k-4", "Content-Type": "application/json"}
    first = client.post("/api/v1/customers", data=json.dumps(BODY, ensure_ascii=False), headers=headers)
    assert first.status_code == 201
    reordered = json.dumps(dict(reversed(BODY.items())), indent=2)  # other key order, spacing and escapes
    again = client.post("/api/v1/customers", data=reordered, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert customers_named(db, BODY["name"]) == 1


def _first_try(db_url: str, var: str, marker: str) -> None:
    """The child: POST a customer, and once its row is written (not committed), say so and wait to be killed."""
    from services.contracts.models import Customer
    client, auth, _db = gateway(db_url, Path(var))

    @event.listens_for(Session, "after_flush")
    def hang(session, _context):
        if any(isinstance(obj, Customer) for obj in session.new):
            Path(marker).touch()
            threading.Event().wait(600)

    reply = client.post("/api/v1/customers", json=BODY, headers={**auth, "Idempotency-Key": "cust-1"})
    print("answered, which it must not:", reply.status_code, json.dumps(reply.get_json()))


if __name__ == "__main__":
    _first_try(*sys.argv[1:4])
