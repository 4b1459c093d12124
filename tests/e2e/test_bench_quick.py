"""`make bench QUICK=1` completes: a few dozen sagas in embedded mode, 0 errors, the JSON other tools read.

Timings are never asserted here: the machine may be slow or busy; only completeness and the result's shape.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from bench.report import EMAIL_ROW

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"mode", "sagas", "errors", "sagas_per_s", "post_contracts_p50_ms", "post_contracts_p99_ms", "saga_p50_ms",
        "saga_p99_ms", "pdf_ms", "confirm_p50_ms", "confirm_p95_ms", "confirm_p99_ms", "post_contracts_p95_ms",
        "saga_p95_ms", "stages", "services", "processes", "messages_published_per_saga"}


def test_quick_bench_completes_every_saga(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("AMQP_URL", "DATABASE_URL")}
    out = tmp_path / "results"
    # Generous limits: the bench itself waits up to 5 minutes for stragglers; this only stops a hang.
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    results = list(out.glob("*-embedded-quick.json"))
    assert len(results) == 1, list(out.iterdir())
    result = json.loads(results[0].read_text())
    assert KEYS <= set(result), KEYS - set(result)
    assert result["mode"] == "embedded"
    assert result["errors"] == 0, result["error_details"]
    assert result["sagas"] >= 30
    # The email senders' backlog is in the services table beside the queues: every saga's email went through it.
    [email_row] = [s for s in result["services"] if s["event"] == EMAIL_ROW]
    assert email_row["service"] == "notifications" and email_row["handled"] >= result["sagas"]
    assert (out / results[0].name.replace(".json", ".md")).exists()
    assert "| complete sagas |" in proc.stdout


def test_the_gateway_bench_measures_create_confirm_and_the_timeline_read(pg_url):
    env = {**os.environ, "DATABASE_URL": pg_url}
    proc = subprocess.run([sys.executable, "-m", "bench.gateway", "--count", "5", "--rounds", "1"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert re.search(r"^5 contracts: create \d+\.\d\d ms, confirm \d+\.\d\d ms, timeline \d+\.\d\d ms CPU each$",
                     proc.stdout, re.M), proc.stdout
