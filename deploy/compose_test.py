"""The compose deployment, for real: bring the stack up, check it, scale a worker, tear it down.

    python deploy/compose_test.py [--build] [--smoke | --no-kill] [--keep]

Runs docker-compose.yml under its own project name (default crm-compose-test) with its own host
ports (free ones unless CRM_GATEWAY_PORT / CRM_AMQP_PORT are set), so the host's own RabbitMQ on
5672 and a server on 8000 keep running beside it.  Uses podman-compose where installed (this
machine), else `docker compose`; CRM_COMPOSE overrides ("docker compose", "podman-compose").

Stages: [--build: deploy/local-images.sh] -> up -d -> every service's /healthz and /readyz (the
gateway's from the host, the others from inside the gateway container by service name) and every
container's health check -> the mail catcher's HTTP API -> drive_seed_flow() -> documents-worker
scaled to 3 -> scale_and_kill() -> down by project name, always.  --smoke skips the two flows.
Prints a short report (stage timings, what the flows showed); exits 0 only if everything passed.

Podman-compose 1.0.3 notes: `up --abort-on-container-exit` leaves `podman start -a` children
behind, so only `up -d` is used; it has no --scale, so the scale is CRM_DOCUMENTS_WORKERS
(deploy.replicas in the compose file); its `down` leaves the network, so the project's
containers, networks and volumes are also removed by their compose project label.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
LOG_DIR = ROOT / "build" / "compose-test"
WEB_SERVICES = {"contracts": 8000, "quotes": 8001, "inventory": 8002, "documents": 8003, "notifications": 8004}
ADMIN_USER = "admin"
ADMIN_PASSWORD = "compose-test-" + uuid.uuid4().hex[:12]

TIMINGS: list[tuple[str, float]] = []
REPORT: list[str] = []


class Failed(Exception):
    pass


def say(msg: str) -> None:
    print(f"[compose-test {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class stage:
    """Times one stage of the run for the closing report."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        say(f"--- {self.name}")
        self.t0 = time.monotonic()

    def __exit__(self, exc_type, exc, tb):
        took = time.monotonic() - self.t0
        TIMINGS.append((self.name + ("" if exc_type is None else " (FAILED)"), took))
        say(f"--- {self.name}: {took:.1f}s{'' if exc_type is None else ' FAILED'}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


class Stack:
    """One compose project: the compose tool, the container engine and the project's settings."""

    def __init__(self, project: str, compose: list[str], engine: str, env: dict):
        self.project = project
        self.compose_cmd = compose
        self.engine = engine
        self.env = env
        self.gateway = f"http://127.0.0.1:{env['CRM_GATEWAY_PORT']}"
        self.amqp_url = f"amqp://crm:crm@127.0.0.1:{env['CRM_AMQP_PORT']}/%2F"
        self.podman_compose = Path(compose[0]).name == "podman-compose"

    # -- running things -------------------------------------------------------------------------
    def compose(self, *args: str, log: str, check: bool = True, extra_env: dict | None = None):
        cmd = [*self.compose_cmd, "-p", self.project, "-f", str(COMPOSE_FILE), *args]
        env = {**os.environ, **self.env, **(extra_env or {})}
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        path = LOG_DIR / f"{log}.log"
        with open(path, "w") as out:
            out.write("$ " + shlex.join(cmd) + "\n")
            out.flush()
            proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=600)
        if check and proc.returncode != 0:
            tail = path.read_text().splitlines()[-25:]
            raise Failed(f"{shlex.join(cmd)} exited {proc.returncode}; log {path}:\n" + "\n".join(tail))
        return proc

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run([self.engine, *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise Failed(f"{self.engine} {shlex.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
        return proc

    def label(self, service: str | None = None) -> list[str]:
        flt = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            flt += ["--filter", f"label=com.docker.compose.service={service}"]
        return flt

    def containers(self, service: str | None = None, running_only: bool = True) -> list[str]:
        args = ["ps", "--format", "{{.Names}}", *self.label(service)]
        if not running_only:
            args.insert(1, "-a")
        out = self.cli(*args).stdout.split()
        return sorted(out)

    def not_running(self) -> list[str]:
        everything = set(self.containers(running_only=False))
        return sorted(everything - set(self.containers()))

    def one(self, service: str) -> str:
        names = self.containers(service)
        if not names:
            raise Failed(f"no running container for {service}")
        return names[0]

    def exec_http_many(self, urls: list[str], timeout: float = 10) -> list[tuple[int, str]]:
        """GET each URL from inside the gateway container, on the compose network: [(status, body)]
        (status 0: no answer).  One exec for all of them: each exec costs seconds on a busy machine."""
        code = ("import json, sys, urllib.request, urllib.error\n"
                "out = []\n"
                "for url in sys.argv[2:]:\n"
                "    try:\n"
                "        r = urllib.request.urlopen(url, timeout=float(sys.argv[1])); out.append([r.status, r.read().decode('utf-8', 'replace')])\n"
                "    except urllib.error.HTTPError as e:\n"
                "        out.append([e.code, e.read().decode('utf-8', 'replace')])\n"
                "    except Exception as e:\n"
                "        out.append([0, repr(e)])\n"
                "print(json.dumps(out))\n")
        if not getattr(self, "_gateway_container", None):
            self._gateway_container = self.one("contracts-web")
        proc = subprocess.run([self.engine, "exec", self._gateway_container, "python", "-c", code, str(timeout), *urls],
                              capture_output=True, text=True, timeout=timeout * len(urls) + 60,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            return [(0, proc.stderr[-500:])] * len(urls)
        return [tuple(x) for x in json.loads(proc.stdout)]

    def exec_http(self, url: str, timeout: float = 10) -> tuple[int, str]:
        return self.exec_http_many([url], timeout)[0]

    def healthcheck(self, name: str) -> bool:
        """The container's own health check, run now (podman runs them only on request without systemd)."""
        if self.engine.endswith("podman"):
            return self.cli("healthcheck", "run", name, check=False, timeout=60).returncode == 0
        out = self.cli("inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", name,
                       check=False).stdout.strip()
        return out in ("healthy", "")

    def handled(self, name: str, event_type: str) -> dict[str, float]:
        """crm_events_handled_total of one worker container for one event type, by outcome, read from
        its --metrics-port inside the container (counters start again at 0 when it restarts)."""
        code = ("import urllib.request as u; "
                "print(u.urlopen('http://127.0.0.1:9100/metrics', timeout=5).read().decode())")
        proc = self.cli("exec", name, "python", "-c", code, check=False, timeout=60)
        if proc.returncode != 0:
            raise Failed(f"metrics of {name}: {proc.stderr.strip()[-300:]}")
        out: dict[str, float] = {}
        for line in proc.stdout.splitlines():
            if line.startswith("crm_events_handled_total{") and f'type="{event_type}"' in line:
                labels, value = line.rsplit(" ", 1)
                outcome = labels.split('outcome="', 1)[1].split('"', 1)[0]
                out[outcome] = out.get(outcome, 0) + float(value)
        return out

    def rabbit_queues(self) -> dict[str, tuple[int, int]]:
        out = self.cli("exec", self.one("rabbitmq"), "rabbitmqctl", "-q", "list_queues", "name", "messages_ready",
                       "messages_unacknowledged", check=False, timeout=120).stdout
        queues = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit():
                queues[parts[0]] = (int(parts[1]), int(parts[2]))
        return queues

    # -- set up and tear down ---------------------------------------------------------------------
    def up(self, log: str, documents_workers: int = 1, services: tuple[str, ...] = ()) -> None:
        extra = {"CRM_DOCUMENTS_WORKERS": str(documents_workers)}
        args = ["up", "-d"]
        if not self.podman_compose:
            args += ["--scale", f"documents-worker={documents_workers}", "--no-recreate"]
        self.compose(*args, *services, log=log, extra_env=extra)

    def start_stragglers(self) -> list[str]:
        """Start any container that `up -d` created but could not start (podman-compose retries once)."""
        started = []
        for name in self.not_running():
            if self.cli("start", name, check=False).returncode == 0:
                started.append(name)
        return started

    def down(self) -> None:
        """Down by project name.  podman-compose 1.0.3's own down stops and removes one container at a
        time (minutes on a busy machine) and leaves the network: with podman the project's
        containers, network and volumes are removed by their project label, all at once."""
        if not self.podman_compose:
            self.compose("down", "-v", "--remove-orphans", log="down", check=False)
        self.sweep()

    def sweep(self) -> None:
        """Remove what is left of this project, by its compose project label only."""
        ids = self.cli("ps", "-a", "-q", *self.label(), check=False).stdout.split()
        if ids:
            grace = ["-t", "3"] if self.engine.endswith("podman") else []
            self.cli("rm", "-f", *grace, *ids, check=False, timeout=300)
        for kind in ("network", "volume"):
            names = self.cli(kind, "ls", "-q", *self.label(), check=False).stdout.split()
            if kind == "network":
                names += [n for n in self.cli("network", "ls", "--format", "{{.Name}}", check=False).stdout.split()
                          if n == f"{self.project}_default"]
            for name in sorted(set(names)):
                self.cli(kind, "rm", "-f", name, check=False)


# -- checks -----------------------------------------------------------------------------------------
def wait_until(what: str, check, timeout: float, interval: float = 2.0, on_wait=None):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Failed:
            raise
        except Exception as exc:  # not up yet: keep the reason for the error message
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise Failed(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last: {last})" if last else ""))
        if on_wait:
            on_wait()
        time.sleep(interval)


def wait_healthy(stack: Stack, timeout: float) -> None:
    import requests

    def gateway_ready():
        for path in ("/healthz", "/readyz"):
            r = requests.get(stack.gateway + path, timeout=5)
            if r.status_code != 200:
                raise RuntimeError(f"{path} answered {r.status_code}: {r.text[:200]}")
        return True

    last_kick = [time.monotonic()]

    def kick():  # a container podman-compose left created (e.g. a port race) gets another start
        if time.monotonic() - last_kick[0] > 20:
            last_kick[0] = time.monotonic()
            for name in stack.start_stragglers():
                say(f"started {name}, which up -d had left stopped")

    wait_until("the gateway's /healthz and /readyz", gateway_ready, timeout, on_wait=kick)
    say("gateway: /healthz 200, /readyz 200 (from the host)")

    urls = [f"http://{name}-web:{port}{path}" for name, port in WEB_SERVICES.items()
            for path in ("/healthz", "/readyz")]

    def services_ready():
        answers = stack.exec_http_many(urls)
        bad = {u: f"{st} {body[:150]}" for u, (st, body) in zip(urls, answers) if st != 200}
        if bad:
            raise RuntimeError(f"not ready: {bad}")
        return True

    wait_until("every service's /healthz and /readyz", services_ready, timeout, on_wait=kick)
    say("every *-web: /healthz 200 and /readyz 200, from inside the gateway container by service name")

    from concurrent.futures import ThreadPoolExecutor
    services = ["postgres", "rabbitmq", "mailcatcher", *(f"{n}-web" for n in WEB_SERVICES),
                *(f"{n}-worker" for n in WEB_SERVICES)]
    names = [stack.one(s) for s in services]

    def healthy(name):
        wait_until(f"{name}'s health check", lambda: stack.healthcheck(name), 180, interval=3)
        return name

    with ThreadPoolExecutor(max_workers=4) as pool:  # each check is an exec: not all at once
        list(pool.map(healthy, names))
    say(f"container health checks pass: {', '.join(services)}")

    if stack.not_running():
        raise Failed(f"containers not running: {stack.not_running()}")
    say(f"{len(stack.containers())} containers running")


def mailcatcher_messages(stack: Stack) -> list[dict]:
    status, body = stack.exec_http("http://mailcatcher:8025/messages")
    if status != 200:
        raise Failed(f"mail catcher GET /messages answered {status}: {body[:200]!r}")
    return json.loads(body)


def check_mailcatcher(stack: Stack) -> None:
    msgs = mailcatcher_messages(stack)
    if not isinstance(msgs, list):
        raise Failed(f"mail catcher /messages is not a list: {msgs!r}")
    say(f"mail catcher: GET /messages answers a list ({len(msgs)} messages)")


def scale_documents_workers(stack: Stack, n: int) -> list[str]:
    # only documents-worker (and what it depends on): podman-compose retries every named container
    stack.up(log=f"scale-documents-worker-{n}", documents_workers=n, services=("documents-worker",))

    def running():
        names = stack.containers("documents-worker")
        return names if len(names) == n else None

    names = wait_until(f"{n} documents-worker containers running", running, 90, on_wait=stack.start_stragglers)
    say(f"documents-worker scaled to {n}: {', '.join(names)}")
    return names


# -- the flow (SPEC §3, §4) ------------------------------------------------------------------------
class Api:
    def __init__(self, base: str):
        import requests

        self.base = base.rstrip("/") + "/api/v1"
        self.http = requests.Session()

    def call(self, method: str, path: str, expect=(200, 201, 202), **kw):
        r = self.http.request(method, self.base + path, timeout=30, **kw)
        if r.status_code not in expect:
            raise Failed(f"{method} {path} answered {r.status_code}: {r.text[:500]}")
        return r

    def login(self, user: str, password: str) -> None:
        token = self.call("POST", "/auth/token", json={"username": user, "password": password}).json()
        self.http.headers["Authorization"] = f"Bearer {token['access_token']}"

    def product(self, code: str, stock: int) -> None:
        self.call("POST", "/products", json={"code": code, "name": f"Compose test part {code}", "unit": "pcs",
                                             "unit_price": "120.00", "tax_rate": "0.13"})
        self.call("POST", f"/products/{code}/stock", json={"delta": stock, "reason": "compose test stock"})

    def customer(self, name: str, email: str) -> str:
        return self.call("POST", "/customers", json={"name": name, "kind": "company", "email": email,
                                                     "language": "en"}).json()["id"]

    def contract(self, customer_id: str, code: str, quantity: int) -> dict:
        return self.call("POST", "/contracts", json={
            "customer_id": customer_id, "lines": [{"product_code": code, "quantity": quantity}],
            "notify_departments": ["warehouse"], "send_to_customer": True}).json()

    def confirm(self, contract_id: str) -> dict:
        return self.call("POST", f"/contracts/{contract_id}/confirm").json()

    def get_contract(self, contract_id: str) -> dict:
        return self.call("GET", f"/contracts/{contract_id}").json()

    def timeline(self, contract_id: str) -> list[dict]:
        body = self.call("GET", f"/contracts/{contract_id}/timeline", params={"limit": 200}).json()
        return body["items"] if isinstance(body, dict) else body

    def wait_reserved_and_rendered(self, contract_id: str, timeout: float) -> dict:
        def done():
            c = self.get_contract(contract_id)
            if c.get("stock_status") in ("short", "released"):
                raise Failed(f"contract {contract_id} stock_status {c['stock_status']}: {c.get('warnings')}")
            return c if c.get("stock_status") == "reserved" and c.get("document_id") else None
        return wait_until(f"contract {contract_id} reserved with a document", done, timeout, interval=1)

    def pdf(self, contract_id: str, timeout: float = 60) -> bytes:
        def fetch():
            r = self.call("GET", f"/contracts/{contract_id}/pdf", expect=(200, 202))
            if r.status_code == 202:
                return None
            if not r.headers.get("Content-Type", "").startswith("application/pdf") or not r.content.startswith(b"%PDF"):
                raise Failed(f"/contracts/{contract_id}/pdf is not a PDF: {r.headers.get('Content-Type')}")
            return r.content
        return wait_until(f"the PDF of contract {contract_id}", fetch, timeout, interval=1)


def read_department_message(amqp_url: str, queue: str, contract_id: str, timeout: float = 60) -> dict:
    """A plain pika consumer from the host, as a department's program would be."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        ch = conn.channel()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            method, _props, body = ch.basic_get(queue=queue, auto_ack=False)
            if method is None:
                conn.sleep(0.5)
                continue
            ch.basic_ack(method.delivery_tag)
            msg = json.loads(body)
            if (msg.get("contract") or {}).get("id") == contract_id:
                return msg
        raise Failed(f"no message for contract {contract_id} on {queue} within {timeout:.0f}s")
    finally:
        conn.close()


def drive_seed_flow(stack: Stack) -> None:
    """SPEC §3 through the gateway: customer, product with stock, contract by product code, confirm
    -> reserved, PDF, the email with the PDF at the mail catcher, the warehouse's queue message."""
    import hashlib

    api = Api(stack.gateway)
    api.login(ADMIN_USER, ADMIN_PASSWORD)
    run = uuid.uuid4().hex[:6].upper()
    code = f"CT-{run}"
    email = f"buyer-{run.lower()}@example.com"
    api.product(code, stock=50)
    customer_id = api.customer(f"Compose Test Buyer {run}", email)
    contract = api.contract(customer_id, code, quantity=3)
    say(f"contract {contract.get('number')} ({contract['id']}) created, stock_status={contract.get('stock_status')}")
    api.confirm(contract["id"])
    contract = api.wait_reserved_and_rendered(contract["id"], timeout=120)
    say(f"confirmed: stock_status=reserved, document_id={contract['document_id']}")
    product = api.call("GET", f"/products/{code}").json()
    if str(product.get("reserved")) not in ("3", "3.0", "3.00", "3.000"):
        raise Failed(f"product {code} reserved={product.get('reserved')!r}, expected 3")
    pdf = api.pdf(contract["id"])
    say(f"GET /contracts/{{id}}/pdf: 200 application/pdf, {len(pdf)} bytes")

    def mail():
        msgs = [m for m in mailcatcher_messages(stack) if email in m["rcpt_tos"]]
        return msgs if msgs and any(a["filename"] and a["filename"].lower().endswith(".pdf")
                                    for m in msgs for a in m["attachments"]) else None
    msgs = wait_until(f"an email to {email} with the PDF", mail, 90)
    time.sleep(2)  # a second copy would show up here
    msgs = [m for m in mailcatcher_messages(stack) if email in m["rcpt_tos"]]
    if len(msgs) != 1:
        raise Failed(f"{len(msgs)} emails to {email}, expected exactly 1")
    pdfs = [a for a in msgs[0]["attachments"] if (a["filename"] or "").lower().endswith(".pdf")]
    same = any(a["sha256"] == hashlib.sha256(pdf).hexdigest() for a in pdfs)
    say(f"mail catcher: 1 email to {email}, subject {msgs[0]['subject']!r}, attachment "
        f"{pdfs[0]['filename']} ({pdfs[0]['size']} bytes, {'same' if same else 'NOT the same'} bytes as /pdf)")
    if not same:
        REPORT.append("warning: the emailed PDF differs from GET /contracts/{id}/pdf")

    msg = read_department_message(stack.amqp_url, "crm.department.warehouse", contract["id"])
    say(f"pika from the host: crm.department.warehouse gave {msg.get('type')} for {msg['contract'].get('number')}: "
        f"{msg.get('text')!r}")
    REPORT.append(f"seed flow: contract {contract.get('number')} reserved, PDF {len(pdf)} B, 1 email, "
                  f"1 warehouse message")


def scale_and_kill(stack: Stack, workers: list[str], count: int = 30) -> None:
    """With documents-worker at 3: confirm `count` contracts, kill one worker (SIGKILL) mid-run, then show
    every contract got exactly one document and one email, nothing dead-lettered, and the work spread
    over the workers (each one's crm_events_handled_total for contract.confirmed)."""
    api = Api(stack.gateway)
    api.login(ADMIN_USER, ADMIN_PASSWORD)
    run = uuid.uuid4().hex[:6].upper()
    code = f"SK-{run}"
    api.product(code, stock=count * 2 + 10)
    ev = "contract.confirmed"
    before = {w: stack.handled(w, ev) for w in workers}
    ids, emails = [], {}
    victim, victim_handled = workers[-1], {}
    for i in range(count):
        email = f"scale-{run.lower()}-{i}@example.com"
        customer_id = api.customer(f"Scale {run} #{i}", email)
        c = api.contract(customer_id, code, quantity=1)
        api.confirm(c["id"])
        ids.append(c["id"])
        emails[c["id"]] = email
        if i == count // 3:
            victim_handled = stack.handled(victim, ev)
            stack.cli("kill", "--signal", "KILL", victim)
            say(f"killed {victim} (SIGKILL) after {i + 1} confirmations; it had handled {victim_handled}")
    say(f"{count} contracts confirmed")

    def all_rendered():
        return all(api.get_contract(cid).get("document_id") for cid in ids)
    wait_until(f"{count} contracts rendered", all_rendered, 240, interval=3,
               on_wait=lambda: stack.start_stragglers())

    doubled = {}
    for cid in ids:
        n = sum(1 for e in api.timeline(cid) if e.get("type") == "document.rendered")
        if n != 1:
            doubled[cid] = n
    if doubled:
        raise Failed(f"document.rendered not exactly once per contract: {doubled}")

    def per_contract():
        msgs = mailcatcher_messages(stack)
        return {cid: sum(emails[cid] in m["rcpt_tos"] for m in msgs) for cid in ids}
    wait_until(f"{count} emails", lambda: all(v >= 1 for v in per_contract().values()), 120, interval=3)
    time.sleep(3)  # a second copy of any email would arrive here
    bad = {cid: n for cid, n in per_contract().items() if n != 1}
    if bad:
        raise Failed(f"emails not exactly one per contract: {bad}")

    spread = {}
    for w in workers:
        now = stack.handled(w, ev) if w in stack.containers("documents-worker") else {}
        if w == victim:  # counted before the kill, plus what its restarted process did since
            done = {k: victim_handled.get(k, 0) - before[w].get(k, 0) + now.get(k, 0)
                    for k in set(victim_handled) | set(now)}
        else:
            done = {k: now.get(k, 0) - before[w].get(k, 0) for k in now}
        spread[w] = {k: int(v) for k, v in sorted(done.items()) if v}
    say(f"{ev} handled per documents-worker (outcome: count): {spread}; {victim} is "
        f"{'running again (restart policy)' if victim in stack.containers('documents-worker') else 'not running'}")
    queues = stack.rabbit_queues()
    dead = queues.get("crm.dead", (0, 0))
    say(f"queues (ready, unacked): crm.dead {dead}; "
        f"{ {q: v for q, v in queues.items() if q.startswith('crm.documents')} }")
    if dead[0]:
        raise Failed(f"{dead[0]} messages dead-lettered to crm.dead")
    handled_total = sum(v.get("handled", 0) for v in spread.values())
    busy = [w for w, v in spread.items() if v.get("handled")]
    if len(busy) < 2:
        REPORT.append(f"warning: the work did not spread over the documents workers: {spread}")
    REPORT.append(f"scale and kill: {count} contracts over {len(workers)} documents workers, {victim} killed "
                  f"mid-run; each contract rendered once and emailed once, crm.dead empty; "
                  f"{ev} handled per worker {spread} (sum handled {handled_total})")


# -- main ------------------------------------------------------------------------------------------
def compose_tool() -> tuple[list[str], str]:
    if os.environ.get("CRM_COMPOSE"):
        cmd = shlex.split(os.environ["CRM_COMPOSE"])
        return cmd, "podman" if "podman" in cmd[0] else "docker"
    if shutil.which("podman-compose") and shutil.which("podman"):
        return ["podman-compose"], "podman"
    # A docker CLI without a reachable daemon (this machine) is no container engine.
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return ["docker", "compose"], "docker"
    raise Failed("neither podman-compose nor a running docker found (deploy/local-images.sh installs podman)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--project", default=os.environ.get("CRM_COMPOSE_PROJECT", "crm-compose-test"))
    p.add_argument("--build", action="store_true", help="run deploy/local-images.sh first")
    p.add_argument("--smoke", action="store_true",
                   help="only up, health, mail catcher API, scale to 3, down: skip drive_seed_flow() and scale_and_kill()")
    p.add_argument("--no-kill", action="store_true", help="skip scale_and_kill() only")
    p.add_argument("--keep", action="store_true", help="leave the stack running (no down)")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for the stack to be healthy")
    args = p.parse_args(argv)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    t_start = time.monotonic()
    if args.build:  # first: it installs podman on a machine that has none yet
        with stage("build images (deploy/local-images.sh)"):
            subprocess.run(["bash", str(ROOT / "deploy" / "local-images.sh")], cwd=ROOT, check=True)
    compose, engine = compose_tool()
    env = {
        "CRM_GATEWAY_PORT": os.environ.get("CRM_GATEWAY_PORT") or str(free_port()),
        "CRM_AMQP_PORT": os.environ.get("CRM_AMQP_PORT") or str(free_port()),
        "CRM_ADMIN_USER": ADMIN_USER,
        "CRM_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "CRM_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
    }
    if engine == "podman":  # no registry here: anything built by `up` starts from the local base image
        env.setdefault("CRM_BASE_IMAGE", os.environ.get("CRM_BASE_IMAGE", "localhost/debian-base:bookworm"))
    stack = Stack(args.project, compose, engine, env)
    say(f"project {args.project}: {' '.join(compose)}, gateway {stack.gateway}, AMQP port {env['CRM_AMQP_PORT']}")
    ok = False
    try:
        for image in ("crm-app:latest", "crm-postgres:latest", "crm-rabbitmq:latest"):
            if stack.cli("image", "inspect", image, check=False).returncode != 0:
                raise Failed(f"image {image} missing: run deploy/local-images.sh (or pass --build)")
        with stage("clean leftovers of the project"):
            stack.sweep()
        with stage("up -d"):
            stack.up(log="up")
        with stage("healthy"):
            wait_healthy(stack, args.timeout)
        with stage("mail catcher API"):
            check_mailcatcher(stack)
        if not args.smoke:
            with stage("seed flow"):
                drive_seed_flow(stack)
        with stage("scale documents-worker to 3"):
            workers = scale_documents_workers(stack, 3)
        if not (args.smoke or args.no_kill):
            with stage("30 contracts over 3 workers, one killed"):
                scale_and_kill(stack, workers)
        ok = True
    except Failed as exc:
        say(f"FAILED: {exc}")
        for name in stack.containers(running_only=False) if stack else []:
            tail = stack.cli("logs", "--tail", "15", name, check=False)
            print(f"----- {name} (last lines)\n{(tail.stdout + tail.stderr).strip()[-2500:]}")
    finally:
        if args.keep:
            say(f"--keep: the stack stays up; remove it with: {' '.join(compose)} -p {args.project} down -v")
        else:
            with stage("down"):
                stack.down()
                left = stack.cli("ps", "-a", "-q", *stack.label(), check=False).stdout.split()
                if left:
                    say(f"left behind: {left}")
                    ok = False
        print("\ncompose-test report")
        for name, took in TIMINGS:
            print(f"  {name:<45} {took:7.1f}s")
        print(f"  {'total':<45} {time.monotonic() - t_start:7.1f}s")
        for line in REPORT:
            print("  " + line)
        print("compose-test: " + ("PASSED" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
