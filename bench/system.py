"""The system under test, started by the bench: embedded (one gunicorn) or every service as its own processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import infra
from bench.infra import ROOT, free_port, wait_http

ADMIN_USER = "admin"
ADMIN_PASSWORD = "bench-admin-secret"
DB_VARIABLES = ("AMQP_URL", "DATABASE_URL") + tuple(
    f"{s.upper()}_DATABASE_URL" for s in ("contracts", "quotes", "inventory", "documents", "notifications"))


def _spawn(argv: list[str], env: dict, log_path: Path, **kwargs) -> subprocess.Popen:
    log = open(log_path, "ab")
    return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            **kwargs)


def _stop(procs: list[subprocess.Popen], timeout: float = 15.0) -> None:
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)


class SmtpServer:
    """bench.smtp in a subprocess; `accepted()` returns the new acceptances since the last call."""

    def __init__(self, workdir: Path, delay_ms: float = 0.0):
        self.port = free_port()
        self.delay_ms = delay_ms
        self.log_path = workdir / "smtp-accepted.jsonl"
        self.log_path.touch()
        self.proc: subprocess.Popen | None = None
        self._offset = 0
        self._partial = b""

    def start(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.smtp", "--port", str(self.port), "--log",
                                      str(self.log_path), "--delay-ms", str(self.delay_ms)], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        line = self.proc.stdout.readline().decode().strip()
        if line != "ready":
            raise RuntimeError(f"the SMTP server did not start: {line} {self.proc.stdout.read().decode()[:2000]}")
        return self

    def env(self) -> dict:
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.port), "MAIL_FROM": "sales@bench.example.cn"}

    def accepted(self) -> list[dict]:
        import json
        with open(self.log_path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        return [json.loads(line) for line in lines if line.strip()]

    def stop(self):
        if self.proc is not None:
            _stop([self.proc])


def base_env(workdir: Path, smtp: SmtpServer) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in DB_VARIABLES}
    env.update({"CRM_VAR_DIR": str(workdir / "var"), "CRM_ADMIN_USER": ADMIN_USER,
                "CRM_ADMIN_PASSWORD": ADMIN_PASSWORD, "CRM_SECRET_KEY": "bench-secret-key",
                "PYTHONPATH": str(ROOT)}, **smtp.env())
    return env


class EmbeddedSystem:
    """`gunicorn -w 1 --threads 16 'services.embedded:create_app()'` with a temporary CRM_VAR_DIR."""

    mode = "embedded"

    def __init__(self, workdir: Path, smtp: SmtpServer, threads: int = 16):
        self.workdir = workdir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = base_env(workdir, smtp)
        self.env["PORT"] = str(self.port)
        self.threads = threads
        self.procs: dict[str, subprocess.Popen] = {}
        self.pg_database = None
        self.description = f"one gunicorn process, 1 worker × {threads} threads, SQLite + embedded broker"

    def start(self):
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        argv = [gunicorn, "-c", "deploy/gunicorn.conf.py", "-b", f"127.0.0.1:{self.port}", "-w", "1",
                "--threads", str(self.threads), "services.embedded:create_app()"]
        self.procs["embedded gunicorn"] = _spawn(argv, self.env, self.workdir / "embedded.log")
        wait_http(f"{self.base_url}/readyz", 180, "the embedded system")
        return self

    def metrics_urls(self) -> list[str]:
        # One process: the gateway's registry holds every service's series, labelled by service.
        return [f"{self.base_url}/metrics"]

    def database(self, service: str):
        """The service's own Database (for preloading), from the same settings the system uses."""
        from crmkit.settings import Settings
        return Settings.from_env(service, self.env)

    def roots(self) -> dict[str, int]:
        return {label: proc.pid for label, proc in self.procs.items()}

    def dead(self) -> list[str]:
        return [label for label, proc in self.procs.items() if proc.poll() is not None]

    def stop(self):
        _stop(list(self.procs.values()))


class ClusterSystem:
    """Every service as a gunicorn and N workers (crmkit.supervise), on a fresh vhost and database."""

    mode = "rabbitmq"

    def __init__(self, workdir: Path, smtp: SmtpServer, amqp_url: str, database_url: str,
                 scale: dict | None = None, web_workers: int = 2):
        from crmkit.settings import SERVICES
        self.workdir = workdir
        self.smtp = smtp
        self.given_amqp, self.given_db = amqp_url, database_url
        self.scale = scale or {}
        self.web_workers = web_workers
        self.ports = {name: free_port() for name in SERVICES}
        self.base_url = f"http://127.0.0.1:{self.ports['contracts']}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.metric_ports: dict[str, int] = {}
        self.vhost = self.pg_database = None
        self.env: dict = {}
        workers = ", ".join(f"{k}×{v}" for k, v in sorted(self.scale.items())) or "1 each"
        from crmkit.settings import DEFAULT_EMAIL_SENDERS, DEFAULT_WORKER_THREADS
        threads = os.environ.get("CRM_WORKER_THREADS") or DEFAULT_WORKER_THREADS
        senders = os.environ.get("CRM_EMAIL_SENDERS") or DEFAULT_EMAIL_SENDERS
        self.description = (f"per service: gunicorn {web_workers} workers × 4 threads + worker process(es) "
                            f"({workers}) with {threads} handler threads, {senders} email senders; "
                            f"RabbitMQ + PostgreSQL (a schema per service)")

    def start(self):
        from crmkit.supervise import commands, service_env
        amqp, self.vhost = infra.make_vhost(self.given_amqp)
        database, self.pg_database = infra.make_pg_database(self.given_db)
        env = base_env(self.workdir, self.smtp)
        env.update({"AMQP_URL": amqp, "DATABASE_URL": database, "PORT": str(self.ports["contracts"])})
        self.env = service_env(env, self.ports)
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        for label, argv in commands(web_workers=self.web_workers, ports=self.ports,
                                    workers_per_service=self.scale):
            if "-worker-" in label:
                self.metric_ports[label] = free_port()
                argv = argv + ["--metrics-port", str(self.metric_ports[label])]
            self.procs[label] = _spawn(argv, self.env, logs / f"{label}.log")
        for name, port in self.ports.items():
            wait_http(f"http://127.0.0.1:{port}/readyz", 180, f"{name}")
        for label, port in self.metric_ports.items():
            wait_http(f"http://127.0.0.1:{port}/metrics", 180, f"{label} metrics")
        return self

    def metrics_urls(self) -> list[str]:
        # Handlers, queue waits and the relay run in the worker processes; each serves its own registry.
        return [f"http://127.0.0.1:{port}/metrics" for port in self.metric_ports.values()]

    def database(self, service: str):
        from crmkit.settings import Settings
        return Settings.from_env(service, self.env)

    def roots(self) -> dict[str, int]:
        return {label: proc.pid for label, proc in self.procs.items()}

    def dead(self) -> list[str]:
        return [label for label, proc in self.procs.items() if proc.poll() is not None]

    def stop(self):
        _stop(list(self.procs.values()))
        if self.vhost:
            infra.drop_vhost(self.vhost)
        if self.pg_database:
            infra.drop_pg_database(self.given_db, self.pg_database)
