"""CPU per create, confirm and timeline read in the gateway alone: its Flask app in this process, a stub catalogue.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python -m bench.gateway [--count 150] [--rounds 3]

Makes a fresh database next to DATABASE_URL's (dropped at the end), runs the contracts app through Flask's
test client (no gunicorn, no broker: outbox rows just accumulate) and prints the process CPU of each request
kind. It answers "did this change make the gateway cheaper" without the noise of the whole system.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from bench.micro import cpu_calibration
from bench.seed import COMPANY
from bench.infra import free_port


class _Catalogue(BaseHTTPRequestHandler):
    """Every code asked for is a product with plenty in stock."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        codes = parse_qs(urlparse(self.path).query).get("codes", [""])[0].split(",")
        items = [{"code": c, "name": f"六角螺栓 {c}", "unit": "件", "unit_price": "12.50", "currency": "CNY",
                  "tax_rate": "0.13", "on_hand": "1000000", "reserved": "0", "available": "1000000"}
                 for c in codes if c]
        body = json.dumps({"items": items, "total": len(items)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=150, help="contracts per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--catalogue", type=int, default=None, help=argparse.SUPPRESS)  # the stub's own process
    args = parser.parse_args(argv)
    if args.catalogue:
        ThreadingHTTPServer(("127.0.0.1", args.catalogue), _Catalogue).serve_forever()
        return

    from sqlalchemy.engine import make_url
    import psycopg
    base = make_url(os.environ["DATABASE_URL"])
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"crm_gateway_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    port = free_port()
    # The stub runs in its own process so that its CPU is not counted as the gateway's.
    stub = subprocess.Popen([sys.executable, "-m", "bench.gateway", "--catalogue", str(port)])
    try:
        time.sleep(0.5)
        env = {"DATABASE_URL": base.set(database=name).render_as_string(hide_password=False),
               "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/", "CRM_SECRET_KEY": "bench",
               "CRM_ADMIN_USER": "admin", "CRM_ADMIN_PASSWORD": "admin-pass-123",
               "CRM_VAR_DIR": tempfile.mkdtemp(prefix="crm-gateway-"), "INVENTORY_URL": f"http://127.0.0.1:{port}"}
        os.environ.update(env)
        from crmkit.settings import Settings
        from services.contracts.app import create_app
        app = create_app(Settings.from_env("contracts", env))
        rounds(app.test_client(), args.count, args.rounds)
    finally:
        stub.kill()
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rounds(client, count: int, n_rounds: int) -> None:
    def token(username, password):
        reply = client.post("/api/v1/auth/token", json={"username": username, "password": password})
        return {"Authorization": f"Bearer {reply.json['access_token']}"}

    admin = token("admin", "admin-pass-123")
    assert client.put("/api/v1/settings", headers=admin, json={
        "company": COMPANY, "shortage_policy": "notify_production",
        "default_notify_departments": ["warehouse"]}).status_code == 200
    assert client.post("/api/v1/users", headers=admin, json={
        "username": "sam", "password": "sam-pass-12345", "role": "sales", "email": "sam@example.cn"}).status_code == 201
    sales = token("sam", "sam-pass-12345")
    customer = client.post("/api/v1/customers", headers=sales, json={
        "name": "杭州明远机械有限公司", "email": "buyer@example.cn", "language": "zh-CN"}).json["id"]
    body = {"customer_id": customer, "lines": [{"product_code": f"BN-{i:04d}", "quantity": "3"} for i in range(1, 6)],
            "send_to_customer": True, "notify_departments": ["warehouse"]}

    def run(n):
        spent = {"create": 0.0, "confirm": 0.0, "timeline": 0.0}
        for _ in range(n):
            start = time.process_time()
            created = client.post("/api/v1/contracts", headers=sales, json=body)
            spent["create"] += time.process_time() - start
            assert created.status_code == 201, created.json
            start = time.process_time()
            confirmed = client.post(f"/api/v1/contracts/{created.json['id']}/confirm", headers=sales)
            spent["confirm"] += time.process_time() - start
            assert confirmed.status_code == 200, confirmed.json
            # The bench's one read per saga (the timeline it checks completion with).
            start = time.process_time()
            timeline = client.get(f"/api/v1/contracts/{created.json['id']}/timeline?limit=200", headers=sales)
            spent["timeline"] += time.process_time() - start
            assert timeline.status_code == 200, timeline.json
        return {k: v / n * 1000 for k, v in spent.items()}

    run(30)  # warm-up: imports, statement caches, prepared statements
    print(f"CPU-speed check: {cpu_calibration()['python_loop_3m_cpu_ms']} ms", flush=True)
    for _ in range(n_rounds):
        cpu = run(count)
        print(f"{count} contracts: create {cpu['create']:.2f} ms, confirm {cpu['confirm']:.2f} ms, "
              f"timeline {cpu['timeline']:.2f} ms CPU each", flush=True)


if __name__ == "__main__":
    main()
