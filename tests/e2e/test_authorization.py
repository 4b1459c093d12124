"""Object-level authorization: every endpoint that takes an id, called by someone who must not reach the object.

Salesperson Alice owns a full set of records (customer, quote, contract, delivery note, receivables, recurring
schedule, email, PDF, department messages). Bob (another salesperson), a procurement department user and a caller
without a token then try every endpoint below on Alice's ids. Bob gets 404 — the answer for an id that does not
exist, so nothing is learned — except where his role is refused outright (403 for anyone of his role, real id
or not). To cover a new endpoint, add a row to ENDPOINTS (or LISTS, REFERENCES, MASS_ASSIGNMENT).
"""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from support.infra import wait_for

IN_A_MONTH = (date.today() + timedelta(days=30)).isoformat()
PLAN = {"installments": [{"label": "预付款", "percent": "30", "due_days_after": {"event": "signing", "days": 0}},
                         {"label": "尾款", "percent": "70", "due_date": IN_A_MONTH}]}

# (method, path, body, what Bob gets). Path placeholders are the seeded ids of Alice's records; Bob's answer
# must also be what he gets for a made-up id of the same kind. The department user gets 403 or 404 and a caller
# without a token 401, everywhere.
ENDPOINTS = [
    ("GET", "/customers/{customer}", None, 404),
    ("PATCH", "/customers/{customer}", {"name": "taken over"}, 404),
    ("GET", "/quotes/{quote}", None, 404),
    ("PATCH", "/quotes/{quote}", {"notes": "taken over"}, 404),
    ("POST", "/quotes/{quote}/send", None, 404),
    ("POST", "/quotes/{quote}/accept", None, 404),
    ("POST", "/quotes/{quote}/reject", {"reason": "no"}, 404),
    ("GET", "/quotes/{quote}/pdf", None, 404),
    ("POST", "/quotes/{quote}/contract", None, 404),
    ("GET", "/contracts/{contract}", None, 404),
    ("PATCH", "/contracts/{contract}", {"payment_terms": "taken over"}, 404),
    ("POST", "/contracts/{contract}/confirm", None, 404),
    ("POST", "/contracts/{contract}/cancel", None, 404),
    ("GET", "/contracts/{contract}/timeline", None, 404),
    ("GET", "/contracts/{contract}/pdf", None, 404),
    ("POST", "/contracts/{contract}/send", {"to": "thief@example.com"}, 404),
    ("POST", "/contracts/{contract}/delivery-notes", {}, 404),
    ("GET", "/contracts/{contract}/delivery-notes", None, 404),
    ("POST", "/contracts/{contract}/receivables-plan", PLAN, 404),
    ("GET", "/contracts/{contract}/receivables", None, 404),
    ("GET", "/delivery-notes/{note}", None, 404),
    ("POST", "/delivery-notes/{note}/ship", None, 404),
    ("GET", "/delivery-notes/{note}/pdf", None, 404),
    ("GET", "/receivables/{receivable}", None, 404),
    ("POST", "/receivables/{receivable}/payments", {"amount": "1.00", "reference": "theft"}, 404),
    ("POST", "/receivables/{receivable}/payments/{payment}/void", {"reason": "theft"}, 404),
    ("GET", "/recurring-contracts/{schedule}", None, 404),
    ("POST", "/recurring-contracts/{schedule}/pause", None, 404),
    ("POST", "/recurring-contracts/{schedule}/resume", None, 404),
    ("GET", "/emails/{email}", None, 404),
    # Users are an admin's to change: Bob may not even disable Alice.
    ("PATCH", "/users/{alice_id}", {"active": False}, 403),
    # Stored PDFs are read by managers and admins only; a salesperson gets his own through the routes above.
    ("GET", "/documents/{document}", None, 403),
    ("GET", "/documents/{document}/content", None, 403),
    ("GET", "/documents/latest?kind=contract&owner_id={contract}", None, 403),
    # Department inboxes: only that department (and managers) read them; the sales inbox is per salesperson.
    ("GET", "/departments/production/notifications", None, 403),
    ("POST", "/departments/production/notifications/{production_message}/ack", None, 403),
    ("POST", "/departments/finance/notifications/{finance_message}/ack", None, 403),
    ("POST", "/departments/warehouse/notifications/{warehouse_message}/ack", None, 403),
    ("POST", "/departments/sales/notifications/{sales_message}/ack", None, 404),
]

