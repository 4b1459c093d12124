"""What a service is made of, and how its processes start: web app, worker (consumer + relay), loops."""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy.exc import OperationalError

from crmkit import migrations, timeutil
from crmkit.db import Database
from crmkit.housekeeping import housekeeping_loop
from crmkit.messaging.consumer import Worker
from crmkit.messaging.outbox import Relay
from crmkit.models import KIT_TABLES
from crmkit.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ServiceSpec:
    name: str
    tables: list
    build_app: Callable  # (settings, db) -> Flask
    handlers: dict = field(default_factory=dict)  # event type -> handler(envelope, session, ctx)
    make_context: Callable | None = None  # (settings, db) -> ctx handed to handlers and loops
    loops: list = field(default_factory=list)  # callables (settings, db, ctx, stop_event), run by the worker
    on_start: Callable | None = None  # (settings, db) once the tables exist (seed data)
    # queue name -> function(body: bytes, headers, properties, session): whole messages, not events (crm.dead)
    raw_consumers: dict = field(default_factory=dict)


def setup_logging():
    logging.basicConfig(level=(os.environ.get("CRM_LOG_LEVEL") or "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")


def open_database(spec: ServiceSpec, settings: Settings) -> Database:
    # Every process opens its database on start: the place to fix its business dates' zone too.
    timeutil.use_zone(settings.timezone)
    db = Database(settings.database_url, settings.db_schema, tables=KIT_TABLES + spec.tables)
    migrations.upgrade(spec, settings, db)  # every web and worker process; a lock lets one do the work
    if spec.on_start:
        spec.on_start(settings, db)
    return db


def create_web_app(spec: ServiceSpec, settings: Settings | None = None):
    """The gunicorn entry of a service: `gunicorn 'services.<name>.app:create_app()'`."""
    setup_logging()
    settings = settings or Settings.from_env(spec.name)
    db = open_database(spec, settings)
    return spec.build_app(settings, db)


class WorkerProcess:
    """A service's message side: the consumer, the outbox relay and the service's timed loops."""

    def __init__(self, spec: ServiceSpec, settings: Settings, db: Database | None = None, relay: bool = True,
                 consume: bool = True):
        self.spec = spec
        self.settings = settings
        self.db = db or open_database(spec, settings)
        self.ctx = spec.make_context(settings, self.db) if spec.make_context else None
        self.stop_event = threading.Event()
        self.relay = Relay(self.db, settings) if relay else None
        self.worker = None
        if consume and (spec.handlers or spec.raw_consumers):
            # No handlers: the service's event queues are left alone (consuming them would ack and drop).
            self.worker = Worker(self.db, settings, spec.handlers, self.ctx, raw_consumers=spec.raw_consumers,
                                 queues=None if spec.handlers else [])
        self.run_loops = consume
        self.threads: list[threading.Thread] = []

    def start(self):
        """Start everything on daemon threads (the embedded mode runs five of these in one process)."""
        if self.relay:
            self._thread(self.relay.run, "relay")
        for loop in self.spec.loops if self.run_loops else []:
            self._thread(lambda loop=loop: loop(self.settings, self.db, self.ctx, self.stop_event), loop.__name__)
        if self.run_loops:
            self._thread(lambda: housekeeping_loop(self.settings, self.db, self.stop_event), "housekeeping")
        if self.worker:
            self._thread(self.worker.run_forever, "consumer")
        return self

    def _thread(self, target, label):
        thread = threading.Thread(target=target, name=f"{self.spec.name}-{label}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def stop(self):
        self.stop_event.set()
        if self.relay:
            self.relay.stop()
        if self.worker:
            self.worker.stop()


def run_worker(spec: ServiceSpec, argv=None):
    """`python -m services.<name>.worker [--role worker|relay|consumer]`: runs until SIGTERM or SIGINT."""
    import argparse
    parser = argparse.ArgumentParser(prog=f"services.{spec.name}.worker")
    parser.add_argument("--role", choices=("worker", "relay", "consumer"), default="worker",
                        help="worker = consumer + relay + timed loops (default)")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="serve this process's Prometheus metrics on PORT (a worker has no HTTP)")
    parser.add_argument("--metrics-host", default="127.0.0.1",
                        help="the address for --metrics-port (0.0.0.0 in a container, for a Prometheus beside it)")
    args = parser.parse_args(argv)
    setup_logging()
    settings = Settings.from_env(spec.name)
    if settings.worker_nice > 0:
        # Before any thread starts: on Linux a thread's niceness is its own, and new threads inherit it.
        os.nice(settings.worker_nice)
    if args.metrics_port:
        from prometheus_client import start_http_server
        try:
            start_http_server(args.metrics_port, addr=args.metrics_host)
        except OSError as exc:  # say a node exporter holds 9100: the worker's real work matters more
            logging.getLogger(__name__).warning("%s worker: no metrics on %s:%s (%s)", spec.name,
                                                args.metrics_host, args.metrics_port, exc)
    delay = 1.0
    while True:
        try:
            process = WorkerProcess(spec, settings, relay=args.role in ("worker", "relay"),
                                    consume=args.role in ("worker", "consumer"))
            break
        except OperationalError as exc:
            # PostgreSQL starting, restarting or out of connections: a worker (re)started meanwhile waits for it,
            # as it waits for the broker, instead of exiting and leaving its queue unconsumed.
            log.warning("%s worker: database not reachable (%s); trying again in %.0fs", spec.name,
                        " ".join(str(exc.orig or exc).split())[:300], delay)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
    done = threading.Event()

    def _stop(*_):
        process.stop()
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    process.start()
    log.info("%s worker started (%s)", spec.name, args.role)
    done.wait()
