"""`make chaos` / `python -m bench.chaos`: contracts confirmed under faults, then 0 lost and 0 doubled, or exit 1.

    python -m bench.chaos [--contracts 1000] [--clients 8] [--kill SERVICE,...] [--smtp-refuse 20]
                          [--broker-down 5] [--restart-rabbitmq] [--no-gateway-kill] [--json PATH] [--keep]

Every service runs as its own processes (gunicorn web + worker) on RabbitMQ and PostgreSQL, on a fresh
vhost and database made from AMQP_URL and DATABASE_URL (default: the local servers), with an SMTP server
this script controls (tools.mailcatcher). K clients create and confirm N contracts (send_to_customer,
warehouse ticked, stock for all) while the script, at spread-out moments of the load:

- restarts the broker once: by default every service reaches RabbitMQ through a TCP proxy that drops all
  connections and refuses new ones for --broker-down seconds, which the services see exactly as a broker
  restart; with --restart-rabbitmq it runs `rabbitmqctl stop_app` / `start_app` on the real broker
  (every vhost on it goes down: only on a broker nobody else is using);
- SIGKILLs each service's worker process once (consumer, outbox relay and timed loops die together) and
  starts it again right after;
- SIGKILLs one of the gateway's gunicorn workers once, with requests in flight: the clients retry what got
  no answer, creates with the same Idempotency-Key; gunicorn starts another worker;
- makes the SMTP server answer 451 to every recipient for --smtp-refuse seconds.

Then it waits until the system is quiescent (every outbox published, every service queue empty, no email
queued or being sent) and checks, per contract: reserved exactly once (ledger, reservations, counters),
exactly one stored PDF, exactly one email accepted by the SMTP server, one message per ticked department
(on crm.department.<name>, read with pika, and in the inbox table); and that nothing was dead-lettered
and no outbox row is left unpublished.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import requests

from bench import infra, seed as seeding
from bench.infra import ROOT, free_port, wait_http
from bench.system import ClusterSystem, _spawn, _stop, base_env

SERVICES = ("contracts", "quotes", "inventory", "documents", "notifications")
# The order workers are killed in: the saga's consumers first, while their queues are busiest.
KILL_ORDER = ("inventory", "documents", "contracts", "notifications", "quotes")
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
NUMBER = re.compile(r"\bHT-\d{4}-\d{4,}\b")
PENDING_EMAIL = ("waiting", "queued", "sending")


def say(message: str) -> None:
    print(f"[chaos] {message}", file=sys.stderr, flush=True)


# --- the parts the script controls: broker restarts, the SMTP server, the services' processes ----------------

class ProxyRestart:
    """Every service reaches RabbitMQ through a TCP proxy; a restart drops every connection for a while."""

    description = "TCP proxy in front of RabbitMQ: every connection dropped, new ones refused"

    def __init__(self):
        from tests.support.tcpproxy import TcpProxy  # the proxy the end-to-end tests use for broker outages
        self.proxy = TcpProxy().start()

    def url(self, amqp_url: str) -> str:
        return self.proxy.url(amqp_url)

    def restart(self, down: float) -> None:
        self.proxy.pause()
        time.sleep(down)
        self.proxy.resume()

    def close(self) -> None:
        self.proxy.stop()


class RabbitmqctlRestart:
    """The real broker: `rabbitmqctl stop_app`, a pause, `start_app` (every vhost on it goes down)."""

    description = "rabbitmqctl stop_app / start_app on the real broker"

    def url(self, amqp_url: str) -> str:
        return amqp_url

    def restart(self, down: float) -> None:
        self._ctl("stop_app")
        try:
            time.sleep(down)
        finally:  # whatever happens here, the broker must come back
            self._ctl("start_app")
            self._ctl("await_startup")

    @staticmethod
    def _ctl(command: str) -> None:
        result = subprocess.run(["rabbitmqctl", command], capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {command} failed: {result.stderr.strip()[:500]}")

    def close(self) -> None:
        pass


class MailServer:
    """tools.mailcatcher in its own process: a .json per accepted message; 451 while the refuse file exists."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.http_port = free_port()
        self.dir = workdir / "mail"
        self.refuse_file = workdir / "smtp-refuse"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "MailServer":
        argv = [sys.executable, "-m", "tools.mailcatcher", "--host", "127.0.0.1", "--smtp-port", str(self.port),
                "--http-port", str(self.http_port), "--dir", str(self.dir), "--refuse-file", str(self.refuse_file)]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CRM_LOG_LEVEL": "WARNING"}
        self.proc = _spawn(argv, env, self.dir.parent / "mailcatcher.log")
        wait_http(f"http://127.0.0.1:{self.http_port}/healthz", 60, "the SMTP server")
        return self

    def env(self) -> dict:
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.port), "MAIL_FROM": "sales@chaos.example.cn"}

    def refuse(self, on: bool) -> None:
        if on:
            self.refuse_file.touch()
        else:
            self.refuse_file.unlink(missing_ok=True)

    def accepted(self) -> list[dict]:
        out = []
        for path in sorted(self.dir.glob("*.json")):
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return out

    def stop(self) -> None:
        if self.proc is not None:
            _stop([self.proc])


