"""Resource limits: body size, list size, lines per contract, sends per hour, token age, password guesses, hashing."""
from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from support.infra import ADMIN_PASSWORD, EmbeddedSystem, wait_for

MAX_BODY = 1024 * 1024
MAX_LIMIT = 200
MAX_LINES = 500
SENDS_PER_HOUR = 10
MAX_FAILURES, LOCK_SECONDS = 5, 60
SECRET, SALT = "test-secret", "crm-access-token"  # what the embedded fixture signs tokens with


def assert_error(response, status: int, field: str | None = None, code: str | None = None) -> dict:
    """The SPEC error shape, naming `field` when given."""
    assert response.status_code == status, response
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    error = response.json["error"]
    assert set(error) <= {"code", "message", "fields"} and error["message"], error
    if code:
        assert error["code"] == code, error
    if field:
        assert field in (error.get("fields") or {}), error
    return error


def contracts_db(system) -> sqlite3.Connection:
    return sqlite3.connect(Path(system.var) / "contracts.sqlite", timeout=30)


def sql(system, statement: str, params=()) -> list:
    conn = contracts_db(system)
    try:
        with conn:
            return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def seeded(embedded):
    api = embedded.api
    api.product("BOLT-M8", stock=1000, price="12.50")
    return embedded, api, api.customer()


def confirmed(api, customer_id: str) -> dict:
    contract = api.contract(customer_id, [("BOLT-M8", 1)])
    assert api.post(f"/api/v1/contracts/{contract['id']}/confirm").status_code == 200
    return contract


# --------------------------------------------------------------------------- request bodies

def test_request_bodies_are_capped_at_1_mib_with_a_json_413(seeded):
    system, api, customer = seeded
    contract = confirmed(api, customer["id"])
    huge = json.dumps({"notes": "x" * MAX_BODY}).encode()
    for path in ("/api/v1/customers", "/api/v1/contracts", f"/api/v1/contracts/{contract['id']}/send",
                 "/api/v1/quotes", "/api/v1/products", "/api/v1/recurring-contracts", "/api/v1/users",
                 "/api/v1/auth/token"):
        assert_error(api.post(path, data=huge, headers={"Content-Type": "application/json"}), 413,
                     code="payload_too_large")
    assert_error(api.patch(f"/api/v1/customers/{customer['id']}", data=huge,
                           headers={"Content-Type": "application/json"}), 413)
    # Just under the cap is read (and refused for what it says, not for its size).
    near = json.dumps({"name": "n", "address": "x" * (MAX_BODY - 100)}).encode()
    assert len(near) <= MAX_BODY
    assert_error(api.post("/api/v1/customers", data=near, headers={"Content-Type": "application/json"}), 422,
                 field="address")
    assert api.get("/api/v1/customers").json["total"] == 1


# --------------------------------------------------------------------------- list sizes

def test_every_list_caps_limit_at_200(seeded):
    system, api, customer = seeded
    contract = confirmed(api, customer["id"])
    cid = contract["id"]
    lists = ["/api/v1/customers", "/api/v1/contracts", "/api/v1/quotes", "/api/v1/products", "/api/v1/receivables",
             "/api/v1/recurring-contracts", "/api/v1/emails", "/api/v1/users", "/api/v1/documents",
             f"/api/v1/contracts/{cid}/timeline", f"/api/v1/contracts/{cid}/delivery-notes",
             f"/api/v1/contracts/{cid}/receivables", "/api/v1/departments/production/notifications",
             "/api/v1/admin/dead-letters"]
    for path in lists:
        assert_error(api.get(path, params={"limit": str(MAX_LIMIT + 1)}), 422, field="limit")
        assert_error(api.get(path, params={"limit": "1000000000000000000000"}), 422, field="limit")
        ok = api.get(path, params={"limit": str(MAX_LIMIT)})
        assert ok.status_code == 200 and set(ok.json) == {"items", "total"}, (path, ok)
        assert len(api.get(path).json["items"]) <= 50


# --------------------------------------------------------------------------- lines per contract

