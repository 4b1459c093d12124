"""Injection: header injection in email fields, markup in what the PDF prints, SQL metacharacters everywhere."""
from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import quote as url_quote

from support.infra import wait_for
from support.pdf import pdf_text

IN_A_MONTH = (date.today() + timedelta(days=30)).isoformat()


def assert_error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    error = response.json["error"]
    assert set(error) <= {"code", "message", "fields"} and error["code"] and error["message"], error
    if field:
        assert field in (error.get("fields") or {}), (field, error)
    return error


# --------------------------------------------------------------------------- email fields

BAD_ADDRESSES = [
    "buyer@example.cn\r\nBcc: victim@example.com",
    "buyer@example.cn\nBcc: victim@example.com",
    "buyer@example.cn\r",
    "buyer@example.cn\u2028Bcc: victim@example.com",
    "buyer@example.cn\x00",
    "buyer@example.cn, victim@example.com",
    "buyer@example.cn;victim@example.com",
    "buyer@example.cn victim@example.com",
    "Buyer <buyer@example.cn>",
    "buyer@example.cn\tvictim@example.com",
    '"buyer@example.cn,victim"@example.com',
    "buyer@example.cn%0d%0aBcc:victim@example.com",
]


def test_line_breaks_and_several_addresses_in_email_fields_are_refused(embedded):
    api = embedded.api
    api.product("BOLT-M8", stock=100, price="12.50")
    customer = api.customer(email="buyer@example.cn")
    contract = api.contract(customer["id"], [("BOLT-M8", 1)], confirm=True)
    settings = api.get("/api/v1/settings").json
    send = f"/api/v1/contracts/{contract['id']}/send"
    for bad in BAD_ADDRESSES:
        assert_error(api.post("/api/v1/customers", json={"name": "X", "email": bad}), 422, "email")
        assert_error(api.patch(f"/api/v1/customers/{customer['id']}", json={"email": bad}), 422, "email")
        assert_error(api.post("/api/v1/users", json={"username": "eve", "password": "password-123", "role": "sales",
                                                     "email": bad}), 422, "email")
        assert_error(api.put("/api/v1/settings", json={**settings, "company": {**settings["company"], "email": bad}}),
                     422, "company.email")
        # a single address is read as a list of one; a control character is refused before, as the body was sent
        error = assert_error(api.post(send, json={"to": bad}), 422)
        assert set(error["fields"]) & {"to", "to.0"}, error
        assert_error(api.post(send, json={"to": ["ok@example.cn", bad]}), 422, "to.1")
        assert_error(api.post(send, json={"cc": [bad]}), 422, "cc.0")
    for subject in ("Contract\r\nBcc: victim@example.com", "Contract\nX-Injected: 1", "Contract\x00"):
        assert_error(api.post(send, json={"subject": subject}), 422, "subject")
    # Nothing of it was kept.
    assert api.get("/api/v1/customers").json["total"] == 1
    assert api.get(f"/api/v1/customers/{customer['id']}").json["email"] == "buyer@example.cn"
    assert [u["username"] for u in api.get("/api/v1/users").json["items"]] == ["admin"]
    assert api.get("/api/v1/settings").json == settings
    assert api.get("/api/v1/emails", params={"contract_id": contract["id"]}).json["total"] == 0


# --------------------------------------------------------------------------- markup in the PDF

SCRIPT = '<script>alert("pwned")</script>'
IMAGE = '<img src="file:///etc/passwd" width="400" height="400"/>'
LINK = '<a href="http://evil.example/steal?c=1">点此付款</a>'
FONT = '<font name="Courier" size="60" color="red">BIG</font>'
ENTITY = "&amp; &lt;b&gt; &#60;i&#62; &nbsp;"
SMALL = "<b>泵</b>"  # fits one table cell line, so the text extraction keeps it whole


def compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_markup_and_links_are_stored_verbatim_and_printed_as_inert_text(embedded):
    api = embedded.api
    settings = api.get("/api/v1/settings").json
    company = {**settings["company"], "name": f"精工{SCRIPT}", "address": LINK, "terms": f"{IMAGE} {FONT} {ENTITY}",
               "footer": SCRIPT}
    saved = api.put("/api/v1/settings", json={**settings, "company": company})
    assert saved.status_code == 200 and {k: saved.json["company"][k] for k in company} == company, saved
    api.product("PUMP-1", stock=10, price="100.00", name=SMALL)
    customer = api.customer(name=SCRIPT, contact_person=FONT, address=IMAGE, language="en", email="x@example.com")
    for key, value in (("name", SCRIPT), ("contact_person", FONT), ("address", IMAGE)):
        assert customer[key] == value and api.get(f"/api/v1/customers/{customer['id']}").json[key] == value
    contract = api.contract(customer["id"], [("PUMP-1", 1)], payment_terms=f"{LINK} {ENTITY}", confirm=True)
    assert contract["payment_terms"] == f"{LINK} {ENTITY}" and contract["customer"]["name"] == SCRIPT
    assert contract["lines"][0]["name"] == SMALL

    response = wait_for(lambda: (r := api.get(f"/api/v1/contracts/{contract['id']}/pdf")).status_code == 200 and r,
                        timeout=90, message="the contract PDF")
    pdf = response.content
    text = compact(pdf_text(pdf))
    for literal in (SCRIPT, IMAGE, LINK, FONT, ENTITY, SMALL, f"精工{SCRIPT}"):
        assert compact(literal) in text, (literal, text[:3000])
    assert "root:" not in text  # /etc/passwd was not read into the document
    # Inert: no link, action, script, embedded file or image object made from the text.
    for marker in (b"/URI", b"/Launch", b"/JavaScript", b"/JS", b"/EmbeddedFile", b"/SubmitForm", b"/Annot",
                   b"/Subtype /Image", b"/Subtype/Image"):
        assert marker not in pdf, marker


# --------------------------------------------------------------------------- SQL metacharacters

META = ["'; DROP TABLE customers; --", "Robert'); DROP TABLE products;--", "100%", "a_b", "back\\slash",
        'say "hi"', "%", "_", "\\", "' OR '1'='1", "\\'; --", "%' --", "O'Brien & Sons", "`; DELETE FROM users`"]
ALL_META = " | ".join(META)


def no_5xx(response):
    assert response.status_code < 500, response
    return response


