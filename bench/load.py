"""The load: K clients creating and confirming contracts, and a few pollers watching each saga complete.

A saga is complete when its timeline shows stock.reserved (or stock.shortage), document.rendered,
email.sent and department.notified for every ticked department, and the bench's SMTP server has
accepted its email. A poller asks for a saga's timeline only once its email has arrived (or, for a
stock-only run, shortly after the confirm) and backs off while events are missing, so polling stays
a small fraction of the load: about one timeline read per saga.
"""
from __future__ import annotations

import random
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from bench.seed import Client, Seed

FULL = "full"
STOCK_ONLY = "stock"


def parse_at(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class Saga:
    contract_id: str
    number: str
    client: int
    created_at: float  # wall clock when POST /contracts was sent
    post_s: float
    confirm_s: float
    confirmed_at: float  # wall clock when /confirm answered
    departments: list
    post_server_timing: str | None = None  # the create's Server-Timing header
    events: dict = field(default_factory=dict)  # first `at` per event type (server clock)
    department_count: int = 0
    smtp_at: float | None = None
    done_at: float | None = None
    detected_at: float | None = None  # wall clock when the poller saw it complete (the progress line's rate)
    failed: str | None = None
    polls: int = 0
    next_poll: float = 0.0
    backoff: float = 0.25

    @property
    def latency_s(self) -> float | None:
        return None if self.done_at is None else self.done_at - self.created_at


@dataclass
class Failure:
    at: float
    what: str
    detail: str


class Run:
    """Shared state of one load phase."""

    def __init__(self, seed: Seed, smtp, saga_kind: str, clients: int, duration: float | None,
                 count: int | None, offered_rate: float | None, lines: int = 5, departments=("warehouse",)):
        self.seed = seed
        self.smtp = smtp
        self.saga_kind = saga_kind
        self.clients = clients
        self.duration = duration
        self.count = count
        self.offered_rate = offered_rate
        self.lines = lines
        self.departments = list(departments)
        self.lock = threading.Lock()
        self.tickets = 0
        self.sagas: dict[str, Saga] = {}
        self.by_number: dict[str, Saga] = {}
        self.pending: set[str] = set()
        self.failures: list[Failure] = []
        self.post_s: list[float] = []
        self.confirm_s: list[float] = []
        self.late_starts = 0  # open loop: tickets that started later than scheduled
        self.smtp_early: dict[str, float] = {}  # accepted before the saga was registered
        self.smtp_unmatched = 0
        self.timeline_reads = 0
        self.max_poll_rate = 50.0
        # Several pollers: one waits for each timeline read, and at 30 sagas/s on a busy gateway a single one
        # falls behind, so completions would show up late (the latency, from server clocks, is unaffected).
        self.pollers = 4
        self.polling: set[str] = set()
        self.stop_load = threading.Event()
        self.stop_all = threading.Event()
        self.started = self.load_ended = None

    # the clients

    def _next_ticket(self) -> int | None:
        with self.lock:
            if self.stop_load.is_set():
                return None
            ticket = self.tickets
            if self.count is not None and ticket >= self.count:
                return None
            if self.duration is not None and time.time() - self.started >= self.duration:
                return None
            self.tickets += 1
            return ticket

    def fail(self, what: str, detail: str):
        with self.lock:
            self.failures.append(Failure(time.time(), what, detail[:500]))

    def client_loop(self, index: int):
        token, customers = self.seed.sales[index % len(self.seed.sales)]
        client = Client(self.seed.base_url, token)
        rng = random.Random(index * 7919 + 17)
        while True:
            ticket = self._next_ticket()
            if ticket is None:
                return
            if self.offered_rate:
                due = self.started + ticket / self.offered_rate
                delay = due - time.time()
                if delay > 0:
                    if self.stop_load.wait(delay):
                        return
                elif delay < -0.05:
                    with self.lock:
                        self.late_starts += 1
            body = {"customer_id": rng.choice(customers),
                    "lines": [{"product_code": code, "quantity": rng.randint(1, 40)}
                              for code in rng.sample(self.seed.products, self.lines)],
                    "send_to_customer": True, "notify_departments": self.departments}
            r, started, post_s, error = client.timed("POST", "/contracts", json_body=body)
            if r is None or r.status_code != 201:
                self.fail("POST /contracts", error or f"{r.status_code}: {r.text[:300]}")
                continue
            contract = r.json()
            r2, _, confirm_s, error = client.timed("POST", f"/contracts/{contract['id']}/confirm")
            if r2 is None or r2.status_code != 200:
                self.fail("POST /contracts/{id}/confirm", error or f"{r2.status_code}: {r2.text[:300]}")
                continue
            saga = Saga(contract["id"], contract["number"], index, started, post_s, confirm_s, time.time(),
                        list(self.departments), r.server_timing)
            saga.next_poll = self._first_poll(saga)
            with self.lock:
                self.post_s.append(post_s)
                self.confirm_s.append(confirm_s)
                self.sagas[saga.contract_id] = saga
                self.by_number[saga.number] = saga
                self.pending.add(saga.contract_id)
                early = self.smtp_early.pop(saga.number, None)
                if early is not None:
                    saga.smtp_at = early
                    saga.next_poll = early + 0.3

    def _first_poll(self, saga: Saga) -> float:
        if self.saga_kind == STOCK_ONLY:
            return saga.confirmed_at + 0.15
        # Wait for the email; read the timeline anyway after a while, to spot a failed document or email.
        return saga.confirmed_at + 10.0

    # the poller

    def _read_smtp(self):
        for item in self.smtp.accepted():
            numbers = item.get("numbers") or []
            with self.lock:
                matched = False
                for number in numbers:
                    saga = self.by_number.get(number)
                    if saga is not None:
                        matched = True
                        if saga.smtp_at is None:
                            saga.smtp_at = item["at"]
                            # email.sent is committed and relayed just after the SMTP server accepts.
                            saga.next_poll = min(saga.next_poll, item["at"] + 0.3)
                    elif number.startswith("HT-"):
                        matched = True
                        self.smtp_early.setdefault(number, item["at"])
                if not matched:
                    self.smtp_unmatched += 1

    def _complete(self, saga: Saga) -> bool:
        stock = "stock.reserved" in saga.events or "stock.shortage" in saga.events
        if self.saga_kind == STOCK_ONLY:
            return stock
        return (stock and "document.rendered" in saga.events and "email.sent" in saga.events
                and saga.department_count >= len(saga.departments) and saga.smtp_at is not None)

    def _poll(self, client: Client, saga: Saga):
        r, _, _, error = client.timed("GET", f"/contracts/{saga.contract_id}/timeline", params={"limit": 200})
        saga.polls += 1
        with self.lock:
            self.timeline_reads += 1
        if r is None or r.status_code != 200:
            self.fail("GET /contracts/{id}/timeline", error or f"{r.status_code}: {r.text[:300]}")
            saga.next_poll = time.time() + 1.0
            return
        departments = 0
        for item in r.json()["items"]:
            at = parse_at(item["at"])
            saga.events.setdefault(item["type"], at)
            if item["type"] == "department.notified":
                departments += 1
            if item["type"] in ("document.failed", "email.failed") and saga.failed is None:
                saga.failed = f"{item['type']}: {item.get('summary', '')}"
        saga.department_count = departments
        if saga.failed:
            with self.lock:
                self.pending.discard(saga.contract_id)
            self.fail(f"saga {saga.number}", saga.failed)
            return
        if self._complete(saga):
            kinds = ["stock.reserved" if "stock.reserved" in saga.events else "stock.shortage"]
            if self.saga_kind == FULL:
                kinds += ["document.rendered", "email.sent", "department.notified"]
            times = [saga.events[k] for k in kinds]
            if self.saga_kind == FULL:
                times.append(saga.smtp_at)
            saga.detected_at = time.time()  # first: the progress line reads it of every saga with done_at
            saga.done_at = max(times)
            with self.lock:
                self.pending.discard(saga.contract_id)
            return
        # Still waiting: soon if only the last events are missing, rarely while the email has not arrived.
        waiting_for_mail = self.saga_kind == FULL and saga.smtp_at is None
        saga.next_poll = time.time() + (max(saga.backoff, 10.0) if waiting_for_mail else saga.backoff)
        saga.backoff = min(saga.backoff * 1.6, 2.0)

    def _next_due(self) -> Saga | None:
        now = time.time()
        with self.lock:
            due = [self.sagas[i] for i in self.pending
                   if i not in self.polling and self.sagas[i].next_poll <= now]
            if not due:
                return None
            saga = min(due, key=lambda s: s.next_poll)
            self.polling.add(saga.contract_id)
            return saga

    def poller_loop(self, index: int):
        client = Client(self.seed.base_url, self.seed.admin_token)
        ceiling = self.max_poll_rate / self.pollers
        while not self.stop_all.is_set():
            if index == 0:  # one poller reads the SMTP log
                self._read_smtp()
            saga = self._next_due()
            if saga is None:
                self.stop_all.wait(0.05)
                continue
            began = time.monotonic()
            try:
                self._poll(client, saga)
            finally:
                with self.lock:
                    self.polling.discard(saga.contract_id)
            # A ceiling on timeline reads: completion times come from the server's clock, so a late
            # read only delays the bench's bookkeeping, never the measured latency.
            spare = 1.0 / ceiling - (time.monotonic() - began)
            if spare > 0:
                time.sleep(spare)

    # progress

    def progress_line(self) -> str:
        now = time.time()
        elapsed = now - self.started
        with self.lock:
            done = [s for s in self.sagas.values() if s.done_at is not None]
            pending = len(self.pending)
            failures = len(self.failures)
            confirmed = len(self.sagas)
        # Counted when seen, not by the server's completion time, which is a moment earlier.
        recent = sorted(s.latency_s for s in done if s.detected_at > now - 5)
        p50 = f"{recent[len(recent) // 2] * 1000:.0f}ms" if recent else "-"
        rate = len(recent) / min(5.0, max(elapsed, 0.001))
        return (f"[bench] {elapsed:6.1f}s  confirmed {confirmed:5d}  complete {len(done):5d}  pending {pending:4d}  "
                f"errors {failures}  last 5s: {rate:5.1f} sagas/s, p50 {p50}")

    def progress_loop(self, interval: float):
        while not self.stop_all.wait(interval):
            print(self.progress_line(), file=sys.stderr, flush=True)


def run(seed: Seed, smtp, *, saga_kind: str, clients: int, duration: float | None, count: int | None,
        offered_rate: float | None, drain_timeout: float, progress_interval: float = 2.0,
        on_load_start=None, on_drained=None, system=None) -> Run:
    """Drive the load, then wait for every confirmed saga to complete (or time out)."""
    state = Run(seed, smtp, saga_kind, clients, duration, count, offered_rate)
    if on_load_start:
        on_load_start()
    state.started = time.time()
    threads = [threading.Thread(target=state.client_loop, args=(i,), name=f"client-{i}", daemon=True)
               for i in range(clients)]
    pollers = [threading.Thread(target=state.poller_loop, args=(i,), name=f"poller-{i}", daemon=True)
               for i in range(state.pollers)]
    progress = threading.Thread(target=state.progress_loop, args=(progress_interval,), name="progress", daemon=True)
    for thread in threads + pollers + [progress]:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)
            dead = system.dead() if system is not None else []
            if dead:
                state.fail("system", f"processes exited: {', '.join(dead)}")
                state.stop_load.set()
    state.load_ended = time.time()
    deadline = time.monotonic() + drain_timeout
    while state.pending and time.monotonic() < deadline:
        time.sleep(0.1)
    state.stop_all.set()
    for poller in pollers:
        poller.join(30)
    progress.join(5)
    for contract_id in sorted(state.pending):
        saga = state.sagas[contract_id]
        seen = ", ".join(sorted(saga.events)) or "nothing"
        state.fail(f"saga {saga.number}", f"never completed within {drain_timeout:.0f}s after the load "
                                           f"(timeline: {seen}; email {'accepted' if saga.smtp_at else 'not seen'})")
    if on_drained:
        on_drained()
    print(state.progress_line(), file=sys.stderr, flush=True)
    return state
