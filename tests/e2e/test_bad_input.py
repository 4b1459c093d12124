"""Bad input at the gateway: every failure is a JSON 4xx naming the field or reason, never 500; nothing half-written."""
from __future__ import annotations

import json
import socket

import pytest

from support.infra import company_date

LIMIT = 1024 * 1024


def assert_error(response, status: int, field: str | None = None, code: str | None = None):
    """The SPEC error shape: {"error": {"code", "message", "fields"?}}, naming `field` when given."""
    assert response.status_code == status, response
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    error = response.json["error"]
    assert set(error) <= {"code", "message", "fields"}, error
    assert isinstance(error["code"], str) and error["code"] and isinstance(error["message"], str) and error["message"]
    if code:
        assert error["code"] == code, error
    if field:
        assert field in (error.get("fields") or {}), error
        assert all(isinstance(m, str) and m for m in error["fields"][field]), error
    return error


def raw_post(api, path, data: bytes, content_type="application/json"):
    return api.post(path, data=data, headers={"Content-Type": content_type})


@pytest.fixture
def seeded(embedded):
    api = embedded.api
    api.product("BOLT-M8", stock=10, price="12.50")
    customer = api.customer()
    return api, customer


def line(quantity="1", **extra):
    return {"product_code": "BOLT-M8", "quantity": quantity, **extra}


MALFORMED = [
    b'{"customer_id": ',            # truncated
    b"{'customer_id': 'x'}",        # not JSON quoting
    b"[1, 2, 3]",                   # an array, not an object
    b"null", b'"a string"', b"42",
    b"\xff\xfe{\x00}",              # not UTF-8
    b"[" * 100_000 + b"]" * 100_000,  # nested past the parser's recursion limit
    b'{"quantity": ' + b"9" * 5000 + b"}",  # an integer too long to convert
    b"",                            # no body at all
]


def test_malformed_bodies_answer_400_json(seeded):
    api, _ = seeded
    for body in MALFORMED:
        for path in ("/api/v1/contracts", "/api/v1/customers", "/api/v1/products",
                     "/api/v1/products/BOLT-M8/stock", "/api/v1/users"):
            assert_error(raw_post(api, path, body), 400, code="bad_request")
    assert api.get("/api/v1/contracts").json["total"] == 0


