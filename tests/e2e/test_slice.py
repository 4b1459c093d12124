"""The contracts → inventory slice end to end: over HTTP through the gateway, in both modes."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from support.infra import wait_for


def run_slice(api):
    api.product("BOLT-M8", stock=10, price="12.50", name="六角螺栓 M8")
    api.product("NUT-M8", stock=100, price="0.80", name="螺母 M8")
    customer = api.customer(address="杭州市滨江区江南大道 1 号", contact_person="王经理")
    contract = api.contract(customer["id"], [("BOLT-M8", 4), ("NUT-M8", 40)])
    assert contract["status"] == "draft"
    # Until signing the contract names the customer as it is now; a move before confirmation is taken along.
    assert api.patch(f"/api/v1/customers/{customer['id']}", json={"address": "杭州市滨江区江南大道 8 号"}).status_code == 200
    assert contract["subtotal"] == "82.00" and contract["tax_total"] == "10.66" and contract["total"] == "92.66"
    assert [l["available"] for l in contract["lines"]] == ["10", "100"]
    assert contract["warnings"] == []

    confirmed = api.post(f"/api/v1/contracts/{contract['id']}/confirm")
    assert confirmed.status_code == 200, confirmed
    done = wait_for(lambda: (c := api.get(f"/api/v1/contracts/{contract['id']}").json)["stock_status"] == "reserved"
                    and c, message="stock reserved")
    assert [l["reserved"] for l in done["lines"]] == ["4", "40"]
    signed = {"name": customer["name"], "address": "杭州市滨江区江南大道 8 号", "contact_person": "王经理"}
    assert {k: done["customer"][k] for k in signed} == signed
    # Frozen at signing (SPEC): the customer renamed and moved later, the signed contract still says who signed.
    assert api.patch(f"/api/v1/customers/{customer['id']}", json={
        "name": "明远集团", "address": "上海市浦东新区", "contact_person": "李总"}).status_code == 200
    after = api.get(f"/api/v1/contracts/{contract['id']}").json
    assert {k: after["customer"][k] for k in signed} == signed
    assert api.get("/api/v1/products/BOLT-M8").json["reserved"] == "4"
    types = [e["type"] for e in api.get(f"/api/v1/contracts/{contract['id']}/timeline").json["items"]]
    # Reservation and rendering both follow the confirmation, in whichever order they finish.
    assert types[:2] == ["contract.created", "contract.confirmed"] and "stock.reserved" in types

    # Each answer says where its time went: the whole handler, its statements, its call to the catalogue.
    created = api.post("/api/v1/contracts", json={"customer_id": customer["id"],
                                                  "lines": [{"product_code": "NUT-M8", "quantity": "1"}]})
    assert created.status_code == 201, created
    spent = server_timing(created.headers["Server-Timing"])
    assert set(spent) == {"app", "db", "inventory"}, created.headers["Server-Timing"]
    assert spent["db"][1] >= 3 and spent["inventory"][1] == 1  # statements; one catalogue read
    assert spent["app"][0] > spent["db"][0] and spent["app"][0] > spent["inventory"][0] > 0
    api.post(f"/api/v1/contracts/{created.json['id']}/cancel")

    # A short line: 12 asked, 6 free → what is free is held and the contract says it is short.
    short = api.contract(customer["id"], [("BOLT-M8", 12)])
    assert short["lines"][0]["shortage"] == "6"
    assert short["warnings"][0] == {"code": "insufficient_stock", "product_code": "BOLT-M8", "requested": "12",
                                    "available": "6"}
    api.post(f"/api/v1/contracts/{short['id']}/confirm")
    wait_for(lambda: api.get(f"/api/v1/contracts/{short['id']}").json["stock_status"] == "short", message="short")
    assert api.get("/api/v1/products/BOLT-M8").json["reserved"] == "10"

    # Cancelling releases the hold.
    assert api.post(f"/api/v1/contracts/{contract['id']}/cancel").status_code == 200
    wait_for(lambda: api.get(f"/api/v1/contracts/{contract['id']}").json["stock_status"] == "released",
             message="released")
    product = api.get("/api/v1/products/BOLT-M8").json
    assert (product["on_hand"], product["reserved"], product["available"]) == ("10", "6", "4")
    assert api.post(f"/api/v1/contracts/{contract['id']}/confirm").status_code == 409


def server_timing(header: str) -> dict[str, tuple[float, int]]:
    """name -> (ms, count) of a Server-Timing header, read here without the project's own parser."""
    found = {}
    for part in header.split(","):
        name, *params = [p.strip() for p in part.split(";")]
        values = dict(p.split("=", 1) for p in params)
        found[name] = (float(values["dur"]), int(values.get("desc", '"1"').strip('"')))
    return found


def test_slice_embedded(embedded):
    run_slice(embedded.api)


@pytest.mark.e2e
def test_slice_on_rabbitmq_and_postgresql(cluster):
    run_slice(cluster.api)
    # What the system declared survives a broker restart: every crm.* queue and SPEC's exchanges are durable
    # (persistent messages in a queue that is not would be lost with it).
    vhost = cluster.env["AMQP_URL"].rsplit("/", 1)[1]
    queues = dict(_rabbitmqctl_rows("list_queues", vhost))
    assert {f"crm.department.{d}" for d in ("production", "procurement", "warehouse", "finance", "sales")} \
        | {"crm.dead"} <= set(queues), queues
    assert all(durable is True for name, durable in queues.items() if name.startswith("crm.")), queues
    exchanges = dict(_rabbitmqctl_rows("list_exchanges", vhost))
    assert [exchanges[name] for name in ("crm.events", "crm.departments", "crm.dead")] == [True] * 3, exchanges
    # Worker processes yield the CPU to the web processes (CRM_WORKER_NICE, default 5), every thread of them.
    # The figure is written out: a default changed to 0 must fail here, not pass along with it.
    for label, proc in cluster.procs.items():
        nice = {_nice(task) for task in Path(f"/proc/{proc.pid}/task").iterdir()}
        assert nice == ({5} if "-worker-" in label else {0}), (label, nice)


def _rabbitmqctl_rows(command: str, vhost: str) -> list[tuple[str, bool]]:
    """(name, durable) of each queue or exchange of the vhost, as the broker itself lists them."""
    listed = subprocess.run(["rabbitmqctl", command, "-q", "-p", vhost, "name", "durable", "--formatter", "json"],
                            capture_output=True, text=True, timeout=60, check=True)
    return [(row["name"], row["durable"]) for row in json.loads(listed.stdout)]


def _nice(task: Path) -> int:
    return int((task / "stat").read_text().rsplit(")", 1)[1].split()[16])
