"""The chaos run, small (`make chaos` is the full one): 100 contracts through a broker restart, the documents
and notifications workers SIGKILLed mid-stream, a gateway web worker SIGKILLed with requests in flight and the
SMTP server refusing mail; afterwards 0 lost and 0 doubled.

The broker restart is a TCP proxy dropping every connection (the real RabbitMQ is shared with other runs).
Timings are never asserted: the machine may be slow or busy; the limits below only stop a hang.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest

from bench.infra import rabbitmq_reachable
from support.infra import AMQP_SERVER, PG_SERVER, ROOT, missing

pytestmark = pytest.mark.e2e


def test_a_hundred_contracts_through_faults_lose_nothing_and_double_nothing(tmp_path):
    if not rabbitmq_reachable(AMQP_SERVER):
        missing("RabbitMQ", AMQP_SERVER)
    try:
        psycopg.connect(PG_SERVER, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        missing("PostgreSQL", str(exc).strip())
    out = tmp_path / "chaos.json"
    env = {k: v for k, v in os.environ.items() if k not in ("AMQP_URL", "DATABASE_URL")}
    argv = [sys.executable, "-m", "bench.chaos", "--contracts", "100", "--clients", "4", "--products", "20",
            "--kill", "documents,notifications", "--broker-down", "5", "--smtp-refuse", "5", "--quiesce-timeout", "600",
            "--amqp-url", AMQP_SERVER, "--database-url", PG_SERVER, "--json", str(out)]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    print(proc.stdout)  # the figures, for `pytest -s`
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-5000:]
    result = json.loads(out.read_text())
    report = proc.stdout[-4000:] + proc.stderr[-3000:]
    # notifications too: its effect, an email, cannot be rolled back, so a kill mid-send must not send twice
    assert [f["what"].split(":")[0] for f in result["faults"]] == [
        "broker restart", "documents worker killed", "SMTP server refusing", "gateway web worker killed",
        "notifications worker killed"], report
    assert result["faults"][0]["confirmed"] < 100, report  # the broker went away under a running load
    assert result["lost"] == 0 and result["doubled"] == 0, report
    assert all(c["ok"] for c in result["checks"]), report
    assert result["problems"] == [], report
    assert {c["expected"] for c in result["checks"] if c["expected"]} == {100}, report
    assert proc.returncode == 0, report
    assert "result: 0 lost, 0 doubled — OK" in proc.stdout