def bad_contracts(customer_id):
    """(body, the field the 422 must name) for POST /contracts."""
    ok = [line()]
    cases = [
        ({"customer_id": customer_id, "lines": [line(1.5)]}, "lines.0.quantity"),   # a float
        ({"customer_id": customer_id, "lines": [line(1e12)]}, "lines.0.quantity"),
        ({"customer_id": customer_id, "lines": [line("1e12")]}, "lines.0.quantity"),   # absurd
        ({"customer_id": customer_id, "lines": [line(10 ** 30)]}, "lines.0.quantity"),
        ({"customer_id": customer_id, "lines": [line("-1")]}, "lines.0.quantity"),
        ({"customer_id": customer_id, "lines": [line(-3)]}, "lines.0.quantity"),
        ({"customer_id": customer_id, "lines": [line("0")]}, "lines.0.quantity"),
        ({"customer_id": customer_id, "lines": [line("abc")]}, "lines.0.quantity"),
        ({"customer_id": customer_id, "lines": [line("NaN")]}, "lines.0.quantity"),
        ({"customer_id": customer_id, "lines": [line("Infinity")]}, "lines.0.quantity"),
        ({"customer_id": customer_id, "lines": [line("1.2345")]}, "lines.0.quantity"),
        ({"customer_id": customer_id, "lines": [line("1_000")]}, "lines.0.quantity"),
        ({"customer_id": customer_id, "lines": [line("١٢")]}, "lines.0.quantity"),         # Arabic-Indic digits
        ({"customer_id": customer_id, "lines": [line(unit_price="1E+3")]}, "lines.0.unit_price"),
        ({"customer_id": customer_id, "lines": [line(True)]}, "lines.0.quantity"),
        ({"customer_id": customer_id, "lines": [line(None)]}, "lines.0.quantity"),
        ({"customer_id": customer_id, "lines": [line([1])]}, "lines.0.quantity"),
        ({"customer_id": customer_id, "lines": [{"product_code": "BOLT-M8"}]}, "lines.0.quantity"),
        ({"customer_id": customer_id, "lines": [line(unit_price=12.5)]}, "lines.0.unit_price"),  # money float
        ({"customer_id": customer_id, "lines": [line(unit_price="-1.00")]}, "lines.0.unit_price"),
        ({"customer_id": customer_id, "lines": [line(unit_price="12.34567")]}, "lines.0.unit_price"),
        ({"customer_id": customer_id, "lines": [line(unit_price="1e30")]}, "lines.0.unit_price"),
        ({"customer_id": customer_id, "lines": [line(discount="1.5")]}, "lines.0.discount"),
        ({"customer_id": customer_id, "lines": [line(discount=0.1)]}, "lines.0.discount"),
        ({"customer_id": customer_id, "lines": [{"product_code": "NOPE-404", "quantity": "1"}]},
         "lines.0.product_code"),                                                          # unknown product
        ({"customer_id": customer_id, "lines": [line(), {"product_code": "NOPE", "quantity": "1"}]},
         "lines.1.product_code"),
        ({"customer_id": customer_id, "lines": [{"product_code": 123, "quantity": "1"}]}, "lines.0.product_code"),
        ({"customer_id": customer_id, "lines": [{"product_code": "", "quantity": "1"}]}, "lines.0.product_code"),
        ({"customer_id": customer_id, "lines": [{"product_code": "X" * 65, "quantity": "1"}]},
         "lines.0.product_code"),
        ({"customer_id": customer_id, "lines": "BOLT-M8 x 1"}, "lines"),
        ({"customer_id": customer_id, "lines": []}, "lines"),
        ({"customer_id": customer_id, "lines": [1]}, "lines.0._schema"),
        ({"customer_id": customer_id, "lines": [line()] * 501}, "lines"),
        ({"customer_id": customer_id}, "lines"),
        ({"lines": ok}, "customer_id"),
        ({"customer_id": "no-such-customer", "lines": ok}, "customer_id"),                 # unknown customer
        ({"customer_id": 42, "lines": ok}, "customer_id"),
        ({"customer_id": {"$ne": None}, "lines": ok}, "customer_id"),
        ({"customer_id": customer_id, "lines": ok, "colour": "red"}, "colour"),           # unknown fields
        ({"customer_id": customer_id, "lines": [line(colour="red")]}, "lines.0.colour"),
        ({"customer_id": customer_id, "lines": ok, "delivery_date": "2026-13-45"}, "delivery_date"),
        ({"customer_id": customer_id, "lines": ok, "delivery_date": 20260101}, "delivery_date"),
        ({"customer_id": customer_id, "lines": ok, "delivery_date": "20261231"}, "delivery_date"),
        ({"customer_id": customer_id, "lines": ok, "delivery_date": "2026-W01-1"}, "delivery_date"),
        ({"customer_id": customer_id, "lines": ok, "notify_departments": ["marketing"]}, "notify_departments.0"),
        ({"customer_id": customer_id, "lines": ok, "notify_departments": "production"}, "notify_departments"),
        ({"customer_id": customer_id, "lines": ok, "send_to_customer": "maybe"}, "send_to_customer"),
        ({"customer_id": customer_id, "lines": ok, "payment_terms": "x" * 1001}, "payment_terms"),
        ({"customer_id": customer_id, "lines": ok, "confirm": "sure"}, "confirm"),
        # each number within its limits, their product past what an amount can hold (and be spelled in words)
        ({"customer_id": customer_id, "lines": [line("1000000000", unit_price="1000000000000")]},
         "lines.0.quantity"),
        ({"customer_id": customer_id, "lines": [line("600000000", unit_price="1000000")] * 2}, "lines"),
        ({"customer_id": customer_id, "lines": ok, "payment_terms": "30 days\u0000"}, "payment_terms"),
        ({"customer_id": customer_id, "lines": [line(product_code="BOLT\x1b[31m")]}, "lines.0.product_code"),
    ]
    return cases