# Lists: (path, the seeded ids that must not show up for Bob). Bob's own rows must show up.
LISTS = [
    ("/customers", ["customer"]),
    ("/quotes", ["quote"]),
    ("/quotes?customer_id={customer}", ["quote"]),
    ("/contracts", ["contract"]),
    ("/contracts?customer_id={customer}", ["contract"]),
    ("/receivables", ["receivable"]),
    ("/receivables?customer_id={customer}", ["receivable"]),
    ("/receivables?contract_id={contract}", ["receivable"]),
    ("/recurring-contracts", ["schedule"]),
    ("/recurring-contracts?source_contract_id={contract}", ["schedule"]),
    ("/emails", ["email"]),
    ("/emails?contract_id={contract}", ["email"]),
    ("/departments/sales/notifications", ["sales_message"]),
]

# Creates that name one of Alice's records in the body: (path, body, the field the refusal names).
REFERENCES = [
    ("/contracts", {"customer_id": "{customer}", "lines": [{"product_code": "PUMP-1", "quantity": "1"}]},
     "customer_id"),
    ("/contracts", {"quote_id": "{quote}"}, "quote_id"),
    ("/quotes", {"customer_id": "{customer}", "lines": [{"product_code": "PUMP-1", "quantity": "1"}]},
     "customer_id"),
    ("/recurring-contracts", {"source_contract_id": "{contract}", "interval": "monthly",
                              "start_date": IN_A_MONTH}, "source_contract_id"),
]

# Fields a caller may not set: (method, path, body, field, role). 422 (or 403) naming the field, or the value is
# ignored.
MASS_ASSIGNMENT = [
    ("POST", "/customers", {"name": "M1", "owner": "{bob_id}"}, "owner", "sales"),
    ("PATCH", "/customers/{customer}", {"owner": "{bob_id}"}, "owner", "sales"),
    ("POST", "/customers", {"name": "M2", "id": "chosen-id"}, "id", "sales"),
    ("POST", "/customers", {"name": "M3", "created_at": "2000-01-01T00:00:00Z"}, "created_at", "sales"),
    *[("POST", "/contracts", {"customer_id": "{customer}", "lines": [{"product_code": "PUMP-1", "quantity": "1"}],
                              field: value}, field, "sales")
      for field, value in [("status", "confirmed"), ("number", "HT-1999-000001"), ("id", "chosen-id"),
                           ("created_by", "{bob_id}"), ("owner_id", "{bob_id}"), ("stock_status", "reserved"),
                           ("document_id", "forged-document"), ("version", 99), ("total", "0.01"),
                           ("confirmed_at", "2000-01-01T00:00:00Z"), ("recurring_id", "forged")]],
    *[("POST", "/contracts", {"customer_id": "{customer}",
                              "lines": [{"product_code": "PUMP-1", "quantity": "1", field: value}]},
       f"lines.0.{field}", "sales")
      for field, value in [("reserved", "1"), ("delivered", "1"), ("amount", "0.01"), ("tax_rate", "0"),
                           ("name", "forged")]],
    *[("PATCH", "/contracts/{draft}", {field: value}, field, "sales")
      for field, value in [("status", "confirmed"), ("number", "HT-1999-000001"), ("stock_status", "reserved"),
                           ("document_id", "forged-document"), ("created_by", "{bob_id}"), ("id", "other"),
                           ("owner_id", "{bob_id}")]],
    *[("POST", "/products", {"code": f"MA-{i}", "name": "p", "unit": "件", "unit_price": "1.00", field: value},
       field, "admin")
      for i, (field, value) in enumerate([("on_hand", "1000"), ("reserved", "5"), ("available", "9")])],
    *[("POST", "/quotes", {"customer_id": "{customer}", "lines": [{"product_code": "PUMP-1", "quantity": "1"}],
                           field: value}, field, "sales")
      for field, value in [("status", "accepted"), ("number", "QT-1999-000001"), ("contract_id", "{contract}"),
                           ("owner_id", "{bob_id}"), ("created_by", "{bob_id}")]],
    ("PATCH", "/quotes/{draft_quote}", {"status": "accepted"}, "status", "sales"),
    ("POST", "/contracts/{contract}/delivery-notes", {"status": "shipped"}, "status", "sales"),
    ("POST", "/receivables/{open_receivable}/payments", {"amount": "1.00", "status": "paid"}, "status", "sales"),
    ("POST", "/receivables/{open_receivable}/payments", {"amount": "1.00", "paid_amount": "999"}, "paid_amount",
     "sales"),
    *[("POST", "/recurring-contracts", {"source_contract_id": "{contract}", "interval": "monthly",
                                        "start_date": IN_A_MONTH, field: value}, field, "sales")
      for field, value in [("status", "paused"), ("owner_id", "{bob_id}"), ("runs", []),
                           ("next_run_on", "2000-01-01"), ("customer_id", "forged")]],
]


