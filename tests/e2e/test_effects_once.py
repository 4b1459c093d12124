"""Effects once: contract.confirmed delivered again (same id, or the same business event anew) reserves once."""
from __future__ import annotations

import json
import uuid

import pytest
from kombu import Connection, Producer

from crmkit.messaging import topology
from support import pg
from support.infra import _rabbitmqctl, wait_for

pytestmark = pytest.mark.e2e


def queue_drained(amqp_url: str, queue: str) -> bool:
    """True when the queue holds no message, ready or delivered-but-unacknowledged."""
    vhost = amqp_url.rsplit("/", 1)[1]
    result = _rabbitmqctl("list_queues", "-q", "-p", vhost, "name", "messages")
    counts = dict(line.split("\t") for line in result.stdout.strip().splitlines() if "\t" in line)
    return counts.get(queue) == "0"


def publish_raw(amqp_url: str, body: str, message_id: str, routing_key: str = "contract.confirmed"):
    """Publish as the contracts relay does (persistent JSON, publisher confirms)."""
    with Connection(amqp_url, transport_options={"confirm_publish": True}) as conn:
        Producer(conn.default_channel).publish(
            body, exchange=topology.EVENTS.name, routing_key=routing_key, serializer=None,
            content_type="application/json", content_encoding="utf-8", delivery_mode=2, message_id=message_id)


def inventory_state(db_url: str, contract_id: str) -> dict:
    with pg.connect(db_url) as conn:
        return {
            "products": conn.execute("SELECT code, on_hand, reserved FROM inventory.products ORDER BY code").fetchall(),
            "moves": conn.execute("SELECT product_code, kind, quantity FROM inventory.stock_moves "
                                  "WHERE contract_id = %s ORDER BY id", (contract_id,)).fetchall(),
            "reservations": conn.execute("SELECT line_no, product_code, requested, reserved FROM "
                                         "inventory.reservations WHERE contract_id = %s ORDER BY line_no",
                                         (contract_id,)).fetchall(),
            "events": conn.execute("SELECT routing_key FROM inventory.outbox WHERE body LIKE %s ORDER BY seq",
                                   (f'%"contract_id":"{contract_id}"%',)).fetchall(),
        }


def test_contract_confirmed_delivered_twice_reserves_once(cluster):
    api, db_url, amqp_url = cluster.api, cluster.env["DATABASE_URL"], cluster.env["AMQP_URL"]
    api.product("GEAR-1", stock=10)
    api.product("GEAR-2", stock=10)
    contract = api.contract(api.customer()["id"], [("GEAR-1", 3), ("GEAR-2", 2)])
    assert api.post(f"/api/v1/contracts/{contract['id']}/confirm").status_code == 200
    wait_for(lambda: api.get(f"/api/v1/contracts/{contract['id']}").json["stock_status"] == "reserved",
             timeout=60, message="reserved")
    wait_for(lambda: queue_drained(amqp_url, "crm.inventory.stock"), timeout=60, message="inventory queue drained")
    before = inventory_state(db_url, contract["id"])
    assert [(code, float(r)) for code, _, r in before["products"]] == [("GEAR-1", 3.0), ("GEAR-2", 2.0)]
    assert len(before["moves"]) == 2 and before["events"] == [("stock.reserved",)]

    with pg.connect(db_url) as conn:
        event_id, body = conn.execute("SELECT id, body FROM contracts.outbox WHERE routing_key = "
                                      "'contract.confirmed'").fetchone()
    assert json.loads(body)["data"]["contract_id"] == contract["id"]

    # 1. The very same message again (a redelivery, a relay that published twice): the inbox skips it.
    publish_raw(amqp_url, body, event_id)
    wait_for(lambda: queue_drained(amqp_url, "crm.inventory.stock"), timeout=60, message="duplicate consumed")
    assert inventory_state(db_url, contract["id"]) == before
    assert pg.scalar(db_url, "SELECT count(*) FROM inventory.inbox WHERE message_id = %s", (event_id,)) == 1

    # 2. The same business event under a new id: the inbox lets it in, the reservation guard does nothing.
    again = dict(json.loads(body), id=str(uuid.uuid4()))
    publish_raw(amqp_url, json.dumps(again), again["id"])
    wait_for(lambda: pg.scalar(db_url, "SELECT count(*) FROM inventory.inbox WHERE message_id = %s",
                               (again["id"],)) == 1, timeout=60, message="the second copy handled")
    assert inventory_state(db_url, contract["id"]) == before
    contract_now = api.get(f"/api/v1/contracts/{contract['id']}").json
    assert contract_now["stock_status"] == "reserved"
    assert [l["reserved"] for l in contract_now["lines"]] == ["3", "2"]