def test_bad_contracts_answer_422_naming_the_field_and_write_nothing(seeded):
    api, customer = seeded
    for body, field in bad_contracts(customer["id"]):
        response = api.post("/api/v1/contracts", json=body)
        assert_error(response, 422, field=field, code="validation_error")
        # also with confirm: nothing may be confirmed (or reserved) by a refused create
        body_confirming = dict(body, confirm=True) if "confirm" not in body else body
        assert api.post("/api/v1/contracts", json=body_confirming).status_code in (400, 422)
    assert api.get("/api/v1/contracts").json["total"] == 0
    assert api.get("/api/v1/products/BOLT-M8").json["reserved"] == "0"
    # No contract number was consumed by the refusals: the first good contract is number 1.
    first = api.contract(customer["id"], [("BOLT-M8", "1.5")])
    assert first["number"] == f"HT-{company_date(first['created_at']).year}-000001"
    assert first["lines"][0]["quantity"] == "1.5"


def test_oversized_bodies_answer_413_json(seeded):
    api, customer = seeded
    huge = json.dumps({"customer_id": customer["id"], "lines": [line()], "payment_terms": "x" * LIMIT}).encode()
    assert len(huge) > LIMIT
    for path in ("/api/v1/contracts", "/api/v1/customers", "/api/v1/products"):
        assert_error(raw_post(api, path, huge), 413, code="payload_too_large")
    assert api.get("/api/v1/contracts").json["total"] == 0


def test_bad_customers_products_and_stock_changes_answer_422_naming_the_field(seeded):
    api, _ = seeded
    for body, field in [
        ({}, "name"), ({"name": ""}, "name"), ({"name": 7}, "name"), ({"name": "x" * 201}, "name"),
        ({"name": "A", "email": "not-an-email"}, "email"),
        ({"name": "A", "email": "a@example.cn\r\nBcc: victim@example.com"}, "email"),
        ({"name": "A", "email": "a@example.cn, b@example.cn"}, "email"),
        ({"name": "A", "language": "fr"}, "language"), ({"name": "A", "kind": "alien"}, "kind"),
        ({"name": "A", "nickname": "x"}, "nickname"),
    ]:
        assert_error(api.post("/api/v1/customers", json=body), 422, field=field)
    assert api.get("/api/v1/customers").json["total"] == 1

    product = {"code": "NEW-1", "name": "新产品", "unit": "件", "unit_price": "10.00"}
    for change, field in [
        ({"unit_price": 10.5}, "unit_price"), ({"unit_price": "-1"}, "unit_price"),
        ({"unit_price": "1e20"}, "unit_price"), ({"code": "bad code!"}, "code"), ({"code": ""}, "code"),
        ({"tax_rate": "2"}, "tax_rate"), ({"tax_rate": 0.13}, "tax_rate"), ({"on_hand": "-5"}, "on_hand"),
        ({"currency": "XXX"}, "currency"), ({"weight": "1"}, "weight"),
    ]:
        assert_error(api.post("/api/v1/products", json={**product, **change}), 422, field=field)
    assert_error(api.post("/api/v1/products", json={**product, "code": "BOLT-M8"}), 409, field="code")
    assert api.get("/api/v1/products").json["total"] == 1

    for body, field in [({"delta": "abc", "reason": "r"}, "delta"), ({"delta": 1.5, "reason": "r"}, "delta"),
                        ({"delta": "0", "reason": "r"}, "delta"), ({"delta": "1e12", "reason": "r"}, "delta"),
                        ({"delta": "-11", "reason": "r"}, "delta"), ({"delta": "1"}, "reason")]:
        assert_error(api.post("/api/v1/products/BOLT-M8/stock", json=body), 422, field=field)
    assert_error(api.post("/api/v1/products/NOPE/stock", json={"delta": "1", "reason": "r"}), 404)
    assert api.get("/api/v1/products/BOLT-M8").json["on_hand"] == "10"