class ChaosCluster(ClusterSystem):
    """bench's cluster, with the services' AMQP URL through the broker fault and workers that can be killed."""

    def __init__(self, workdir: Path, smtp: MailServer, amqp_url: str, database_url: str, broker):
        super().__init__(workdir, smtp, amqp_url, database_url)
        self.broker = broker
        self.argv: dict[str, list[str]] = {}
        self.lock = threading.Lock()  # a kill and its restart are one step for revive()
        self.direct_amqp = self.database_url = None
        self.description = ("per service: gunicorn 2 workers + 1 worker process (consumer, relay, loops); "
                            "RabbitMQ + PostgreSQL (a schema per service)")

    def start(self):
        from crmkit.supervise import commands, service_env
        self.direct_amqp, self.vhost = infra.make_vhost(self.given_amqp, prefix="crm_chaos")
        self.database_url, self.pg_database = infra.make_pg_database(self.given_db, prefix="crm_chaos")
        env = base_env(self.workdir, self.smtp)
        env.update({"AMQP_URL": self.broker.url(self.direct_amqp), "DATABASE_URL": self.database_url,
                    "PORT": str(self.ports["contracts"])})
        self.env = service_env(env, self.ports)
        (self.workdir / "logs").mkdir(exist_ok=True)
        for label, argv in commands(web_workers=self.web_workers, ports=self.ports):
            self.argv[label] = argv
            self._spawn(label)
        for name, port in self.ports.items():
            wait_http(f"http://127.0.0.1:{port}/readyz", 300, name)
        return self

    def kill_and_restart(self, label: str, pause: float = 1.0) -> None:
        """SIGKILL the process group (no cleanup, no ack, no commit), then start the same command again."""
        with self.lock:
            proc = self.procs[label]
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
            time.sleep(pause)
            self._spawn(label)

    def kill_web_worker(self, label: str) -> int:
        """SIGKILL one gunicorn worker of a web role (its requests in flight die unanswered); returns its pid.
        Its master starts another, as it would after an OOM kill."""
        with self.lock:
            master = self.procs[label].pid
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
            if not children:
                raise RuntimeError(f"{label}: no gunicorn worker to kill")
            victim = int(children[0])
            os.kill(victim, signal.SIGKILL)
            return victim

    def revive(self) -> list[str]:
        """Start again what exited on its own, as compose's restart policy would; returns their labels."""
        with self.lock:
            dead = [label for label, proc in self.procs.items() if proc.poll() is not None]
            for label in dead:
                self._spawn(label)
        return dead

    def _spawn(self, label: str) -> None:
        self.procs[label] = _spawn(self.argv[label], self.env, self.workdir / "logs" / f"{label}.log")


# --- the load: K clients creating and confirming contracts ------------------------------------------------------

@dataclass
class Confirmed:
    contract_id: str
    number: str
    lines: dict  # product code -> quantity (Decimal)