def fill(template, ids: dict):
    """The template (a path or a JSON body) with {name} placeholders replaced by seeded ids."""
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {k: fill(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, ids) for v in template]
    return template


def call(client, method: str, path: str, body=None):
    path, _, query = path.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&")) if query else None
    return client.request(method, "/api/v1" + path, json=body, params=params)


def assert_error(response, statuses, context=None) -> dict:
    statuses = (statuses,) if isinstance(statuses, int) else statuses
    assert response.status_code in statuses, (context, response)
    assert response.headers["Content-Type"].startswith("application/json"), (context, response.headers)
    error = response.json["error"]
    assert set(error) <= {"code", "message", "fields"} and error["code"] and error["message"], (context, error)
    return error


# --------------------------------------------------------------------------- the seed

def seed(api) -> tuple[dict, dict]:
    """Alice's records of every kind, settled (PDFs rendered, emails sent, messages posted); and the clients."""
    api.product("PUMP-1", stock=100, price="1000.00", name="离心泵", unit="台")
    alice = api.user("alice", "sales", email="alice@example.cn", department="sales")
    bob = api.user("bob", "sales", email="bob@example.cn", department="sales")
    buyer = api.user("buyer-1", "department", department="procurement")
    clients = {"alice": alice, "bob": bob, "department": buyer, "nobody": api.as_token(None), "admin": api}

    customer = alice.customer(name="杭州明远机械有限公司", email="buyer@example.cn")
    quote = alice.post("/api/v1/quotes", json={"customer_id": customer["id"], "valid_until": IN_A_MONTH,
                                               "lines": [{"product_code": "PUMP-1", "quantity": "4"}]}).json
    assert alice.post(f"/api/v1/quotes/{quote['id']}/send").status_code == 200
    assert alice.post(f"/api/v1/quotes/{quote['id']}/accept").status_code == 200
    made = alice.post("/api/v1/contracts", json={"quote_id": quote["id"], "send_to_customer": True, "confirm": True,
                                                 "notify_departments": ["production", "finance"]})
    assert made.status_code == 201 and made.json["status"] == "confirmed", made
    contract = made.json
    cid = contract["id"]
    wait_for(lambda: alice.get(f"/api/v1/contracts/{cid}").json["stock_status"] == "reserved", timeout=60,
             message="stock reserved")
    note = alice.post(f"/api/v1/contracts/{cid}/delivery-notes",
                      json={"lines": [{"product_code": "PUMP-1", "quantity": "1"}]})
    assert note.status_code == 201, note
    plan = alice.post(f"/api/v1/contracts/{cid}/receivables-plan", json=PLAN)
    assert plan.status_code == 201, plan
    receivable = plan.json["items"][0]
    # Paid in full, so receivable.paid also puts a message in Alice's part of the sales inbox.
    paid = alice.post(f"/api/v1/receivables/{receivable['id']}/payments", json={"amount": receivable["amount"]})
    assert paid.status_code == 201, paid
    schedule = alice.post("/api/v1/recurring-contracts", json={"source_contract_id": cid, "interval": "monthly",
                                                               "start_date": IN_A_MONTH})
    assert schedule.status_code == 201, schedule
    sent = alice.post(f"/api/v1/contracts/{cid}/send", json={})
    assert sent.status_code == 202, sent
    draft = alice.contract(customer["id"], [("PUMP-1", 1)])
    draft_quote = alice.post("/api/v1/quotes", json={"customer_id": customer["id"],
                                                     "lines": [{"product_code": "PUMP-1", "quantity": "1"}]}).json

    document_id = wait_for(lambda: alice.get(f"/api/v1/contracts/{cid}").json["document_id"], timeout=90,
                           message="the contract PDF")
    email_id = sent.json["email_id"]
    wait_for(lambda: alice.get(f"/api/v1/emails/{email_id}").json["status"] == "sent", timeout=90,
             message="the email sent")

    def message(department, reason):
        def find():
            items = api.get(f"/api/v1/departments/{department}/notifications", params={"limit": 200}).json["items"]
            return next((m["id"] for m in items if m["reason"] == reason and (m["contract"] or {}).get("id") == cid),
                        None)
        return wait_for(find, timeout=60, message=f"{department} {reason}")

    ids = {"customer": customer["id"], "quote": quote["id"], "contract": cid, "note": note.json["id"],
           "receivable": receivable["id"], "open_receivable": plan.json["items"][1]["id"],
           "payment": paid.json["payments"][0]["id"],
           "schedule": schedule.json["id"], "email": email_id,
           "document": document_id, "draft": draft["id"], "draft_quote": draft_quote["id"],
           "production_message": message("production", "contract_confirmed"),
           "finance_message": message("finance", "receivables_planned"),
           "warehouse_message": message("warehouse", "delivery_created"),
           "sales_message": message("sales", "receivable_paid"),
           "bob_id": bob.get("/api/v1/users/me").json["id"], "alice_id": alice.get("/api/v1/users/me").json["id"]}
    wait_for(lambda: alice.get(f"/api/v1/delivery-notes/{ids['note']}/pdf").status_code == 200, timeout=90,
             message="the delivery note PDF")
    wait_for(lambda: alice.get(f"/api/v1/quotes/{ids['quote']}/pdf").status_code == 200, timeout=90,
             message="the quote PDF")
    return ids, clients