def test_bad_pagination_queries_ids_and_routes(seeded):
    api, customer = seeded
    for path in ("/api/v1/contracts", "/api/v1/customers", "/api/v1/products", "/api/v1/users"):
        for params, field in [({"limit": "500"}, "limit"), ({"limit": "201"}, "limit"), ({"limit": "0"}, "limit"),
                              ({"limit": "abc"}, "limit"), ({"offset": "-1"}, "offset"), ({"offset": "x"}, "offset"),
                              ({"limit": "1.5"}, "limit"), ({"limit": "５"}, "limit"), ({"limit": "1_0"}, "limit"),
                              ({"offset": "--1"}, "offset")]:
            assert_error(api.get(path, params=params), 422, field=field)
        assert api.get(path, params={"limit": "200", "offset": "0"}).status_code == 200
    assert_error(api.get("/api/v1/contracts", params={"status": "bogus"}), 422, field="status")
    assert_error(api.get("/api/v1/contracts", params={"colour": "red"}), 422, field="colour")
    for path in ("/api/v1/contracts/nope", "/api/v1/customers/nope", "/api/v1/products/NOPE",
                 "/api/v1/contracts/nope/timeline", "/api/v1/no-such-thing"):
        assert_error(api.get(path), 404)
    assert_error(api.post("/api/v1/contracts/nope/confirm"), 404)
    assert_error(api.request("DELETE", "/api/v1/contracts"), 405)
    # State conflicts are 409, and a contract's customer never changes.
    contract = api.contract(customer["id"], [("BOLT-M8", 1)])
    other = api.customer(name="Other Ltd")
    assert_error(api.patch(f"/api/v1/contracts/{contract['id']}", json={"customer_id": other["id"]}), 409,
                 field="customer_id")
    assert_error(api.patch(f"/api/v1/contracts/{contract['id']}", json={"lines": [line("-2")]}), 422,
                 field="lines.0.quantity")
    assert_error(api.patch(f"/api/v1/contracts/{contract['id']}",
                           json={"lines": [line("1000000000", unit_price="1000000000000")]}), 422,
                 field="lines.0.quantity")
    assert api.get("/api/v1/contracts").json["items"][0]["total"] == contract["total"]
    assert api.post(f"/api/v1/contracts/{contract['id']}/confirm").status_code == 200
    assert_error(api.post(f"/api/v1/contracts/{contract['id']}/confirm"), 409)
    assert_error(api.patch(f"/api/v1/contracts/{contract['id']}", json={"payment_terms": "later"}), 409)
    # The same Idempotency-Key with another body is refused.
    key = {"Idempotency-Key": "k-1"}
    assert api.post("/api/v1/customers", json={"name": "Idem"}, headers=key).status_code == 201
    assert_error(api.post("/api/v1/customers", json={"name": "Idem 2"}, headers=key), 422)


# Raw bodies: a lone surrogate cannot even be encoded by a client library, but it can be sent as a \\u escape.
NOT_TEXT = [
    ("/api/v1/customers", b'{"name": "a\\u0000b"}', "name"),
    ("/api/v1/customers", b'{"name": "A", "address": "\\udfff"}', "address"),
    ("/api/v1/customers", b'{"name": "A", "contact_person": "\\u0007\\u001b[31m"}', "contact_person"),
    ("/api/v1/customers", b'{"na\\u0000me": "A"}', "na\ufffdme"),
    ("/api/v1/contracts", b'{"customer_id": "\\ud800", "lines": []}', "customer_id"),
    ("/api/v1/contracts", b'{"lines": [{"product_code": "\\uD800", "quantity": "1"}]}', "lines.0.product_code"),
    ("/api/v1/quotes", b'{"notes": "\\ud800"}', "notes"),
    ("/api/v1/auth/token", b'{"username": "admin\\ud800", "password": "x"}', "username"),
    ("/api/v1/users", "{\"username\": \"x\\u0000\"}".encode("utf-16"), "username"),
]


