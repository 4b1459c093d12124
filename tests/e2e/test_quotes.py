"""Quotes end to end over HTTP through the gateway: the seed's steps 1–2, conversion, numbering, bad input."""
from __future__ import annotations

import re
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest

from support.infra import wait_for

TODAY = date.today()
IN_A_MONTH = (TODAY + timedelta(days=30)).isoformat()


def in_parallel(calls):
    """Run the calls at the same moment (a barrier releases them together); their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def fields_of(response) -> dict:
    assert response.headers.get("Content-Type", "").startswith("application/json"), response
    return response.json["error"].get("fields", {})


def quote_body(customer_id, **extra):
    return {"customer_id": customer_id, "valid_until": IN_A_MONTH, "payment_terms": "30% 预付，发货前付清",
            "delivery_date": (TODAY + timedelta(days=20)).isoformat(),
            "lines": [{"product_code": "VALVE-DN50", "quantity": "5", "discount": "0.05"},
                      {"product_code": "PUMP-3KW", "quantity": 3, "unit_price": "2200.00"}], **extra}


def accepted_quote(api, customer_id) -> dict:
    quote = api.post("/api/v1/quotes", json=quote_body(customer_id)).json
    assert api.post(f"/api/v1/quotes/{quote['id']}/send").status_code == 200
    accepted = api.post(f"/api/v1/quotes/{quote['id']}/accept")
    assert accepted.status_code == 200, accepted
    return accepted.json


def run_quotes(api, backdate):
    api.product("VALVE-DN50", stock=10, price="480.00", name="闸阀 DN50", unit="只")
    api.product("PUMP-3KW", stock=2, price="2350.00", name="离心泵 3kW", unit="台", tax_rate="0.09")
    alice = api.user("alice", "sales", email="alice@example.cn")
    bob = api.user("bob", "sales")
    production = api.user("prod-1", "department", department="production")
    customer = alice.customer()
    bobs = bob.customer(name="Bob's customer", language="en")

    # Step 1: a quote typed by product code, with a discount and a negotiated price; the stock check shows.
    created = alice.post("/api/v1/quotes", json=quote_body(customer["id"]), headers={"Idempotency-Key": "q-1"})
    assert created.status_code == 201, created
    quote = created.json
    assert re.fullmatch(rf"QT-{TODAY.year}-\d{{6}}", quote["number"])
    assert (quote["status"], quote["customer_id"], quote["contract_id"]) == ("draft", customer["id"], None)
    valve, pump = quote["lines"]
    assert (valve["name"], valve["unit"], valve["unit_price"], valve["discount"], valve["tax_rate"]) == \
        ("闸阀 DN50", "只", "480.00", "0.05", "0.13")
    assert (valve["amount"], valve["tax_amount"]) == ("2280.00", "296.40")
    assert (pump["unit_price"], pump["discount"], pump["tax_rate"], pump["amount"], pump["tax_amount"]) == \
        ("2200.00", "0", "0.09", "6600.00", "594.00")
    assert (quote["subtotal"], quote["tax_total"], quote["total"]) == ("8880.00", "890.40", "9770.40")
    assert quote["total_in_words"] == "人民币玖仟柒佰柒拾元肆角整"
    assert [(l["available"], l["shortage"]) for l in quote["lines"]] == [("10", "0"), ("2", "1")]
    assert quote["warnings"] == [{"code": "insufficient_stock", "product_code": "PUMP-3KW", "requested": "3",
                                  "available": "2"}]
    assert quote["customer"]["name"] == customer["name"] and quote["owner_id"] == customer["owner"]

    # The same Idempotency-Key and body answer the first response; another body with it is refused.
    again = alice.post("/api/v1/quotes", json=quote_body(customer["id"]), headers={"Idempotency-Key": "q-1"})
    assert (again.status_code, again.json["id"], again.json["number"]) == (201, quote["id"], quote["number"])
    other = alice.post("/api/v1/quotes", json=quote_body(customer["id"], notes="x"), headers={"Idempotency-Key": "q-1"})
    assert other.status_code == 422 and "Idempotency-Key" in fields_of(other)
    assert alice.get("/api/v1/quotes").json["total"] == 1

    # Only a draft changes; the lines are priced again.
    patched = alice.patch(f"/api/v1/quotes/{quote['id']}", json={"notes": "含安装", "lines": [
        *quote_body(customer["id"])["lines"], {"product_code": "VALVE-DN50", "quantity": "1"}]})
    assert patched.status_code == 200, patched
    assert (patched.json["notes"], len(patched.json["lines"]), patched.json["subtotal"]) == ("含安装", 3, "9360.00")

    # Who sees what: another salesperson and a department user do not see it.
    assert bob.get(f"/api/v1/quotes/{quote['id']}").status_code == 404
    assert bob.post(f"/api/v1/quotes/{quote['id']}/send").status_code == 404
    assert bob.get("/api/v1/quotes").json["total"] == 0
    assert production.get(f"/api/v1/quotes/{quote['id']}").status_code == 404
    assert production.post("/api/v1/quotes", json=quote_body(customer["id"])).status_code in (403, 404)
    stolen = bob.post("/api/v1/quotes", json=quote_body(customer["id"]))
    assert stolen.status_code == 422 and "customer_id" in fields_of(stolen)
    assert api.get(f"/api/v1/quotes/{quote['id']}").status_code == 200  # the admin sees all

    # Illegal moves of a draft.
    for path in ("accept", "reject", "contract"):
        assert alice.post(f"/api/v1/quotes/{quote['id']}/{path}").status_code == 409, path

    # Sent as the customer is at that moment: an address changed after the quote was typed is where it goes,
    # and what it prints. A customer without one is refused, naming it, and the quote stays a draft.
    moved_customer = alice.customer(name="宁波北仑机电", email="old-buyer@example.cn")
    moved = alice.post("/api/v1/quotes", json=quote_body(moved_customer["id"])).json
    assert alice.patch(f"/api/v1/customers/{moved_customer['id']}",
                       json={"email": "new-buyer@example.cn"}).status_code == 200
    resent = alice.post(f"/api/v1/quotes/{moved['id']}/send")
    assert resent.status_code == 200 and resent.json["customer"]["email"] == "new-buyer@example.cn", resent
    went = wait_for(lambda: alice.get("/api/v1/emails", params={"quote_id": moved["id"]}).json["items"],
                    message="the quote's email")
    assert [e["to"] for e in went] == [["new-buyer@example.cn"]]
    mute = alice.customer(name="无邮箱客户", email=None)
    unsendable = alice.post("/api/v1/quotes", json=quote_body(mute["id"])).json
    refused = alice.post(f"/api/v1/quotes/{unsendable['id']}/send")
    assert refused.status_code == 422 and "customer.email" in fields_of(refused), refused
    assert alice.get(f"/api/v1/quotes/{unsendable['id']}").json["status"] == "draft"

    # Step 2: sent, accepted, converted — twice, and by POST /contracts {quote_id}: one contract.
    sent = alice.post(f"/api/v1/quotes/{quote['id']}/send")
    assert (sent.status_code, sent.json["status"]) == (200, "sent")
    twice = alice.post(f"/api/v1/quotes/{quote['id']}/send")  # a double click: sent once
    assert twice.status_code == 429 and twice.headers["Retry-After"], twice
    assert alice.patch(f"/api/v1/quotes/{quote['id']}", json={"notes": "late"}).status_code == 409
    accepted = alice.post(f"/api/v1/quotes/{quote['id']}/accept")
    assert (accepted.status_code, accepted.json["status"]) == (200, "accepted")
    assert alice.post(f"/api/v1/quotes/{quote['id']}/reject").status_code == 409
    assert alice.post(f"/api/v1/quotes/{quote['id']}/send").status_code == 409  # accepted: no longer an offer
    first = alice.post(f"/api/v1/quotes/{quote['id']}/contract")
    assert first.status_code == 201, first
    contract = first.json
    second = alice.post(f"/api/v1/quotes/{quote['id']}/contract")
    assert (second.status_code, second.json["id"]) == (200, contract["id"])
    third = alice.post("/api/v1/contracts", json={"quote_id": quote["id"]})
    assert third.json["id"] == contract["id"]
    assert (contract["quote_id"], contract["customer_id"], contract["status"]) == (quote["id"], customer["id"], "draft")
    assert contract["payment_terms"] == "30% 预付，发货前付清" and contract["delivery_date"] == quote_body("")[
        "delivery_date"]
    inherited = [(l["product_code"], l["quantity"], l["unit_price"], l["discount"], l["tax_rate"], l["amount"])
                 for l in contract["lines"]]
    assert inherited == [(l["product_code"], l["quantity"], l["unit_price"], l["discount"], l["tax_rate"], l["amount"])
                         for l in patched.json["lines"]]
    assert (contract["subtotal"], contract["tax_total"], contract["total"]) == \
        (patched.json["subtotal"], patched.json["tax_total"], patched.json["total"])
    converted = wait_for(lambda: (q := alice.get(f"/api/v1/quotes/{quote['id']}").json)["status"] == "converted"
                         and q, message="quote converted")
    assert converted["contract_id"] == contract["id"]
    assert alice.post(f"/api/v1/quotes/{quote['id']}/accept").status_code == 409

    # Two conversions of one quote at the same moment make one contract.
    racing = accepted_quote(alice, customer["id"])
    replies = in_parallel([lambda: alice.post(f"/api/v1/quotes/{racing['id']}/contract")] * 2)
    assert sorted(r.status_code for r in replies) == [200, 201], replies
    assert len({r.json["id"] for r in replies}) == 1
    assert alice.get("/api/v1/contracts", params={"customer_id": customer["id"]}).json["total"] == 2

    # What the request gives besides the quote is not dropped: its own delivery date and terms, confirmed at once.
    later_date = (TODAY + timedelta(days=45)).isoformat()
    options = accepted_quote(alice, customer["id"])
    bad_option = alice.post(f"/api/v1/quotes/{options['id']}/contract", json={"delivery_date": "soon"})
    assert bad_option.status_code == 422 and "delivery_date" in fields_of(bad_option)
    made = alice.post(f"/api/v1/quotes/{options['id']}/contract", json={
        "delivery_date": later_date, "payment_terms": "Net 30", "confirm": True})
    assert made.status_code == 201, made
    assert (made.json["delivery_date"], made.json["payment_terms"], made.json["status"]) == (
        later_date, "Net 30", "confirmed")
    by_post = alice.post("/api/v1/contracts", json={"quote_id": accepted_quote(alice, customer["id"])["id"],
                                                    "delivery_date": later_date})
    assert by_post.status_code == 201 and by_post.json["delivery_date"] == later_date, by_post
    assert by_post.json["payment_terms"] == "30% 预付，发货前付清"  # not given: the quote's

    # A sent quote whose valid_until has passed reads as expired and can no longer be accepted or converted.
    lapsing = alice.post("/api/v1/quotes", json=quote_body(customer["id"])).json
    alice.post(f"/api/v1/quotes/{lapsing['id']}/send")
    backdate(lapsing["id"], TODAY - timedelta(days=1))
    assert alice.get(f"/api/v1/quotes/{lapsing['id']}").json["status"] == "expired"
    assert [q["id"] for q in alice.get("/api/v1/quotes", params={"status": "expired"}).json["items"]] == \
        [lapsing["id"]]
    expired_accept = alice.post(f"/api/v1/quotes/{lapsing['id']}/accept")
    assert expired_accept.status_code == 409 and "expired" in expired_accept.json["error"]["message"]
    assert alice.post(f"/api/v1/quotes/{lapsing['id']}/contract").status_code == 409
    expired_send = alice.post(f"/api/v1/quotes/{lapsing['id']}/send")  # nor sent again
    assert expired_send.status_code == 409 and "expired" in expired_send.json["error"]["message"]

    # Bad input answers a JSON 4xx naming the field, never a 500.
    def line(**extra):
        return quote_body(customer["id"], lines=[{"product_code": "VALVE-DN50", "quantity": "1", **extra}])

    bad = {
        "lines.0.discount": [line(discount="-0.1"), line(discount="1.5"), line(discount=0.5)],
        "lines.0.product_code": [line(product_code="NO-SUCH-THING"), line(product_code=7)],
        "lines.0.quantity": [line(quantity=2.5), line(quantity="0"), line(quantity="many")],
        "lines.0.unit_price": [line(unit_price="-1"), line(unit_price=True)],
        "lines": [quote_body(customer["id"], lines="VALVE-DN50"), quote_body(customer["id"], lines=[])],
        "customer_id": [quote_body(123), quote_body("no-such-customer"), quote_body("../users")],
        "valid_until": [quote_body(customer["id"], valid_until=(TODAY - timedelta(days=1)).isoformat()),
                        quote_body(customer["id"], valid_until="next week")],
        "currency": [quote_body(customer["id"], currency="XYZ")],
    }
    for field, bodies in bad.items():
        for body in bodies:
            reply = alice.post("/api/v1/quotes", json=body)
            assert reply.status_code == 422 and field in fields_of(reply), (field, body, reply)
    malformed = alice.post("/api/v1/quotes", data=b"{not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json["error"]["code"] == "bad_request"
    assert alice.post("/api/v1/quotes", json=[1, 2]).status_code == 400
    assert alice.get("/api/v1/quotes", params={"limit": "500"}).status_code == 422
    assert alice.get("/api/v1/quotes", params={"status": "lost"}).status_code == 422
    assert alice.patch(f"/api/v1/quotes/{lapsing['id']}", json={"lines": "x"}).status_code == 422
    assert alice.get("/api/v1/quotes/no-such-quote").status_code == 404
    assert alice.post("/api/v1/quotes/no-such-quote/contract").status_code == 404
    assert alice.post("/api/v1/contracts", json={"quote_id": "?limit=1"}).status_code == 404
    draft = alice.post("/api/v1/quotes", json=quote_body(customer["id"])).json
    assert "currency" in fields_of(alice.patch(f"/api/v1/quotes/{draft['id']}", json={"currency": "USD"}))

    # The same Idempotency-Key on POST /contracts: one contract; another body with it is refused.
    body = {"customer_id": customer["id"], "lines": [{"product_code": "VALVE-DN50", "quantity": "1"}]}
    once = alice.post("/api/v1/contracts", json=body, headers={"Idempotency-Key": "c-1"})
    twice = alice.post("/api/v1/contracts", json=body, headers={"Idempotency-Key": "c-1"})
    assert (once.status_code, twice.status_code, twice.json["id"]) == (201, 201, once.json["id"])
    changed = alice.post("/api/v1/contracts", json={**body, "payment_terms": "cash"},
                         headers={"Idempotency-Key": "c-1"})
    assert changed.status_code == 422 and "Idempotency-Key" in fields_of(changed)

    # 50 contracts created at once get 50 distinct numbers that follow the earlier ones without a gap.
    before = [c["number"] for c in alice.get("/api/v1/contracts").json["items"]]
    replies = in_parallel([lambda: alice.post("/api/v1/contracts", json=body)] * 50)
    assert [r.status_code for r in replies] == [201] * 50, [r for r in replies if r.status_code != 201][:3]
    numbers = sorted(r.json["number"] for r in replies)
    assert all(re.fullmatch(rf"HT-{TODAY.year}-\d{{6}}", n) for n in numbers)
    seqs = [int(n.rsplit("-", 1)[1]) for n in numbers]
    assert seqs == list(range(seqs[0], seqs[0] + 50))
    assert seqs[0] == max(int(n.rsplit("-", 1)[1]) for n in before) + 1


def test_quotes_embedded(embedded):
    def backdate(quote_id, valid_until):
        # Stands in for the days passing: nothing in the API moves a sent quote's validity.
        with sqlite3.connect(embedded.var / "quotes.sqlite") as conn:
            conn.execute("UPDATE quotes SET valid_until = ? WHERE id = ?", (valid_until.isoformat(), quote_id))

    run_quotes(embedded.api, backdate)


@pytest.mark.e2e
def test_quotes_on_rabbitmq_and_postgresql(cluster, pg_url):
    import psycopg

    def backdate(quote_id, valid_until):
        # Stands in for the days passing: nothing in the API moves a sent quote's validity.
        with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            conn.execute("UPDATE quotes.quotes SET valid_until = %s WHERE id = %s", (valid_until, quote_id))

    run_quotes(cluster.api, backdate)