def snapshot(admin, ids: dict) -> dict:
    """What a refused call could have changed, read as the admin."""
    def get(path, *keys):
        body = admin.get("/api/v1" + path).json
        return tuple(body.get(k) for k in keys)
    inbox = {name: {m["id"]: m["acked_at"] for m in admin.get(f"/api/v1/departments/{name}/notifications",
                                                              params={"limit": 200}).json["items"]}
             for name in ("production", "finance", "warehouse", "sales")}
    return {
        "customer": get(f"/customers/{ids['customer']}", "name", "owner", "email"),
        "quote": get(f"/quotes/{ids['quote']}", "status", "notes", "contract_id"),
        "contract": get(f"/contracts/{ids['contract']}", "status", "version", "payment_terms", "owner_id"),
        "draft": get(f"/contracts/{ids['draft']}", "status", "version", "payment_terms", "owner_id"),
        "notes": admin.get(f"/api/v1/contracts/{ids['contract']}/delivery-notes").json["total"],
        "note": get(f"/delivery-notes/{ids['note']}", "status"),
        "receivables": [(r["id"], r["paid_amount"], r["status"]) for r in
                        admin.get(f"/api/v1/contracts/{ids['contract']}/receivables").json["items"]],
        "schedule": get(f"/recurring-contracts/{ids['schedule']}", "status", "next_run_on"),
        "emails": admin.get("/api/v1/emails", params={"contract_id": ids["contract"]}).json["total"],
        "contracts": admin.get("/api/v1/contracts").json["total"],
        "quotes": admin.get("/api/v1/quotes").json["total"],
        "inbox": inbox,
    }


