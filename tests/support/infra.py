"""Real parts for tests: PostgreSQL databases, RabbitMQ vhosts, an aiosmtpd server, the running system."""
from __future__ import annotations

import contextlib
import email
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import date, datetime
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import requests

from support.api import Api

ROOT = Path(__file__).resolve().parents[2]
PG_SERVER = os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_SERVER = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
ADMIN_PASSWORD = "admin-secret-1"


def missing(what: str, why: str):
    """In CI a missing RabbitMQ or PostgreSQL is a failure; on a laptop without them, a skip."""
    message = f"{what} is not reachable: {why}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def wait_for(condition, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):
    """Poll until condition() is truthy; returns its value. Fails the test with `message` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last value: {last!r})")


def company_date(timestamp: str) -> date:
    """The company's date (CRM_TIMEZONE, Asia/Shanghai unless set) of a UTC timestamp the API returned: the day
    the system dates what happened then (signing, shipping, due dates counted from them)."""
    from crmkit.timeutil import business_date
    return business_date(datetime.fromisoformat(timestamp.replace("Z", "+00:00")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_pg_database() -> tuple[str, str]:
    import psycopg
    name = f"crm_test_{uuid.uuid4().hex[:10]}"
    try:
        conn = psycopg.connect(PG_SERVER, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        missing("PostgreSQL", str(exc).strip())
    conn.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    base = PG_SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{name}", name


make_pg_database.server_url = lambda: PG_SERVER


def drop_pg_database(name: str) -> None:
    import psycopg
    with psycopg.connect(PG_SERVER, connect_timeout=3, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _rabbitmqctl(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)


def make_vhost() -> tuple[str, str]:
    vhost = f"crm_test_{uuid.uuid4().hex[:10]}"
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=3).close()
    except OSError as exc:
        missing("RabbitMQ", str(exc))
    result = _rabbitmqctl("add_vhost", vhost)
    if result.returncode != 0:
        missing("RabbitMQ (rabbitmqctl add_vhost)", result.stderr.strip())
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    return f"{AMQP_SERVER.rstrip('/')}/{vhost}", vhost


def drop_vhost(vhost: str) -> None:
    _rabbitmqctl("delete_vhost", vhost)


class SmtpCatcher:
    """A real SMTP server (aiosmtpd) keeping every accepted message; can be told to refuse or be stopped."""

    def __init__(self, directory: Path, port: int | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.messages: list[email.message.Message] = []
        self.refusing = False
        self.rejecting = False  # 550 to every recipient: a refusal no retry will change
        self.requiring_login = False  # 530 to MAIL, as a relay that wants SMTP AUTH we did not give
        self.connections = 0  # SMTP sessions opened (one EHLO/HELO each)
        self.quits = 0  # sessions the client closed with QUIT
        self.messages_per_connection: int | None = None  # then 421 to the next MAIL, as an idle-timeout server does
        self.controller = None
        self._lock = threading.Lock()

    def start(self):
        from aiosmtpd.controller import Controller

        catcher = self

        class Handler:
            async def handle_EHLO(self, server, session, envelope, hostname, responses):
                session.host_name = hostname
                session.accepted = 0
                catcher.connections += 1
                return responses

            async def handle_HELO(self, server, session, envelope, hostname):
                session.host_name = hostname
                session.accepted = 0
                catcher.connections += 1
                return f"250 {server.hostname}"

            async def handle_QUIT(self, server, session, envelope):
                catcher.quits += 1
                return "221 Bye"

            async def handle_MAIL(self, server, session, envelope, address, mail_options):
                limit = catcher.messages_per_connection
                if limit is not None and getattr(session, "accepted", 0) >= limit:
                    return "421 4.4.2 Closing connection"
                if catcher.requiring_login:
                    return "530 5.7.0 Authentication required"
                envelope.mail_from = address
                envelope.mail_options.extend(mail_options)
                return "250 OK"

            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if catcher.rejecting:
                    return "550 5.1.1 No such mailbox"
                if catcher.refusing:
                    return "451 4.3.0 Try again later"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                if catcher.refusing:
                    return "451 4.3.0 Try again later"
                message = email.message_from_bytes(envelope.content)
                session.accepted = getattr(session, "accepted", 0) + 1
                with catcher._lock:
                    catcher.messages.append(message)
                    (catcher.directory / f"{len(catcher.messages):05d}.eml").write_bytes(envelope.content)
                return "250 Message accepted"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def env(self) -> dict:
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.port), "MAIL_FROM": "sales@example.cn"}


class EmbeddedSystem:
    """The embedded mode in this process, reached through the WSGI app (Flask's test client)."""

    def __init__(self, tmp_path: Path, smtp: SmtpCatcher | None = None, workers: bool = True):
        self.var = tmp_path / "var"
        self.smtp = smtp
        self.workers = workers
        self.env = {"CRM_VAR_DIR": str(self.var), "CRM_ADMIN_USER": "admin", "CRM_ADMIN_PASSWORD": ADMIN_PASSWORD,
                    "CRM_SECRET_KEY": "test-secret", "CRM_RELAY_INTERVAL": "0.02", **(smtp.env if smtp else {})}

    def start(self):
        from services import embedded
        self._module = embedded
        self.app = embedded.start(self.env, workers=self.workers)
        self.api = Api.for_wsgi(self.app)
        self.api.login("admin", ADMIN_PASSWORD)
        return self

    def stop(self):
        from crmkit.web.client import LOCAL_APPS
        self._module.stop()
        LOCAL_APPS.clear()


class ProcessCluster:
    """Every service as separate gunicorn and worker processes on RabbitMQ + PostgreSQL, over real HTTP."""

    def __init__(self, tmp_path: Path, amqp_url: str, database_url: str, smtp: SmtpCatcher | None = None,
                 workers_per_service: dict | None = None, extra_env: dict | None = None,
                 own_documents_dir: tuple[str, ...] = (), web_workers: int = 1):
        """`own_documents_dir`: services whose processes get their own, empty DOCUMENTS_DIR instead of the one
        under the shared CRM_VAR_DIR, as under compose where only the documents containers mount the PDFs.
        `web_workers`: gunicorn workers per service (one keeps the many clusters of the suite light)."""
        from crmkit.settings import SERVICES
        self.tmp = tmp_path
        self.documents_dirs = {name: tmp_path / f"documents-of-{name}" for name in own_documents_dir}
        for directory in self.documents_dirs.values():
            directory.mkdir(exist_ok=True)
        self.ports = {name: free_port() for name in SERVICES}
        self.logs = tmp_path / "logs"
        self.logs.mkdir(exist_ok=True)
        self.env = {**os.environ, "AMQP_URL": amqp_url, "DATABASE_URL": database_url,
                    "CRM_VAR_DIR": str(tmp_path / "var"), "CRM_ADMIN_USER": "admin",
                    "CRM_ADMIN_PASSWORD": ADMIN_PASSWORD, "CRM_SECRET_KEY": "test-secret",
                    "PORT": str(self.ports["contracts"]), "CRM_RELAY_INTERVAL": "0.02",
                    **(smtp.env if smtp else {}), **(extra_env or {})}
        self.env.pop("PYTEST_CURRENT_TEST", None)
        self.workers_per_service = workers_per_service or {}
        self.web_workers = web_workers
        self.procs: dict[str, subprocess.Popen] = {}
        self.base_url = f"http://127.0.0.1:{self.ports['contracts']}"

    def start(self):
        from crmkit.supervise import commands, service_env
        env = service_env(self.env, self.ports)
        self.env = env
        for label, argv in commands(web_workers=self.web_workers, ports=self.ports, workers_per_service=self.workers_per_service):
            self.spawn(label, argv)
        try:
            for name, port in self.ports.items():
                wait_for(lambda port=port: _ready(f"http://127.0.0.1:{port}/readyz"), timeout=180,
                         message=f"{name} ready")
            self.api = Api(self.base_url)
            self.api.login("admin", ADMIN_PASSWORD)
        except BaseException:
            self.stop()  # a cluster that never became ready must not outlive its test
            raise
        return self

    def spawn(self, label: str, argv: list[str]):
        log = open(self.logs / f"{label}.log", "ab")
        self.procs[label] = subprocess.Popen(argv, env=self.env_of(label), cwd=ROOT, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        return self.procs[label]

    def env_of(self, label: str) -> dict:
        """The environment of one process ("<service>-web", "<service>-worker-<n>")."""
        service = label.split("-", 1)[0]
        if service in self.documents_dirs:
            return {**self.env, "DOCUMENTS_DIR": str(self.documents_dirs[service])}
        return self.env

    def worker_argv(self, service: str) -> list[str]:
        return [sys.executable, "-m", f"services.{service}.worker"]

    def kill(self, label: str, sig=9):
        proc = self.procs[label]
        os.killpg(proc.pid, sig)
        proc.wait(10)

    def restart_worker(self, service: str, label: str | None = None):
        label = label or f"{service}-worker-1"
        return self.spawn(label, self.worker_argv(service))

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, 15)
                except ProcessLookupError:
                    pass
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)

    def log_text(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.logs.iterdir()))


def _ready(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def wsgi_server(app):
    """A real HTTP server on a free local port serving the WSGI `app` from a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