class Load:
    """K client threads; each contract is created (Idempotency-Key) and confirmed, retrying what the network lost."""

    def __init__(self, seed: seeding.Seed, contracts: int, clients: int, lines: int, departments: list[str],
                 request_timeout: float = 120.0):
        self.seed = seed
        self.total = contracts
        self.clients = clients
        self.lines = min(lines, len(seed.products))
        self.departments = departments
        self.request_timeout = request_timeout
        self.lock = threading.Lock()
        self.tickets = 0
        self.confirmed: dict[str, Confirmed] = {}
        self.failures: list[str] = []
        self.retries = Counter()
        self.server_errors = Counter()
        self.done = threading.Event()
        self.threads: list[threading.Thread] = []

    @property
    def count(self) -> int:
        return len(self.confirmed)

    def start(self) -> "Load":
        self.threads = [threading.Thread(target=self._client, args=(i,), name=f"client-{i}", daemon=True)
                        for i in range(self.clients)]
        for thread in self.threads:
            thread.start()
        threading.Thread(target=self._join, name="load-join", daemon=True).start()
        return self

    def _join(self):
        for thread in self.threads:
            thread.join()
        self.done.set()

    def _ticket(self) -> bool:
        with self.lock:
            if self.tickets >= self.total:
                return False
            self.tickets += 1
            return True

    def _request(self, session, method: str, path: str, ok: tuple, **kwargs):
        """The response once its status is in `ok` or is a definite 4xx; network errors and 5xx are retried."""
        delay = 0.5
        for attempt in range(12):
            try:
                r = session.request(method, self.seed.base_url + "/api/v1" + path, timeout=self.request_timeout,
                                    **kwargs)
                if r.status_code in ok or (400 <= r.status_code < 500 and r.status_code not in (408, 429)):
                    return r
                if r.status_code >= 500:
                    with self.lock:
                        self.server_errors[f"{method} {path.split('/')[1]} → {r.status_code}"] += 1
                problem = f"{r.status_code} {r.text[:200]}"
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}: {exc}"[:300]
            with self.lock:
                self.retries[f"{method} /{path.split('/')[1]}"] += 1
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
        raise RuntimeError(f"{method} {path} kept failing: {problem}")

    def _client(self, index: int):
        token, customers = self.seed.sales[index % len(self.seed.sales)]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        rng = random.Random(index * 7919 + 1)
        while self._ticket():
            lines = {code: rng.randint(1, 40) for code in rng.sample(self.seed.products, self.lines)}
            body = {"customer_id": rng.choice(customers),
                    "lines": [{"product_code": code, "quantity": q} for code, q in lines.items()],
                    "send_to_customer": True, "notify_departments": self.departments}
            try:
                r = self._request(session, "POST", "/contracts", (201,), json=body,
                                  headers={"Idempotency-Key": str(uuid.uuid4())})
                if r.status_code != 201:
                    raise RuntimeError(f"POST /contracts → {r.status_code}: {r.text[:300]}")
                contract = r.json()
                path = f"/contracts/{contract['id']}"
                r = self._request(session, "POST", path + "/confirm", (200,))
                if r.status_code == 409:  # an earlier attempt did confirm it and its answer was lost
                    r = self._request(session, "GET", path, (200,))
                    if r.json().get("status") != "confirmed":
                        raise RuntimeError(f"confirm → 409 and the contract is {r.json().get('status')}")
                elif r.status_code != 200:
                    raise RuntimeError(f"POST {path}/confirm → {r.status_code}: {r.text[:300]}")
            except Exception as exc:
                with self.lock:
                    self.failures.append(str(exc)[:500])
                continue
            with self.lock:
                self.confirmed[contract["id"]] = Confirmed(contract["id"], contract["number"],
                                                           {c: Decimal(q) for c, q in lines.items()})


# --- faults -----------------------------------------------------------------------------------------------------

@dataclass
class Fault:
    at: float  # fraction of the contracts confirmed when it fires
    kind: str  # broker, smtp, kill (a service's worker), gateway (a gunicorn worker of the gateway)
    target: str = ""
    started: float | None = None  # seconds since the load started
    confirmed: int = 0  # contracts confirmed when it fired
    seconds: float | None = None
    detail: str = ""