@pytest.fixture
def world(embedded):
    ids, clients = seed(embedded.api)
    # Bob has records of his own, so his lists are not empty by accident.
    bob = clients["bob"]
    own = bob.customer(name="Bob's customer", email="bob-buyer@example.cn")
    bob.contract(own["id"], [("PUMP-1", 1)])
    return ids, clients


# --------------------------------------------------------------------------- the matrix

def fake_ids(ids: dict) -> dict:
    return {k: ("no-such-" + k if k not in ("bob_id", "alice_id") else v) for k, v in ids.items()}


def test_nobody_reaches_another_salespersons_records(world):
    ids, clients = world
    admin, bob, buyer, nobody = clients["admin"], clients["bob"], clients["department"], clients["nobody"]
    before = snapshot(admin, ids)

    seen = set()
    for method, template, body, bob_gets in ENDPOINTS:
        path, payload = fill(template, ids), fill(body, ids)
        seen.add((method, template.split("?")[0]))
        bobs = call(bob, method, path, payload)
        error = assert_error(bobs, bob_gets, ("bob", method, path))
        # The same answer as for an id that does not exist: the refusal tells nothing about Alice's record.
        made_up = call(bob, method, fill(template, fake_ids(ids)), fill(body, fake_ids(ids)))
        assert (made_up.status_code, made_up.json["error"]["code"]) == (bobs.status_code, error["code"]), \
            (method, path, bobs, made_up)
        for word in ("alice", "杭州明远", ids["customer"]):
            assert word not in bobs.content.decode(), (method, path, bobs)
        assert_error(call(buyer, method, path, payload), (403, 404), ("department", method, path))
        assert_error(call(nobody, method, path, payload), 401, ("no token", method, path))
        assert_error(call(bob.as_token("not-a-token"), method, path, payload), 401, ("bad token", method, path))

    # The refusals changed nothing: same states, no new notes, payments, emails, contracts or acks.
    assert snapshot(admin, ids) == before

    # The rows are real: Alice (or, for the documents, a manager) reaches each readable one.
    manager = admin.user("mgr", "manager")
    for method, template, _, bob_gets in ENDPOINTS:
        if method == "GET":
            owner = manager if bob_gets == 403 else clients["alice"]
            assert call(owner, "GET", fill(template, ids)).status_code == 200, template


def test_every_route_taking_an_id_is_in_the_matrix(embedded):
    """A new route with an id in its path fails this until it has a row in ENDPOINTS."""
    import re
    from crmkit.web.client import LOCAL_APPS

    def shape(path: str) -> str:
        path = re.sub(r"/departments/(production|procurement|warehouse|finance|sales)/", "/departments/{}/", path)
        return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path.split("?")[0])

    covered = {(method, shape(template)) for method, template, _, _ in ENDPOINTS}
    missing = set()
    for service, app in LOCAL_APPS.items():
        for rule in app.url_map.iter_rules():
            path = rule.rule.removeprefix("/api/v1")
            if not rule.arguments or not rule.rule.startswith("/api/v1/"):
                continue
            if "<path:" in path or path.startswith(("/products/", "/admin/")):
                continue  # the proxy's catch-all; the shared catalogue; admin-only tools
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                if (method, shape(path)) not in covered:
                    missing.add((service, method, path))
    assert not missing, f"routes with an id missing from ENDPOINTS: {sorted(missing)}"


