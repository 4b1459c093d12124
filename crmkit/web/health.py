"""/healthz (alive), /readyz (database and broker reachable), /metrics (Prometheus text)."""
from __future__ import annotations

import os

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from crmkit.messaging import broker

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    return jsonify(status="ok", service=current_app.config["CRM_SETTINGS"].service)


@health.get("/readyz")
def readyz():
    settings = current_app.config["CRM_SETTINGS"]
    checks = {}
    for name, check in (("database", lambda: current_app.extensions["crm_db"].ping()),
                        ("broker", lambda: broker.ping(settings))):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready; say which and why
            checks[name] = f"error: {type(exc).__name__}: {exc}"[:300]
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "not_ready", service=settings.service, checks=checks), (
        200 if ready else 503)


@health.get("/metrics")
def metrics():
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # under gunicorn: the sum of every worker (gunicorn.conf.py)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