def test_text_no_field_can_hold_answers_422_naming_the_field(seeded):
    api, customer = seeded
    for path, body, field in NOT_TEXT:
        assert_error(raw_post(api, path, body), 422, field=field, code="validation_error")
    assert_error(api.get("/api/v1/contracts", params={"customer_id": "\x00"}), 422, field="customer_id")
    for constant in (b"NaN", b"-Infinity", b"1e400"):
        body = b'{"default_installments": [{"label": "x", "percent": ' + constant + b"}]}"
        assert_error(api.request("PUT", "/api/v1/settings", data=body, headers={"Content-Type": "application/json"}),
                     400, field="_body")
    assert api.get("/api/v1/customers").json["total"] == 1
    assert api.get("/api/v1/settings").status_code == 200
    # What text does hold passes untouched: a surrogate pair (an emoji), tabs and new lines, a right-to-left mark.
    kept = {"name": "明远 😀", "address": "宁波市\n江北区\t1号", "contact_person": "\u202e王"}
    created = raw_post(api, "/api/v1/customers", json.dumps(kept).encode())
    assert created.status_code == 201, created
    assert {k: created.json[k] for k in kept} == kept


def test_tokens_are_required_and_checked(seeded):
    api, _ = seeded
    nobody = api.as_token(None)
    assert_error(nobody.get("/api/v1/contracts"), 401)
    assert_error(api.as_token("garbage").get("/api/v1/contracts"), 401)
    assert_error(nobody.get("/api/v1/contracts", headers={"Authorization": "Basic YWRtaW46eA=="}), 401)
    assert_error(nobody.post("/api/v1/auth/token", json={"username": "admin", "password": "wrong"}, auth=False),
                 401)
    assert_error(nobody.post("/api/v1/auth/token", json={"username": "admin"}, auth=False), 422, field="password")
    assert_error(raw_post(nobody, "/api/v1/auth/token", b"{oops"), 400)


def test_a_salesperson_cannot_reach_another_salespersons_customer_or_contract(seeded):
    api, _ = seeded
    alice, bob = api.user("alice"), api.user("bob")
    theirs = alice.customer(name="Alice's customer")
    contract = alice.contract(theirs["id"], [("BOLT-M8", 1)])
    cid, kid = contract["id"], theirs["id"]
    for response in (bob.get(f"/api/v1/customers/{kid}"),
                     bob.patch(f"/api/v1/customers/{kid}", json={"name": "x"}),
                     bob.get(f"/api/v1/contracts/{cid}"),
                     bob.patch(f"/api/v1/contracts/{cid}", json={"lines": [line()]}),
                     bob.post(f"/api/v1/contracts/{cid}/confirm"), bob.post(f"/api/v1/contracts/{cid}/cancel"),
                     bob.get(f"/api/v1/contracts/{cid}/timeline")):
        assert_error(response, 404)
    assert_error(bob.post("/api/v1/contracts", json={"customer_id": kid, "lines": [line()]}), 422,
                 field="customer_id")
    assert bob.get("/api/v1/customers").json["total"] == 0
    assert bob.get("/api/v1/contracts", params={"customer_id": kid}).json["total"] == 0
    assert bob.get("/api/v1/contracts").json["total"] == 0
    # Nothing Bob tried changed Alice's records.
    mine = alice.get(f"/api/v1/contracts/{cid}").json
    assert (mine["status"], mine["version"]) == ("draft", 1)
    assert alice.get(f"/api/v1/customers/{kid}").json["name"] == "Alice's customer"
    # Products are the company's catalogue: a salesperson reads it but cannot change it.
    assert bob.get("/api/v1/products/BOLT-M8").status_code == 200
    assert_error(bob.post("/api/v1/products/BOLT-M8/stock", json={"delta": "5", "reason": "r"}), 403)