def test_lists_never_show_another_salespersons_rows(world):
    ids, clients = world
    bob, buyer, alice = clients["bob"], clients["department"], clients["alice"]
    for template, hidden in LISTS:
        path = fill(template, ids)
        mine = call(alice, "GET", path)
        assert mine.status_code == 200 and mine.json["total"] >= 1, (path, mine)
        assert {ids[h] for h in hidden} <= {row["id"] for row in mine.json["items"]}, path
        bobs = call(bob, "GET", path)
        assert bobs.status_code == 200 and set(bobs.json) == {"items", "total"}, (path, bobs)
        shown = {row["id"] for row in bobs.json["items"]}
        assert not shown & {ids[h] for h in hidden}, (path, bobs)
        assert ids["alice_id"] not in bobs.content.decode() and "杭州明远" not in bobs.content.decode(), path
        assert bobs.json["total"] == len(bobs.json["items"]), (path, bobs)
        theirs = call(buyer, "GET", path)
        if theirs.status_code == 200:  # an empty list is as good as a refusal
            assert theirs.json == {"items": [], "total": 0}, (path, theirs)
        else:
            assert_error(theirs, (403, 404), ("department", path))
        assert_error(call(clients["nobody"], "GET", path), 401, ("no token", path))
    # Bob's own rows do show.
    assert bob.get("/api/v1/customers").json["total"] == 1 and bob.get("/api/v1/contracts").json["total"] == 1
    # A department user reads their own inbox.
    assert buyer.get("/api/v1/departments/procurement/notifications").status_code == 200


def test_ids_in_request_bodies_are_checked_too(world):
    ids, clients = world
    admin, bob = clients["admin"], clients["bob"]
    before = snapshot(admin, ids)
    for path, body, field in REFERENCES:
        response = call(bob, "POST", path, fill(body, ids))
        error = assert_error(response, (404, 422), ("bob", path))
        assert field in (error.get("fields") or {}), (path, error)
    assert snapshot(admin, ids) == before


# --------------------------------------------------------------------------- mass assignment

def test_fields_a_caller_may_not_set_are_refused_or_ignored(world):
    ids, clients = world
    admin, alice = clients["admin"], clients["alice"]
    clients = {"sales": alice, "admin": admin}
    for method, template, body, field, role in MASS_ASSIGNMENT:
        path, payload = fill(template, ids), fill(body, ids)
        response = call(clients[role], method, path, payload)
        top = field.split(".")[0]
        if response.status_code in (403, 422):
            error = assert_error(response, response.status_code)
            assert field in error.get("fields", {}), (method, path, field, error)
            continue
        assert response.status_code in (200, 201), (method, path, field, response)
        taken = response.json
        if top == "lines":
            line_field = field.split(".")[-1]
            assert taken["lines"][0][line_field] != payload["lines"][0][line_field], (path, field, taken)
        else:
            assert taken.get(top) != payload[top], (method, path, field, taken)
    # Where a value could have been ignored silently, the records say who really owns them.
    customer = alice.get(f"/api/v1/customers/{ids['customer']}").json
    assert customer["owner"] == ids["alice_id"]
    for row in alice.get("/api/v1/customers", params={"limit": 200}).json["items"]:
        assert row["owner"] == ids["alice_id"], row
    assert clients["sales"].get(f"/api/v1/contracts/{ids['draft']}").json["status"] == "draft"
    # Roles are not self-assigned: a salesperson cannot make users or change the company's settings.
    assert_error(alice.post("/api/v1/users", json={"username": "mallory", "password": "password-123",
                                                   "role": "admin"}), 403)
    assert_error(alice.put("/api/v1/settings", json={"shortage_policy": "warn_sales"}), 403)
    assert_error(alice.post("/api/v1/products", json={"code": "X-1", "name": "x", "unit": "件",
                                                      "unit_price": "1.00"}), 403)


