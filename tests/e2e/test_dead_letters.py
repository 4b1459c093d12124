"""Dead letters an operator can act on: listed with their error and queue, replayed, and replays are safe."""
from __future__ import annotations

import json

import pytest
from kombu import Producer, Queue
from sqlalchemy import func, select

from crmkit.db import Database
from crmkit.messaging import broker, topology
from crmkit.messaging.envelope import Envelope
from crmkit.models import InboxMessage, OutboxMessage
from crmkit.settings import Settings
from crmkit.timeutil import iso, utcnow
from support.infra import _rabbitmqctl, wait_for

pytestmark = pytest.mark.e2e

DEAD = "/api/v1/admin/dead-letters"
STOCK_QUEUE = "crm.inventory.stock"


@pytest.fixture(params=["embedded", "cluster"])
def system(request):
    return request.getfixturevalue(request.param)


def settings(system, service: str = "contracts") -> Settings:
    return Settings.from_env(service, system.env)


def query(system, service: str, statement):
    """Look under the running system: one statement against a service's own database."""
    config = settings(system, service)
    db = Database(config.database_url, config.db_schema)
    try:
        with db.session() as session:
            return session.execute(statement).all()
    finally:
        db.dispose()


def publish(system, body: str, *, exchange: str, routing_key: str, message_id: str, headers: dict | None = None):
    """Publish as a service would (persistent JSON; publisher confirms on RabbitMQ), in either mode."""
    with broker.connect(settings(system), confirm=True) as conn:
        Producer(conn.default_channel).publish(
            body, exchange=exchange, routing_key=routing_key, serializer=None, content_type="application/json",
            content_encoding="utf-8", delivery_mode=2, message_id=message_id, headers=headers or {})


def drained(system, queue: str) -> bool:
    """True when the queue holds no message, ready or delivered but not yet acknowledged."""
    config = settings(system)
    if config.embedded:  # the embedded broker keeps a delivered message until its ack
        with broker.connect(config) as conn:
            return Queue(queue)(conn.default_channel).queue_declare(passive=True).message_count == 0
    vhost = config.amqp_url.rsplit("/", 1)[1]
    result = _rabbitmqctl("list_queues", "-q", "-p", vhost, "name", "messages")
    counts = dict(line.split("\t") for line in result.stdout.strip().splitlines() if "\t" in line)
    return counts.get(queue) == "0"


def letters_of(api, message_id: str, **filters) -> list[dict]:
    response = api.get(DEAD, params={"limit": 200, **filters})
    assert response.status_code == 200, response
    return sorted((item for item in response.json["items"] if item["message_id"] == message_id),
                  key=lambda item: item["dead_lettered_at"])


