"""Nothing lost: the broker away between commit and publish, a worker SIGKILLed while handling."""
from __future__ import annotations

import pytest
import requests

from support import pg
from support.infra import ProcessCluster, wait_for
from support.tcpproxy import TcpProxy

pytestmark = pytest.mark.e2e


def stock_status(api, contract_id):
    return api.get(f"/api/v1/contracts/{contract_id}").json["stock_status"]


def confirmed_row(db_url, contract_id):
    """(published, id) of the contract's contract.confirmed outbox row."""
    with pg.connect(db_url) as conn:
        return conn.execute("SELECT published, id FROM contracts.outbox WHERE routing_key = 'contract.confirmed' "
                            "AND body LIKE %s", (f'%"contract_id":"{contract_id}"%',)).fetchone()


def readiness(cluster, service):
    """(HTTP status, JSON body) of one service's /readyz."""
    response = requests.get(f"http://127.0.0.1:{cluster.ports[service]}/readyz", timeout=15)
    return response.status_code, response.json()


def test_an_event_committed_while_the_broker_is_away_arrives_when_it_is_back(tmp_path, pg_url, amqp_url,
                                                                              smtp_server):
    proxy = TcpProxy().start()
    cluster = ProcessCluster(tmp_path, amqp_url=proxy.url(amqp_url), database_url=pg_url, smtp=smtp_server)
    try:
        cluster.start()
        api = cluster.api
        api.product("AXLE-1", stock=5)
        contract = api.contract(api.customer()["id"], [("AXLE-1", 2)])

        proxy.pause()  # every process loses RabbitMQ; HTTP and PostgreSQL are still there
        response = api.post(f"/api/v1/contracts/{contract['id']}/confirm")
        assert response.status_code == 200 and response.json["status"] == "confirmed"
        published, event_id = confirmed_row(pg_url, contract["id"])
        assert published is False
        with pytest.raises(AssertionError):  # and it stays in the outbox while the broker is away
            wait_for(lambda: confirmed_row(pg_url, contract["id"])[0], timeout=3, message="published while away")
        assert stock_status(api, contract["id"]) == "pending"

        # Every service says it is not ready, and why: the broker, not the database.
        for service in cluster.ports:
            status, body = wait_for(lambda service=service: (r := readiness(cluster, service))[0] == 503 and r,
                                    timeout=30, interval=0.2, message=f"{service} /readyz 503 without the broker")
            assert body["status"] == "not_ready" and body["service"] == service
            assert set(body["checks"]) == {"database", "broker"} and body["checks"]["database"] == "ok"
            broker = body["checks"]["broker"]
            # What the socket reports varies with the moment the proxy cut it (refused, reset, EINVAL).
            assert broker.startswith("error: OperationalError: "), body

        proxy.resume()
        for service in cluster.ports:
            status, body = wait_for(lambda service=service: (r := readiness(cluster, service))[0] == 200 and r,
                                    timeout=60, interval=0.2, message=f"{service} /readyz 200 with the broker back")
            assert body == {"status": "ready", "service": service, "checks": {"database": "ok", "broker": "ok"}}
        wait_for(lambda: stock_status(api, contract["id"]) == "reserved", timeout=120, interval=0.2,
                 message="reserved once the broker is back")
        assert confirmed_row(pg_url, contract["id"]) == (True, event_id)
        assert api.get("/api/v1/products/AXLE-1").json["reserved"] == "2"
    except BaseException:
        print(cluster.log_text())
        raise
    finally:
        cluster.stop()
        proxy.stop()


def test_an_inventory_worker_killed_while_handling_is_redelivered_and_handled_once(cluster):
    api, db_url = cluster.api, cluster.env["DATABASE_URL"]
    api.product("AXLE-2", stock=5)
    contract = api.contract(api.customer()["id"], [("AXLE-2", 2)])

    # Hold the product's row lock so inventory's handler blocks in the middle of its transaction.
    with pg.connect(db_url, autocommit=False) as blocker:
        blocker.execute("SELECT code FROM inventory.products WHERE code = 'AXLE-2' FOR UPDATE")
        assert api.post(f"/api/v1/contracts/{contract['id']}/confirm").status_code == 200
        waiting = wait_for(lambda: pg.scalar(
            db_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query ILIKE %s", ("%FROM products%FOR UPDATE%",)),
            timeout=60, message="inventory's handler waiting on the product lock")
        assert waiting == 1
        cluster.kill("inventory-worker-1")  # SIGKILL mid-message: no ack, no commit
        blocker.rollback()

    assert stock_status(api, contract["id"]) == "pending"
    cluster.restart_worker("inventory")
    wait_for(lambda: stock_status(api, contract["id"]) == "reserved", timeout=90, interval=0.2,
             message="reserved after the restarted worker got the message again")
    _, event_id = confirmed_row(db_url, contract["id"])
    with pg.connect(db_url) as conn:
        assert conn.execute("SELECT reserved FROM inventory.products WHERE code = 'AXLE-2'").fetchone()[0] == 2
        moves = conn.execute("SELECT kind, quantity FROM inventory.stock_moves WHERE contract_id = %s",
                             (contract["id"],)).fetchall()
        assert [(kind, int(q)) for kind, q in moves] == [("reserved", 2)]
        assert conn.execute("SELECT count(*) FROM inventory.inbox WHERE message_id = %s",
                            (event_id,)).fetchone()[0] == 1
    assert api.get("/api/v1/products/AXLE-2").json["reserved"] == "2"