def test_a_salesperson_is_told_they_cannot_hand_a_customer_over(world):
    ids, clients = world
    alice, admin = clients["alice"], clients["admin"]
    for response in (alice.post("/api/v1/customers", json={"name": "Handed over", "owner": ids["bob_id"]}),
                     alice.patch(f"/api/v1/customers/{ids['customer']}", json={"owner": ids["bob_id"]})):
        assert "owner" in assert_error(response, 403)["fields"]
    assert alice.get(f"/api/v1/customers/{ids['customer']}").json["owner"] == ids["alice_id"]
    assert alice.post("/api/v1/customers", json={"name": "Mine", "owner": ids["alice_id"]}).status_code == 201
    moved = admin.patch(f"/api/v1/customers/{ids['customer']}", json={"owner": ids["bob_id"]})
    assert moved.status_code == 200 and moved.json["owner"] == ids["bob_id"]


def test_a_timeline_page_past_its_end_is_empty_for_its_owner_and_not_found_for_others(world):
    """The timeline checks access in the statement that reads it, so an empty page is looked at twice: past the end
    of one's own contract it is an empty page, on someone else's it is still the 404 of an unknown id."""
    ids, clients = world
    alice, bob = clients["alice"], clients["bob"]
    path = f"/api/v1/contracts/{ids['contract']}/timeline"
    whole = alice.get(path, params={"limit": 200}).json
    assert whole["total"] == len(whole["items"]) > 3
    assert alice.get(path, params={"offset": 2, "limit": 1}).json == {"items": whole["items"][2:3],
                                                                       "total": whole["total"]}
    past = alice.get(path, params={"offset": whole["total"]})
    assert past.status_code == 200 and past.json == {"items": [], "total": whole["total"]}
    for params in ({}, {"offset": whole["total"]}):
        assert_error(bob.get(path, params=params), 404, ("bob", params))


def test_searching_finds_only_what_the_caller_may_see(embedded):
    api = embedded.api
    api.product("FAN", stock=10, price="9.90")
    alice, bob = api.user("alice-s"), api.user("bob-s")
    mingyuan = alice.customer(name="杭州明远机械有限公司", contact_person="王经理", phone="0571-8888 1234")
    other = alice.customer(name="Ningbo 100%_Trading", email="buy@nb-trading.cn")
    bobs = bob.customer(name="明远贸易（宁波）")
    mine = alice.contract(mingyuan["id"], [("FAN", 1)])
    alice.contract(other["id"], [("FAN", 1)])
    bob.contract(bobs["id"], [("FAN", 1)])

    def names(client, path, q):
        r = client.get(path, params={"q": q})
        assert r.status_code == 200, r
        return sorted(item.get("name") or item["number"] for item in r.json["items"])

    assert names(alice, "/api/v1/customers", "明远") == ["杭州明远机械有限公司"]  # not bob's 明远
    assert names(api, "/api/v1/customers", "明远") == ["明远贸易（宁波）", "杭州明远机械有限公司"]
    assert names(alice, "/api/v1/customers", "王经理") == ["杭州明远机械有限公司"]
    assert names(alice, "/api/v1/customers", "8888") == ["杭州明远机械有限公司"]
    assert names(alice, "/api/v1/customers", "100%_") == ["Ningbo 100%_Trading"]  # % and _ literally
    assert names(alice, "/api/v1/customers", "%") == ["Ningbo 100%_Trading"]
    assert names(alice, "/api/v1/customers", "NB-TRADING") == ["Ningbo 100%_Trading"]  # any case
    assert names(alice, "/api/v1/contracts", "明远") == [mine["number"]]
    assert names(alice, "/api/v1/contracts", mine["number"][-6:]) == [mine["number"]]
    assert names(bob, "/api/v1/contracts", mine["number"]) == []
    too_long = alice.get("/api/v1/customers", params={"q": "x" * 201})
    assert too_long.status_code == 422 and "q" in too_long.json["error"]["fields"]