def test_dead_letters_are_listed_and_replayed_and_a_replay_never_acts_twice(system):
    api = system.api
    sales = api.user("dl-sales", role="sales")

    # 1. A message its consumer cannot handle: inventory's contract.cancelled handler needs data.contract_id.
    bad = Envelope(type="contract.cancelled", source="contracts", data={})
    publish(system, bad.to_json(), exchange=topology.EVENTS.name, routing_key=bad.type, message_id=bad.id)
    # While inventory retries it (about ten seconds), a good contract is confirmed and reserved once.
    api.product("DL-1", stock=10)
    contract = api.contract(api.customer()["id"], [("DL-1", 3)])
    assert api.post(f"/api/v1/contracts/{contract['id']}/confirm").status_code == 200
    wait_for(lambda: api.get(f"/api/v1/contracts/{contract['id']}").json["stock_status"] == "reserved",
             timeout=90, message="the good contract reserved")

    [letter] = wait_for(lambda: letters_of(api, bad.id), timeout=90, message="the bad message listed")
    assert letter["type"] == "contract.cancelled" and letter["original_queue"] == STOCK_QUEUE
    assert letter["original_exchange"] == "crm.events" and letter["consumer"] == "inventory"
    assert "KeyError" in letter["error"] and "contract_id" in letter["error"]
    assert letter["replay_count"] == 0 and letter["replayed_at"] is None
    assert letter["contract_id"] is None  # its data names no contract
    assert "body" not in letter  # a list stays light; the body is on the letter itself
    detail = api.get(f"{DEAD}/{letter['id']}").json
    assert json.loads(detail["body"]) == bad.to_dict()
    assert detail["headers"]["x-original-queue"] == STOCK_QUEUE and detail["headers"]["x-error"] == detail["error"]

    # Filters, and who may look: admins only.
    assert letters_of(api, bad.id, queue=STOCK_QUEUE, type="contract.cancelled") == [letter]
    assert letters_of(api, bad.id, queue="crm.documents.render") == []
    assert letters_of(api, bad.id, type="contract.confirmed") == []
    for method, path in (("GET", DEAD), ("GET", f"{DEAD}/{letter['id']}"), ("POST", f"{DEAD}/{letter['id']}/replay")):
        assert sales.request(method, path).status_code == 403
        assert api.as_token(None).request(method, path).status_code == 401
    assert api.get(f"{DEAD}/no-such-letter").status_code == 404
    assert api.post(f"{DEAD}/no-such-letter/replay").status_code == 404

    # Replayed, the still-bad message is consumed again by inventory alone, fails again, and is a new dead letter.
    replayed = api.post(f"{DEAD}/{letter['id']}/replay")
    assert replayed.status_code == 202, replayed
    assert replayed.json["replay_count"] == 1 and replayed.json["replayed_at"]
    first, second = wait_for(lambda: (lambda found: found if len(found) == 2 else None)(letters_of(api, bad.id)),
                             timeout=90, message="the replayed copy dead-lettered again")
    assert first["id"] == letter["id"] and first["replay_count"] == 1
    assert second["original_queue"] == STOCK_QUEUE and second["original_exchange"] == ""
    assert second["type"] == "contract.cancelled" and "KeyError" in second["error"]
    assert second["replay_count"] == 0

    # 2. A message that was handled, pushed to crm.dead by hand (twice: crm.dead delivers at least once too).
    [(event_id, body)] = query(system, "contracts", select(OutboxMessage.id, OutboxMessage.body).where(
        OutboxMessage.routing_key == "contract.confirmed", OutboxMessage.body.contains(contract["id"])))
    wait_for(lambda: drained(system, STOCK_QUEUE), timeout=60, message="inventory's queue drained")
    product_before = api.get("/api/v1/products/DL-1").json
    assert (product_before["on_hand"], product_before["reserved"]) == ("10", "3")
    headers = {"x-error": "RuntimeError: pushed by hand", "x-original-queue": STOCK_QUEUE,
               "x-original-exchange": topology.EVENTS.name, "x-original-routing-key": "contract.confirmed",
               "x-dead-lettered-at": iso(utcnow()), "x-consumer": "inventory"}
    for _ in range(2):
        publish(system, body, exchange=topology.DEAD.name, routing_key="contract.confirmed", message_id=event_id,
                headers=headers)
    [pushed] = wait_for(lambda: letters_of(api, event_id), timeout=60, message="the pushed message listed")
    wait_for(lambda: drained(system, topology.DEAD_QUEUE.name), timeout=60, message="crm.dead drained")
    assert letters_of(api, event_id) == [pushed]  # the second copy was the same dead letter
    assert pushed["type"] == "contract.confirmed" and pushed["error"] == "RuntimeError: pushed by hand"
    # Which contract it was about, and the letters of one contract: what an operator asks when a customer calls.
    assert pushed["contract_id"] == contract["id"]
    assert letters_of(api, event_id, contract_id=contract["id"]) == [pushed]
    assert api.get(DEAD, params={"contract_id": contract["id"]}).json["total"] == 1
    assert letters_of(api, event_id, contract_id="another-contract") == []

    assert api.post(f"{DEAD}/{pushed['id']}/replay").status_code == 202
    # The relay puts it on inventory's queue (default exchange), inventory takes it and acknowledges it ...
    wait_for(lambda: query(system, "contracts", select(OutboxMessage.published).where(
        OutboxMessage.exchange == "", OutboxMessage.routing_key == STOCK_QUEUE,
        OutboxMessage.body == body)) == [(True,)], timeout=60, message="the replay published")
    wait_for(lambda: drained(system, STOCK_QUEUE), timeout=60, message="the replay consumed")
    wait_for(lambda: drained(system, topology.DEAD_QUEUE.name), timeout=60, message="crm.dead drained")
    # ... and its inbox already knows the envelope id: nothing happens twice, nothing is dead-lettered.
    product_after = api.get("/api/v1/products/DL-1").json
    assert (product_after["on_hand"], product_after["reserved"]) == ("10", "3")
    assert query(system, "inventory", select(func.count()).select_from(InboxMessage).where(
        InboxMessage.message_id == event_id)) == [(1,)]
    assert query(system, "inventory", select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.routing_key == "stock.reserved", OutboxMessage.body.contains(contract["id"]))) == [(1,)]
    assert [(l["id"], l["replay_count"]) for l in letters_of(api, event_id)] == [(pushed["id"], 1)]
    contract_now = api.get(f"/api/v1/contracts/{contract['id']}").json
    assert contract_now["stock_status"] == "reserved" and contract_now["lines"][0]["reserved"] == "3"