def test_sql_metacharacters_are_stored_and_returned_verbatim_and_filter_literally(embedded):
    api = embedded.api
    api.product("PLAIN-1", stock=100, price="10.00", name="普通螺母")

    # Customers: every string field, one customer per value.
    customers = {}
    for i, value in enumerate(META):
        created = no_5xx(api.post("/api/v1/customers", json={"name": value, "contact_person": value,
                                                             "address": value, "phone": value[:64]}))
        assert created.status_code == 201, (value, created)
        assert (created.json["name"], created.json["contact_person"], created.json["address"]) == (value,) * 3
        customers[value] = created.json["id"]
        assert api.get(f"/api/v1/customers/{created.json['id']}").json["name"] == value
    listed = api.get("/api/v1/customers", params={"limit": 200}).json
    assert listed["total"] == len(META) and {c["name"] for c in listed["items"]} == set(META)
    patched = api.patch(f"/api/v1/customers/{customers['%']}", json={"name": "_%\\'\""})
    assert patched.status_code == 200 and patched.json["name"] == "_%\\'\"", patched

    # Products: names verbatim, and ?q= matches the typed text literally (no LIKE wildcards).
    for i, value in enumerate(META):
        made = no_5xx(api.post("/api/v1/products", json={"code": f"SQL-{i}", "name": value, "unit": value[:32],
                                                         "unit_price": "1.00"}))
        assert made.status_code == 201 and made.json["name"] == value and made.json["unit"] == value[:32], made
        assert api.get(f"/api/v1/products/SQL-{i}").json["name"] == value
    names = {p["code"]: p["name"] for p in api.get("/api/v1/products", params={"limit": 200}).json["items"]}
    for q in ("%", "_", "\\", "'", '"', "%'", "\\'", "a_b", "100%", "DROP TABLE", "' OR '1'='1", "`", ";"):
        found = no_5xx(api.get("/api/v1/products", params={"q": q}))
        assert found.status_code == 200, (q, found)
        expected = {code for code, name in names.items() if q.lower() in name.lower() or q.lower() in code.lower()}
        assert {p["code"] for p in found.json["items"]} == expected and found.json["total"] == len(expected), q
    assert len(names) == len(META) + 1  # the products table is whole

    # Quotes and contracts: notes and terms verbatim; filters by id and status never match by accident.
    customer_id = customers[META[0]]
    quote = no_5xx(api.post("/api/v1/quotes", json={"customer_id": customer_id, "notes": ALL_META,
                                                    "payment_terms": ALL_META, "valid_until": IN_A_MONTH,
                                                    "lines": [{"product_code": "PLAIN-1", "quantity": "1"}]}))
    assert quote.status_code == 201 and (quote.json["notes"], quote.json["payment_terms"]) == (ALL_META,) * 2
    assert api.get(f"/api/v1/quotes/{quote.json['id']}").json["notes"] == ALL_META
    contract = api.contract(customer_id, [("PLAIN-1", 2)], payment_terms=ALL_META, confirm=True)
    assert api.get(f"/api/v1/contracts/{contract['id']}").json["payment_terms"] == ALL_META
    assert contract["customer"]["name"] == META[0]
    wait_for(lambda: api.get(f"/api/v1/contracts/{contract['id']}").json["stock_status"] == "reserved",
             timeout=60, message="stock reserved")
    note = api.post(f"/api/v1/contracts/{contract['id']}/delivery-notes", json={"address": ALL_META})
    assert note.status_code == 201 and note.json["address"] == ALL_META, note
    plan = api.post(f"/api/v1/contracts/{contract['id']}/receivables-plan", json={"installments": [
        {"label": META[0], "percent": "50", "due_date": IN_A_MONTH},
        {"label": META[1][:100], "percent": "50", "due_date": IN_A_MONTH}]})
    assert plan.status_code == 201 and plan.json["items"][0]["label"] == META[0], plan
    paid = api.post(f"/api/v1/receivables/{plan.json['items'][0]['id']}/payments",
                    json={"amount": "1.00", "reference": ALL_META[:200]})
    assert paid.status_code == 201 and paid.json["payments"][0]["reference"] == ALL_META[:200], paid

    lists = {"/api/v1/contracts": ("customer_id", "status"), "/api/v1/quotes": ("customer_id", "status"),
             "/api/v1/receivables": ("customer_id", "contract_id", "status"),
             "/api/v1/recurring-contracts": ("source_contract_id", "status"),
             "/api/v1/emails": ("contract_id", "quote_id", "status"), "/api/v1/documents": ("owner_id", "kind"),
             "/api/v1/departments/sales/notifications": ("unread",)}
    for path, params in lists.items():
        for param in params:
            for value in META:
                response = no_5xx(api.get(path, params={param: value}))
                if response.status_code == 200:
                    assert response.json["total"] == 0 and response.json["items"] == [], (path, param, value)
                else:  # a value outside the allowed set (a status, a kind, a flag) is refused naming the parameter
                    assert_error(response, 422, param)
    assert api.get("/api/v1/contracts", params={"customer_id": customer_id}).json["total"] == 1
    assert api.get("/api/v1/quotes", params={"customer_id": customer_id}).json["total"] == 1
    assert api.get("/api/v1/receivables", params={"customer_id": customer_id}).json["total"] == 2

    # Ids in paths, and the login form.
    for value in META:
        for path in ("customers", "contracts", "quotes", "products", "delivery-notes", "receivables",
                     "recurring-contracts", "emails", "documents"):
            response = no_5xx(api.get(f"/api/v1/{path}/{url_quote(value, safe='')}"))
            assert_error(response, 404)
        assert_error(api.as_token(None).post("/api/v1/auth/token", json={"username": value, "password": value}), 401)

    # Every table is still there and whole.
    assert api.get("/api/v1/customers", params={"limit": 200}).json["total"] == len(META)
    assert api.get("/api/v1/products", params={"limit": 200}).json["total"] == len(META) + 1
    assert api.get("/api/v1/users").json["total"] == 1
    assert api.get("/api/v1/contracts").json["total"] == 1
