"""The embedded mode: every service, its worker and the broker in one process (`make run` without AMQP_URL).

Used as `gunicorn -w 1 --threads 16 'services.embedded:create_app()'`: one process, because the embedded
broker's bindings live in memory; unhandled messages survive a crash in var/broker.sqlite.
"""
from __future__ import annotations

import importlib

from crmkit.messaging import embedded as embedded_broker
from crmkit.messaging.broker import connect, declare_topology
from crmkit.service import WorkerProcess, open_database, setup_logging
from crmkit.settings import SERVICES, Settings
from crmkit.web.client import LOCAL_APPS

_running: list[WorkerProcess] = []


def start(env=None, workers: bool = True):
    """Build every service's app (and start its worker threads); returns the gateway app."""
    setup_logging()
    settings = {name: Settings.from_env(name, env) for name in SERVICES}
    if settings["contracts"].amqp_url:
        raise SystemExit("AMQP_URL is set: run each service as its own processes (make run does).")
    embedded_broker.release_all_leases(embedded_broker.database_path(settings["contracts"].broker_url
                                                                     .split("+", 1)[1]))
    with connect(settings["contracts"]) as conn:
        declare_topology(conn)
    # Every model is imported before any worker thread queries: a mapper configured while a later service's
    # models module is half imported fails for good ("QuoteLine is not defined") and breaks every service.
    specs = {name: importlib.import_module(f"services.{name}").spec() for name in SERVICES}
    for name, spec in specs.items():
        db = open_database(spec, settings[name])
        LOCAL_APPS[name] = spec.build_app(settings[name], db)
        if workers:
            _running.append(WorkerProcess(spec, settings[name], db).start())
    return LOCAL_APPS["contracts"]


def stop():
    for process in _running:
        process.stop()
    _running.clear()


def create_app():
    return start()