def plan(kill: list[str], broker: bool = True, smtp: bool = True, gateway: bool = True) -> list[Fault]:
    """Broker restart after a third of the kills, SMTP refusal after two thirds, the gateway's worker in the
    middle, spread over 10–85 % of the load."""
    order = [Fault(0, "kill", service) for service in kill]
    if gateway:
        order.insert(len(order) // 2, Fault(0, "gateway", "contracts"))
    if smtp:
        order.insert(2 * len(kill) // 3, Fault(0, "smtp"))
    if broker:
        order.insert(len(kill) // 3, Fault(0, "broker"))
    for i, fault in enumerate(order):
        fault.at = 0.1 + 0.75 * i / max(1, len(order) - 1)
    return order


class Faults:
    """Fires the plan as the load progresses (or one after another once the load is over)."""

    def __init__(self, plan_: list[Fault], load: Load, cluster: ChaosCluster, smtp: MailServer, broker,
                 broker_down: float, smtp_refuse: float, t0: float):
        self.plan = plan_
        self.load, self.cluster, self.smtp, self.broker = load, cluster, smtp, broker
        self.broker_down, self.smtp_refuse = broker_down, smtp_refuse
        self.t0 = t0
        self.errors: list[str] = []
        self.smtp_until = 0.0
        self.thread = threading.Thread(target=self._run, name="faults", daemon=True)

    def start(self) -> "Faults":
        self.thread.start()
        return self

    def _run(self):
        for fault in self.plan:
            while self.load.count < fault.at * self.load.total and not self.load.done.is_set():
                time.sleep(0.1)
            if self.load.done.is_set():
                time.sleep(2.0)  # the load is over: keep the faults apart while the backlog drains
            fault.started = time.time() - self.t0
            fault.confirmed = self.load.count
            began = time.monotonic()
            try:
                self._fire(fault)
            except Exception as exc:
                self.errors.append(f"{fault.kind} {fault.target}: {type(exc).__name__}: {exc}")
            fault.seconds = time.monotonic() - began
            say(f"fault at +{fault.started:.1f}s ({fault.confirmed} confirmed): {describe(fault)}")
        # The refusal ends on its own schedule; the run is not over before it has.
        remaining = self.smtp_until - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    def _fire(self, fault: Fault):
        if fault.kind == "broker":
            self.broker.restart(self.broker_down)
            fault.detail = f"down {self.broker_down:g}s ({self.broker.description})"
        elif fault.kind == "smtp":
            self.smtp.refuse(True)
            self.smtp_until = time.monotonic() + self.smtp_refuse
            timer = threading.Timer(self.smtp_refuse, self.smtp.refuse, args=(False,))
            timer.daemon = True
            timer.start()
            fault.detail = f"451 to every recipient for {self.smtp_refuse:g}s"
        elif fault.kind == "kill":
            label = f"{fault.target}-worker-1"
            self.cluster.kill_and_restart(label)
            fault.detail = f"SIGKILL {label} (consumer, relay, loops), restarted 1s later"
        elif fault.kind == "gateway":
            pid = self.cluster.kill_web_worker("contracts-web")
            fault.detail = f"SIGKILL gunicorn worker {pid} of contracts-web (its requests in flight die unanswered)"

    def join(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()


def describe(fault: Fault) -> str:
    names = {"broker": "broker restart", "smtp": "SMTP server refusing", "kill": f"{fault.target} worker killed",
             "gateway": "gateway web worker killed"}
    return f"{names[fault.kind]}: {fault.detail}" if fault.detail else names[fault.kind]


# --- looking under the system: PostgreSQL, RabbitMQ, the SMTP server's store -----------------------------------

def pg(database_url: str):
    import psycopg
    return psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def queue_depths(vhost: str) -> dict[str, int]:
    """Messages per queue, ready and unacknowledged (rabbitmqctl; the management plugin may be absent)."""
    result = subprocess.run(["rabbitmqctl", "list_queues", "-q", "-p", vhost, "name", "messages"],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl list_queues: {result.stderr.strip()[:300]}")
    depths = {}
    for line in result.stdout.splitlines():
        name, _, count = line.strip().partition("\t")
        if count.strip().isdigit():
            depths[name] = int(count)
    return depths


def in_flight(database_url: str, vhost: str) -> dict:
    """What is still moving: unpublished outbox rows, emails not yet sent or failed, messages in service queues."""
    with pg(database_url) as conn:
        outbox = {s: conn.execute(f'SELECT count(*) FROM "{s}".outbox WHERE NOT published').fetchone()[0]
                  for s in SERVICES}
        emails = conn.execute("SELECT count(*) FROM notifications.notif_emails WHERE status = ANY(%s)",
                              (list(PENDING_EMAIL),)).fetchone()[0]
    # Department queues are the departments' to read (nobody consumes them here): they are counted at the end.
    queues = {q: n for q, n in queue_depths(vhost).items() if n and not q.startswith("crm.department.")}
    return {"outbox": {s: n for s, n in outbox.items() if n}, "emails": emails, "queues": queues}


def wait_quiescent(cluster: ChaosCluster, timeout: float, progress, watch) -> tuple[bool, dict]:
    """Until nothing has been in flight for three looks in a row (a few seconds apart), or the timeout."""
    deadline = time.monotonic() + timeout
    calm = 0
    state: dict = {}
    last_print = 0.0
    while time.monotonic() < deadline:
        if watch():
            calm = 0
        try:
            state = in_flight(cluster.database_url, cluster.vhost)
        except Exception as exc:  # a look that fails proves nothing either way
            state = {"error": f"{type(exc).__name__}: {exc}"}
        quiet = not state.get("error") and not state.get("outbox") and not state.get("emails") \
            and not state.get("queues")
        calm = calm + 1 if quiet else 0
        if calm >= 3:
            return True, state
        if time.monotonic() - last_print > 10:
            say(f"settling: {progress()}; in flight {state}")
            last_print = time.monotonic()
        time.sleep(2.0)
    return False, state


def read_department_queue(amqp_url: str, department: str) -> list[dict]:
    """Every message on crm.department.<name>, as a department's own AMQP client (pika) would read it.

    Nothing is acknowledged: closing the connection puts every message back, so reading again reads them all.
    """
    import pika
    messages = []
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=0)  # no limit: unacknowledged, every message must still come
        for method, _, body in channel.consume(f"crm.department.{department}", inactivity_timeout=3):
            if method is None:
                break
            messages.append(json.loads(body))
    finally:
        connection.close()
    return messages


# --- the checks -------------------------------------------------------------------------------------------------

@dataclass
class Check:
    name: str
    expected: int
    lost: int = 0
    doubled: int = 0
    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.doubled and not self.problems

    def per_contract(self, counts: dict, contracts) -> "Check":
        """0 for a contract is lost, more than 1 is doubled."""
        for contract in contracts:
            n = counts.get(contract, 0)
            if n == 0:
                self.lost += 1
            elif n > 1:
                self.doubled += 1
        return self


def check(cluster: ChaosCluster, smtp: MailServer, load: Load, admin_token: str, departments: list[str]) -> tuple:
    """(checks, notes): what the issue asks of the run, and figures worth reading beside them."""
    confirmed = load.confirmed
    ids = list(confirmed)
    checks, notes = [], {}
    with pg(cluster.database_url) as conn:
        rows = conn.execute("SELECT id, number, status, stock_status, document_id FROM contracts.contracts").fetchall()
        by_id = {r[0]: r for r in rows}
        c = Check("contracts confirmed (client answers vs database)", len(ids))
        c.lost = sum(1 for i in ids if i not in by_id or by_id[i][2] != "confirmed")
        c.doubled = sum(1 for r in rows if r[0] not in confirmed)  # a contract no client asked for (a retried POST)
        not_reserved = [by_id[i][1] for i in ids if i in by_id and by_id[i][3] != "reserved"]
        if not_reserved:
            c.problems.append(f"stock_status not reserved: {not_reserved[:10]}")
        no_document = [by_id[i][1] for i in ids if i in by_id and not by_id[i][4]]
        if no_document:
            c.problems.append(f"no document_id on the contract: {no_document[:10]}")
        checks.append(c)

        # Stock: the ledger and the reservations against what each contract asked for.
        moves = defaultdict(Decimal)
        for contract_id, code, kind, qty in conn.execute(
                "SELECT contract_id, product_code, kind, quantity FROM inventory.stock_moves "
                "WHERE contract_id IS NOT NULL"):
            moves[(contract_id, code, kind)] += qty
        reservations = defaultdict(list)
        for contract_id, code, requested, reserved, status in conn.execute(
                "SELECT contract_id, product_code, requested, reserved, status FROM inventory.reservations"):
            reservations[contract_id].append((code, requested, reserved, status))
        c = Check("stock reserved exactly once (ledger and reservations)", len(ids))
        for i in ids:
            lines = confirmed[i].lines
            held = {code: reserved for code, _, reserved, status in reservations.get(i, []) if status == "active"}
            ledger = {code: moves.get((i, code, "reserved"), Decimal(0)) for code in lines}
            if any(ledger[code] < q or held.get(code, Decimal(0)) < q for code, q in lines.items()):
                c.lost += 1
            elif any(ledger[code] > q or held[code] > q for code, q in lines.items()) or \
                    len(reservations[i]) != len(lines):
                c.doubled += 1
        wanted = sum(sum(r.lines.values()) for r in confirmed.values())
        in_ledger = sum(q for (_, _, kind), q in moves.items() if kind == "reserved")
        if in_ledger != wanted:
            c.problems.append(f"reserved moves sum to {in_ledger}, the contracts to {wanted}")
        other = {kind for (_, _, kind) in moves if kind != "reserved"}
        if other:
            c.problems.append(f"unexpected stock moves: {sorted(other)}")
        counters = conn.execute(
            "SELECT p.code, p.reserved, COALESCE(SUM(r.reserved) FILTER (WHERE r.status = 'active'), 0) "
            "FROM inventory.products p LEFT JOIN inventory.reservations r ON r.product_code = p.code "
            "GROUP BY p.code, p.reserved").fetchall()
        off = [(code, str(a), str(b)) for code, a, b in counters if a != b]
        if off:
            c.problems.append(f"product reserved counter != its active reservations: {off[:5]}")
        notes["units reserved"] = f"{in_ledger} (contracted {wanted})"
        checks.append(c)

        # PDFs: one row per contract, and its bytes in the content-addressed store.
        from crmkit.settings import Settings
        store = Settings.from_env("documents", cluster.env).documents_dir
        documents = conn.execute("SELECT owner_id, sha256 FROM documents.documents WHERE kind = 'contract'").fetchall()
        c = Check("one stored PDF per contract", len(ids)).per_contract(Counter(o for o, _ in documents), ids)
        missing = [sha for _, sha in documents if not (store / sha[:2] / f"{sha}.pdf").is_file()]
        if missing:
            c.problems.append(f"{len(missing)} document rows without their file in {store}")
        files = list(store.glob("*/*.pdf"))
        stored = {p.stem for p in files if not p.name.startswith(".")}
        orphans = len(stored - {sha for _, sha in documents})
        partial = sum(1 for p in files if p.name.startswith(".tmp-"))
        if orphans or partial:
            # Garbage, not documents: nothing refers to them and nothing serves them.
            notes["files in the PDF store no document row names (a render killed before its commit)"] = orphans
            notes["temporary files left in the PDF store (a render killed while writing)"] = partial
        checks.append(c)

        statuses = dict(conn.execute("SELECT status, count(*) FROM notifications.notif_emails GROUP BY status"))
        failed = conn.execute("SELECT number, last_error, attempts FROM notifications.notif_emails "
                              "WHERE status = 'failed'").fetchall()
        inbox = Counter(r[0] for r in conn.execute(
            "SELECT contract_id, department FROM notifications.department_messages "
            "WHERE type = 'contract.confirmed' AND department = ANY(%s)", (departments,)))
        unpublished = {s: conn.execute(f'SELECT count(*) FROM "{s}".outbox WHERE NOT published').fetchone()[0]
                       for s in SERVICES}

    # Emails: what the SMTP server accepted, by the contract number in the subject.
    numbers = {r.number: i for i, r in confirmed.items()}
    accepted = smtp.accepted()
    per_contract, stray = Counter(), 0
    for message in accepted:
        found = set(NUMBER.findall(message.get("subject", "")))
        matched = [numbers[n] for n in found if n in numbers]
        per_contract.update(matched)
        stray += not matched
    c = Check("one email accepted by the SMTP server per contract", len(ids)).per_contract(per_contract, ids)
    if stray:
        c.problems.append(f"{stray} accepted emails name no contract of this run")
    checks.append(c)
    notes["emails by status (notifications)"] = statuses
    if failed:
        # Each also shows above: lost if the server has no copy. One it has is a false alarm to the salesperson.
        def fate(number):
            return "accepted" if per_contract.get(numbers.get(number)) else "not accepted"
        notes["emails failed"] = [f"{n} after {a} attempts ({fate(n)} by the SMTP server): {e}"
                                  for n, e, a in failed[:20]]

    # Department messages: one per contract and ticked department, on the queue and in the inbox table.
    for department in departments:
        messages = read_department_queue(cluster.direct_amqp, department)
        ids_per_contract = defaultdict(set)
        copies = Counter()
        for m in messages:
            if m.get("type") == "contract.confirmed":
                contract_id = (m.get("contract") or {}).get("id")
                ids_per_contract[contract_id].add(m.get("id"))
                copies[m.get("id")] += 1
        checks.append(Check(f"one message per contract on crm.department.{department}", len(ids)).per_contract(
            {k: len(v) for k, v in ids_per_contract.items()}, ids))
        notes[f"crm.department.{department}: messages read / distinct ids"] = f"{len(messages)} / {len(copies)}"
        redelivered = sum(n - 1 for n in copies.values() if n > 1)
        if redelivered:
            # At-least-once delivery: the same message id again (a relay killed between confirm and mark).
            notes[f"crm.department.{department}: same-id redeliveries"] = redelivered
    checks.append(Check(f"one department inbox row per contract ({', '.join(departments)})",
                        len(ids) * len(departments)).per_contract(inbox, ids))

    c = Check("nothing dead-lettered (GET /admin/dead-letters)", 0)
    r = requests.get(cluster.base_url + "/api/v1/admin/dead-letters", params={"limit": 20},
                     headers={"Authorization": f"Bearer {admin_token}"}, timeout=60)
    if r.status_code != 200:
        c.problems.append(f"GET /admin/dead-letters → {r.status_code}")
    elif r.json()["total"]:
        c.problems.append(f"{r.json()['total']} dead letters: " + "; ".join(
            f"{d['type']} on {d['original_queue']}: {d['error'][:160]}" for d in r.json()["items"][:5]))
    checks.append(c)
    c = Check("no outbox row left unpublished", 0)
    if any(unpublished.values()):
        c.problems.append(f"unpublished: { {s: n for s, n in unpublished.items() if n} }")
    checks.append(c)
    return checks, notes


# --- the run ----------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contracts", type=int, default=1000)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--kill", default=",".join(KILL_ORDER),
                   help="services whose worker is SIGKILLed once, in this order (default: all five; '' for none)")
    p.add_argument("--smtp-refuse", type=float, default=20.0, help="seconds the SMTP server answers 451 (0: never)")
    p.add_argument("--broker-down", type=float, default=5.0, help="seconds the broker is away (0: no restart)")
    p.add_argument("--restart-rabbitmq", action="store_true",
                   help="restart the real broker with rabbitmqctl stop_app/start_app instead of cutting a proxy; "
                        "every vhost on it goes down, so only on a broker nobody else is using")
    p.add_argument("--no-gateway-kill", dest="gateway_kill", action="store_false",
                   help="do not SIGKILL a gunicorn worker of the gateway during the load")
    p.add_argument("--products", type=int, default=50)
    p.add_argument("--lines", type=int, default=5, help="lines per contract")
    p.add_argument("--departments", default="warehouse", help="departments ticked on every contract")
    p.add_argument("--quiesce-timeout", type=float, default=1800.0,
                   help="seconds to wait after the load for the system to settle (the email lease alone is 180 s)")
    p.add_argument("--amqp-url", default=os.environ.get("AMQP_URL") or DEFAULT_AMQP)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_PG)
    p.add_argument("--json", type=Path, default=None, help="write the result here as JSON")
    p.add_argument("--keep", action="store_true", help="keep the vhost, database and logs")
    args = p.parse_args(argv)
    args.kill = [s.strip() for s in args.kill.split(",") if s.strip()]
    unknown = set(args.kill) - set(SERVICES)
    if unknown:
        p.error(f"--kill: unknown services {sorted(unknown)}")
    args.departments = [d.strip() for d in args.departments.split(",") if d.strip()]
    return args


def _interrupt(*_):
    raise KeyboardInterrupt()


def run(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="crm-chaos-"))
    broker = RabbitmqctlRestart() if args.restart_rabbitmq else ProxyRestart()
    smtp = MailServer(workdir)
    cluster = ChaosCluster(workdir, smtp, args.amqp_url, args.database_url, broker)
    result: dict = {"contracts": args.contracts, "clients": args.clients, "workdir": str(workdir)}
    keep, keep_logs = args.keep, False
    try:
        smtp.start()
        say(f"starting every service as its own processes in {workdir}")
        cluster.start()
        say(f"vhost {cluster.vhost}, database {cluster.pg_database}; seeding through the gateway")
        seed = seeding.make(cluster.base_url, products=args.products, customers=max(3, args.clients * 3),
                            departments=args.departments)
        faults_plan = plan(args.kill, broker=args.broker_down > 0, smtp=args.smtp_refuse > 0,
                           gateway=args.gateway_kill)
        t0 = time.time()
        result["load_started_at"] = datetime.fromtimestamp(t0, timezone.utc).isoformat(timespec="seconds")
        load = Load(seed, args.contracts, args.clients, args.lines, args.departments).start()
        faults = Faults(faults_plan, load, cluster, smtp, broker, args.broker_down, args.smtp_refuse, t0).start()

        def progress() -> str:
            try:
                with pg(cluster.database_url) as conn:
                    reserved, documents = conn.execute(
                        "SELECT (SELECT count(*) FROM contracts.contracts WHERE stock_status = 'reserved'), "
                        "(SELECT count(*) FROM documents.documents WHERE kind = 'contract')").fetchone()
            except Exception as exc:
                return f"(database look failed: {exc})"
            return (f"+{time.time() - t0:.0f}s confirmed {load.count}/{args.contracts}, reserved {reserved}, "
                    f"PDFs {documents}, emails accepted {len(list(smtp.dir.glob('*.json')))}")

        unplanned: list[str] = []

        def watch() -> list[str]:
            revived = cluster.revive()
            for label in revived:
                unplanned.append(f"{label} exited on its own at +{time.time() - t0:.0f}s (started again)")
                say(unplanned[-1])
            return revived

        while not load.done.wait(5.0):
            watch()
            say(progress())
        load_s = time.time() - t0
        say(f"load done in {load_s:.1f}s: {progress()}")
        if not faults.join(600):
            raise RuntimeError("the faults did not finish within 10 minutes")
        settled, state = wait_quiescent(cluster, args.quiesce_timeout, progress, watch)
        settle_s = time.time() - t0 - load_s
        say(("quiescent" if settled else "NOT quiescent") + f" {settle_s:.1f}s after the load: {progress()}")
        for attempt in range(6):  # a shared PostgreSQL may be out of connections for a moment
            try:
                checks, notes = check(cluster, smtp, load, seed.admin_token, args.departments)
                break
            except Exception as exc:
                if attempt == 5 or "connection" not in str(exc).lower():
                    raise
                say(f"checking failed ({exc}); trying again")
                time.sleep(10)
        problems = list(faults.errors) + load.failures[:20] + unplanned
        if not settled:
            problems.append(f"not quiescent after {args.quiesce_timeout:.0f}s: {state}")
        if load.count != args.contracts:
            problems.append(f"only {load.count} of {args.contracts} contracts were confirmed by the clients")
        notes["client retries (network errors, 5xx)"] = dict(load.retries)
        if load.server_errors:
            notes["5xx answers seen by the clients"] = dict(load.server_errors)
        lost, doubled = sum(c.lost for c in checks), sum(c.doubled for c in checks)
        ok = not lost and not doubled and all(c.ok for c in checks) and not problems
        result.update({
            "ok": ok, "lost": lost, "doubled": doubled, "load_s": round(load_s, 1), "settle_s": round(settle_s, 1),
            "duration_s": round(time.time() - t0, 1), "broker_restart": broker.description,
            "faults": [{"at_s": round(f.started or 0, 1), "confirmed": f.confirmed, "what": describe(f),
                        "seconds": round(f.seconds or 0, 1)} for f in faults.plan],
            "checks": [{"name": c.name, "expected": c.expected, "lost": c.lost, "doubled": c.doubled,
                        "problems": c.problems, "ok": c.ok} for c in checks],
            "problems": problems, "notes": notes, "cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg(),
        })
        keep = keep or not ok
        keep_logs = "emails failed" in notes  # worth reading even when nothing was lost
        return result
    except BaseException:
        keep = True
        raise
    finally:
        _stop(list(cluster.procs.values()))
        smtp.stop()
        broker.close()
        # A failed run keeps its logs and database to look into; the vhost goes unless asked (a shared broker).
        if cluster.vhost and not args.keep:
            infra.drop_vhost(cluster.vhost)
        if cluster.pg_database and not keep:
            infra.drop_pg_database(cluster.given_db, cluster.pg_database)
        if keep:
            say(f"kept: logs in {workdir}, database {cluster.pg_database}"
                + (f", vhost {cluster.vhost}" if args.keep else ""))
        elif keep_logs:
            say(f"kept: logs in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def report(result: dict) -> str:
    lines = [f"Chaos run: {result['contracts']} contracts, {result['clients']} clients, every service as its own "
             f"processes on RabbitMQ + PostgreSQL; {result['cpus']} CPUs",
             f"load {result['load_s']}s, settled {result['settle_s']}s later, {result['duration_s']}s in all",
             "faults:"]
    lines += [f"  +{f['at_s']:>6.1f}s  ({f['confirmed']:>5} confirmed)  {f['what']}" for f in result["faults"]]
    width = max(len(c["name"]) for c in result["checks"])
    lines.append(f"  {'check':<{width}}  expected  lost  doubled")
    for c in result["checks"]:
        lines.append(f"  {c['name']:<{width}}  {c['expected']:>8}  {c['lost']:>4}  {c['doubled']:>7}"
                     + ("" if c["ok"] else "  FAILED " + "; ".join(c["problems"])[:400]))
    for key, value in result["notes"].items():
        lines.append(f"  note: {key}: {value}")
    for problem in result["problems"]:
        lines.append(f"  problem: {problem}")
    lines.append(f"result: {result['lost']} lost, {result['doubled']} doubled — " +
                 ("OK" if result["ok"] else "FAILED"))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # a timeout or CI cancelling unwinds: processes, vhost, database go
    result = run(args)
    print(report(result), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