def test_a_contract_or_quote_holds_at_most_500_lines(seeded):
    system, api, customer = seeded
    lines = [{"product_code": "BOLT-M8", "quantity": "1"}] * (MAX_LINES + 1)
    error = assert_error(api.post("/api/v1/contracts", json={"customer_id": customer["id"], "lines": lines}), 422,
                         field="lines")
    assert "500" in error["fields"]["lines"][0], error
    assert_error(api.post("/api/v1/quotes", json={"customer_id": customer["id"], "lines": lines}), 422,
                 field="lines")
    draft = api.contract(customer["id"], [("BOLT-M8", 1)])
    assert_error(api.patch(f"/api/v1/contracts/{draft['id']}", json={"lines": lines}), 422, field="lines")
    assert api.get("/api/v1/contracts").json["total"] == 1
    assert api.get("/api/v1/quotes").json["total"] == 0
    # 500 lines is still one contract.
    full = api.post("/api/v1/contracts", json={"customer_id": customer["id"], "lines": lines[:MAX_LINES]})
    assert full.status_code == 201 and len(full.json["lines"]) == MAX_LINES, full


@pytest.mark.e2e
def test_a_contract_of_many_long_product_codes_on_rabbitmq_and_postgresql(cluster):
    """The gateway and quotes read the catalogue with the codes in the query string: 250 codes of 64 characters
    (16 KiB of them) still make one contract and one quote, in requests a web server takes."""
    api = cluster.api
    codes = [f"{i:03d}-" + "X" * 60 for i in range(250)]
    for code in codes:
        assert api.post("/api/v1/products", json={"code": code, "name": code[:3], "unit": "件",
                                                  "unit_price": "1.00"}).status_code == 201
    customer = api.customer()
    lines = [{"product_code": code, "quantity": "1"} for code in codes]
    contract = api.post("/api/v1/contracts", json={"customer_id": customer["id"], "lines": lines})
    assert contract.status_code == 201, contract
    assert sorted(line["product_code"] for line in contract.json["lines"]) == codes
    assert contract.json["total"] == "282.50"  # 250 × 1.00 and 13 % tax
    quote = api.post("/api/v1/quotes", json={"customer_id": customer["id"], "lines": lines})
    assert quote.status_code == 201, quote
    # A list without ?limit= is a page of 50, whatever the total.
    first = api.get("/api/v1/products").json
    assert (len(first["items"]), first["total"]) == (50, 250)
    assert [p["code"] for p in api.get("/api/v1/products", params={"offset": 200}).json["items"]] == codes[200:]


# --------------------------------------------------------------------------- sends per contract per hour

def test_email_sends_per_contract_are_capped_per_rolling_hour(seeded):
    system, api, customer = seeded
    contract, other = confirmed(api, customer["id"]), confirmed(api, customer["id"])
    send = f"/api/v1/contracts/{contract['id']}/send"
    first = api.post(send, json={}, headers={"Idempotency-Key": "send-1"})
    assert first.status_code == 202, first
    for _ in range(SENDS_PER_HOUR - 1):
        assert api.post(send, json={"to": "a@example.cn"}).status_code == 202
    refused = api.post(send, json={"to": "a@example.cn"})
    assert_error(refused, 429, code="too_many_requests")
    retry_after = int(refused.headers["Retry-After"])
    assert 0 < retry_after <= 3600, refused.headers
    # A replay of an accepted send is the first answer, not a new send; another contract has its own budget.
    replay = api.post(send, json={}, headers={"Idempotency-Key": "send-1"})
    assert (replay.status_code, replay.json) == (202, first.json)
    assert api.post(f"/api/v1/contracts/{other['id']}/send", json={}).status_code == 202
    # Another user is held to the same count: it is per contract, not per caller.
    manager = api.user("mgr", role="manager")
    assert_error(manager.post(send, json={}), 429)
    assert sql(system, "SELECT count(*) FROM email_requests WHERE contract_id = ?", (contract["id"],)) == \
        [(SENDS_PER_HOUR,)]
    # An hour later the oldest sends leave the window.
    sql(system, "UPDATE email_requests SET created_at = ? WHERE id IN (SELECT id FROM email_requests "
                "WHERE contract_id = ? ORDER BY created_at LIMIT 2)",
        ((datetime.now(timezone.utc) - timedelta(minutes=61)).strftime("%Y-%m-%d %H:%M:%S.%f"), contract["id"]))
    assert api.post(send, json={}).status_code == 202
    assert api.post(send, json={}).status_code == 202
    assert_error(api.post(send, json={}), 429)