def subset(api):
    """The checks that go through real HTTP, gunicorn and the gateway's forwarding to inventory."""
    api.product("BOLT-M8", stock=10)
    customer = api.customer()
    assert_error(raw_post(api, "/api/v1/contracts", b'{"customer_id": '), 400)
    assert_error(raw_post(api, "/api/v1/products", b"[1, 2]"), 400)                 # forwarded to inventory
    assert_error(raw_post(api, "/api/v1/contracts", b"[" * 100_000 + b"]" * 100_000), 400)
    assert_error(api.post("/api/v1/contracts", json={"customer_id": customer["id"], "lines": [line(1.5)]}), 422,
                 field="lines.0.quantity")
    assert_error(api.post("/api/v1/contracts", json={"customer_id": customer["id"],
                                                     "lines": [{"product_code": "NOPE", "quantity": "1"}]}),
                 422, field="lines.0.product_code")
    assert_error(api.post("/api/v1/contracts", json={"customer_id": "nobody", "lines": [line()]}), 422,
                 field="customer_id")
    assert_error(api.post("/api/v1/products", json={"code": "N-1", "name": "n", "unit": "件",
                                                    "unit_price": 1.5}), 422, field="unit_price")
    huge = json.dumps({"customer_id": customer["id"], "lines": [line()], "payment_terms": "x" * LIMIT}).encode()
    assert_error(raw_post(api, "/api/v1/contracts", huge), 413)
    assert_error(raw_post(api, "/api/v1/products", huge), 413)
    assert_error(api.get("/api/v1/contracts", params={"limit": "500"}), 422, field="limit")
    assert_error(api.get("/api/v1/products", params={"offset": "-1"}), 422, field="offset")
    assert_error(api.post("/api/v1/contracts", json={"customer_id": customer["id"],
                                                     "lines": [line("1000000000", unit_price="1000000000000")]}),
                 422, field="lines.0.quantity")
    # NUL, which PostgreSQL text cannot hold, in a body, a query and a path
    assert_error(raw_post(api, "/api/v1/customers", b'{"name": "a\\u0000b"}'), 422, field="name")
    assert_error(raw_post(api, "/api/v1/products", b'{"code": "N-1", "name": "\\u0000"}'), 422, field="name")
    assert_error(api.get("/api/v1/contracts", params={"customer_id": "\x00"}), 422, field="customer_id")
    assert_error(api.get("/api/v1/contracts/%00"), 404)
    assert_error(api.get("/api/v1/products/%00"), 404)
    bob = api.user("bob")
    assert_error(bob.get(f"/api/v1/customers/{customer['id']}"), 404)
    assert api.get("/api/v1/contracts").json["total"] == 0
    assert api.get("/api/v1/customers").json["total"] == 1


@pytest.mark.e2e
def test_a_chunked_body_past_the_limit_answers_413_not_a_truncated_400(cluster):
    """Without Content-Length the size is known only by reading: the limit still holds, and says so."""
    api = cluster.api
    customer = api.customer()
    api.product("BOLT-M8", stock=10)
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}

    def chunks(body: bytes):
        for start in range(0, len(body), 65536):
            yield body[start:start + 65536]

    huge = json.dumps({"customer_id": customer["id"], "lines": [line()], "payment_terms": "x" * LIMIT}).encode()
    response = api.session.post(f"{api.base_url}/api/v1/contracts", data=chunks(huge), headers=headers)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    small = json.dumps({"customer_id": customer["id"], "lines": [line()]}).encode()
    response = api.session.post(f"{api.base_url}/api/v1/contracts", data=chunks(small), headers=headers)
    assert response.status_code == 201, response.text
    assert api.get("/api/v1/contracts").json["total"] == 1


def test_the_cluster_subset_in_embedded_mode(embedded):
    subset(embedded.api)


@pytest.mark.e2e
def test_the_same_refusals_over_real_http_on_rabbitmq_and_postgresql(cluster):
    subset(cluster.api)


def raw_http(port: int, request: bytes) -> tuple[int, dict]:
    """Send bytes no HTTP library would, and read the answer's status and JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    return int(head.split()[1]), json.loads(body)


@pytest.mark.e2e
def test_what_the_web_server_refuses_itself_is_json_too(cluster):
    """Refused before any app sees it (too long, malformed): the same JSON error shape, not an HTML page."""
    api, port = cluster.api, cluster.ports["contracts"]
    status, body = raw_http(port, b"GET /api/v1/contracts?q=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, body["error"]["code"]) == (414, "uri_too_long"), body
    status, body = raw_http(port, b"GET /api/v1/contracts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                            + b"x" * 9000 + b"\r\n\r\n")
    assert (status, body["error"]["code"]) == (431, "headers_too_large"), body
    status, body = raw_http(port, b"GET /api/v1/contracts HTTP/9.9 nonsense\r\n\r\n")
    assert (status, body["error"]["code"]) == (400, "bad_request"), body
    # A long query that is still a fair request reaches the app, which answers it.
    assert api.get("/api/v1/products", params={"q": "x" * 5000}).status_code in (200, 422)
