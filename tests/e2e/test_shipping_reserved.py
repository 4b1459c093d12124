"""Goods ship only from the stock held for their contract: never stock that is not there, never stock held for
another customer's contract. A delivery note takes what is reserved; the rest follows once it has arrived."""
from __future__ import annotations

import pytest

from support.infra import wait_for

NOTES = "/api/v1/contracts/{}/delivery-notes"


def stock(api, code="BOLT") -> tuple[str, str, str]:
    p = api.get(f"/api/v1/products/{code}").json
    return p["on_hand"], p["reserved"], p["available"]


def confirmed(api, customer_id, quantity, expect):
    contract = api.contract(customer_id, [("BOLT", quantity)], confirm=True)
    wait_for(lambda: api.get(f"/api/v1/contracts/{contract['id']}").json["stock_status"] == expect,
             message=f"stock {expect}")
    return contract


def quantities(note) -> list[str]:
    return [line["quantity"] for line in note["lines"]]


def ships_only_what_is_held(api):
    api.product("BOLT", stock=5, price="2.00")
    customer = api.customer()["id"]

    # Short of stock: 5 of 9 held. A note takes the 5; the 4 missing cannot go on a note yet.
    short = confirmed(api, customer, 9, "short")
    first = api.post(NOTES.format(short["id"]))
    assert first.status_code == 201 and quantities(first.json) == ["5"], first
    more = api.post(NOTES.format(short["id"]), json={"lines": [{"product_code": "BOLT", "quantity": "4"}]})
    assert more.status_code == 422, more
    (why,) = more.json["error"]["fields"]["lines.0.quantity"]
    assert why.startswith("At most 0 of BOLT can be delivered now") and "4 more waits for stock" in why, why
    assert api.post(f"/api/v1/delivery-notes/{first.json['id']}/ship").status_code == 200
    wait_for(lambda: stock(api) == ("0", "0", "0"), message="the 5 held taken out")
    assert api.get(f"/api/v1/contracts/{short['id']}").json["status"] == "partially_delivered"
    waiting = api.post(NOTES.format(short["id"]))
    assert waiting.status_code == 409, waiting
    assert waiting.json["error"]["fields"]["lines"] == ["BOLT: 4 件 still owed, waiting for stock."]

    # Arrivals are reserved for the short contract; a later contract holding none cannot take them.
    assert api.post("/api/v1/products/BOLT/stock", json={"delta": "4", "reason": "arrivals"}).status_code == 200
    wait_for(lambda: api.get(f"/api/v1/contracts/{short['id']}").json["stock_status"] == "reserved",
             message="the arrivals reserved for the short contract")
    late = confirmed(api, api.customer(name="宁波后来贸易有限公司")["id"], 3, "short")
    assert api.post(NOTES.format(late["id"])).status_code == 409
    assert stock(api) == ("4", "4", "0")

    rest = api.post(NOTES.format(short["id"]))
    assert rest.status_code == 201 and quantities(rest.json) == ["4"], rest
    assert api.post(f"/api/v1/delivery-notes/{rest.json['id']}/ship").status_code == 200
    wait_for(lambda: stock(api) == ("0", "0", "0"), message="the 4 taken out")
    assert api.get(f"/api/v1/contracts/{short['id']}").json["status"] == "delivered"

    # A note of a cancelled contract is cancelled with it, and cannot ship.
    api.post("/api/v1/products/BOLT/stock", json={"delta": "3", "reason": "arrivals"})
    wait_for(lambda: api.get(f"/api/v1/contracts/{late['id']}").json["stock_status"] == "reserved",
             message="the later contract served")
    planned = api.post(NOTES.format(late["id"])).json
    assert api.post(f"/api/v1/contracts/{late['id']}/cancel").status_code == 200
    assert api.get(f"/api/v1/delivery-notes/{planned['id']}").json["status"] == "cancelled"
    refused = api.post(f"/api/v1/delivery-notes/{planned['id']}/ship")
    assert refused.status_code == 409 and "cancelled" in refused.json["error"]["message"], refused
    wait_for(lambda: stock(api) == ("3", "0", "3"), message="the cancelled contract's hold released")


def test_embedded(embedded):
    ships_only_what_is_held(embedded.api)


@pytest.mark.e2e
def test_on_rabbitmq_and_postgresql(cluster):
    ships_only_what_is_held(cluster.api)


def test_a_note_made_before_the_rule_ships_only_what_is_held(embedded):
    """A note already open for more than is held (written before notes were limited to it) is refused at ship,
    naming the line, rather than taking goods that are not there."""
    import sqlalchemy
    api = embedded.api
    api.product("BOLT", stock=5, price="2.00")
    contract = confirmed(api, api.customer()["id"], 5, "reserved")
    note = api.post(NOTES.format(contract["id"])).json
    engine = sqlalchemy.create_engine(f"sqlite:///{embedded.var / 'contracts.sqlite'}")
    with engine.begin() as conn:  # as if only 2 had been held when the note was written
        conn.execute(sqlalchemy.text("UPDATE contract_lines SET reserved = 2 WHERE contract_id = :id"),
                     {"id": contract["id"]})
    engine.dispose()
    r = api.post(f"/api/v1/delivery-notes/{note['id']}/ship")
    assert r.status_code == 409, r
    assert r.json["error"]["fields"]["lines.0.quantity"] == [
        "2 件 of BOLT reserved for this contract and not yet shipped; this note ships 5."]
    assert api.get(f"/api/v1/delivery-notes/{note['id']}").json["status"] == "open"
    assert stock(api) == ("5", "5", "0")