# --------------------------------------------------------------------------- tokens

def forged(payload: dict, age_seconds: float, secret: str = SECRET) -> str:
    """A token as the gateway would have signed it `age_seconds` ago."""
    class PastSigner(TimestampSigner):
        def get_timestamp(self):
            return int(time.time() - age_seconds)
    return URLSafeTimedSerializer(secret, salt=SALT, signer=PastSigner).dumps(payload)


def test_tokens_expire_after_the_ttl(seeded):
    system, api, _ = seeded
    issued = api.as_token(None).post("/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert issued.status_code == 200 and issued.json["expires_in"] == 8 * 3600, issued
    me = api.get("/api/v1/users/me").json
    claims = {"id": me["id"], "username": "admin", "role": "admin", "department": None}
    assert api.as_token(forged(claims, 8 * 3600 - 60)).get("/api/v1/customers").status_code == 200
    for path in ("/api/v1/customers", "/api/v1/products", "/api/v1/quotes", "/api/v1/emails"):
        error = assert_error(api.as_token(forged(claims, 8 * 3600 + 5)).get(path), 401, code="unauthorized")
        assert "expired" in error["message"], error
    assert_error(api.as_token(forged(claims, 0, secret="another-secret")).get("/api/v1/customers"), 401)


def test_crm_token_ttl_sets_the_token_lifetime(tmp_path):
    system = EmbeddedSystem(tmp_path, workers=False)
    system.env["CRM_TOKEN_TTL"] = "2"
    system.start()
    try:
        token = system.api.as_token(None).post("/api/v1/auth/token",
                                               json={"username": "admin", "password": ADMIN_PASSWORD}).json
        assert token["expires_in"] == 2
        client = system.api.as_token(token["access_token"])
        assert client.get("/api/v1/customers").status_code == 200
        wait_for(lambda: client.get("/api/v1/customers").status_code == 401, timeout=10, message="token expired")
    finally:
        system.stop()


# --------------------------------------------------------------------------- passwords

def login(api, username, password):
    return api.as_token(None).post("/api/v1/auth/token", json={"username": username, "password": password})


def test_wrong_passwords_lock_the_account_for_a_minute(seeded):
    system, api, _ = seeded
    api.user("carol", password="right-password")
    for _ in range(MAX_FAILURES):
        assert_error(login(api, "carol", "wrong-password"), 401)
    locked = login(api, "carol", "right-password")
    assert_error(locked, 429, code="too_many_requests")
    assert 0 < int(locked.headers["Retry-After"]) <= LOCK_SECONDS + 1, locked.headers
    assert_error(login(api, "carol", "wrong-password"), 429)
    # Other users are not locked out by Carol's guesser; an unknown name answers like a wrong password.
    api.user("dave", password="dave-password")
    assert login(api, "dave", "dave-password").status_code == 200
    assert_error(login(api, "nobody-here", "x"), 401)
    # When the minute is over the right password works again, and the count starts from zero.
    sql(system, "UPDATE users SET locked_until = ? WHERE username = 'carol'",
        ((datetime.now(timezone.utc) - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S.%f"),))
    assert login(api, "carol", "right-password").status_code == 200
    for _ in range(MAX_FAILURES - 1):
        assert_error(login(api, "carol", "wrong-password"), 401)
    assert login(api, "carol", "right-password").status_code == 200  # a success resets the count
    assert_error(login(api, "carol", "wrong-password"), 401)


def test_passwords_are_stored_as_slow_salted_hashes(seeded):
    system, api, _ = seeded
    api.user("erin", password="same-password")
    api.user("frank", password="same-password")
    hashes = dict(sql(system, "SELECT username, password_hash FROM users"))
    for username, stored in hashes.items():
        assert "password" not in stored and ADMIN_PASSWORD not in stored
        method = stored.split("$", 1)[0]
        name, *cost = method.split(":")
        if name == "scrypt":
            n, r, p = (int(x) for x in cost)
            assert n >= 2 ** 15 and r >= 8 and p >= 1, stored
        else:
            assert name == "pbkdf2" and int(cost[1]) >= 600_000, stored
    assert hashes["erin"] != hashes["frank"]  # salted
