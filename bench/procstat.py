"""CPU seconds and peak RSS of every process of the system, read from /proc (Linux only)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
BACKEND = re.compile(r"\(\d+\)|\[local\]")  # a client session: "postgres: 15/main: user db 127.0.0.1(5432) idle"


@dataclass
class Proc:
    pid: int
    ppid: int
    comm: str
    cpu_s: float  # utime + stime
    cmdline: str


def read_proc(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm is in parentheses and may itself contain spaces or parentheses: split at the last ')'.
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    ppid = int(fields[1])
    utime, stime = int(fields[11]), int(fields[12])
    return Proc(pid, ppid, comm, (utime + stime) / CLOCK_TICKS, cmdline)


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the process's resident-set high-water mark."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def _netns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def all_procs() -> dict[int, Proc]:
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            proc = read_proc(int(name))
            if proc is not None:
                procs[proc.pid] = proc
    return procs


def descendants(procs: dict[int, Proc], root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in procs:
            out.append(pid)
        stack.extend(children.get(pid, []))
    return out


class SystemTree:
    """Labels every process of the system under test, so two snapshots give CPU per process."""

    def __init__(self, roots: dict[str, int], pg_database: str | None = None, servers: bool = False):
        self.roots = roots  # label -> pid of a process we started (its children belong to it)
        self.pg_database = pg_database
        self.servers = servers  # also RabbitMQ and PostgreSQL (RabbitMQ mode)

    def label(self) -> dict[int, str]:
        procs = all_procs()
        labels: dict[int, str] = {os.getpid(): "load generator (bench, this process)"}
        for label, root in self.roots.items():
            for pid in descendants(procs, root):
                if pid == root:
                    labels[pid] = label
                else:
                    labels[pid] = f"{label} worker"
        if not self.servers:
            return labels
        own_net = _netns(os.getpid())
        for proc in procs.values():
            if proc.pid in labels or _netns(proc.pid) != own_net:
                continue  # containers (another network namespace) are not our broker or database
            if proc.comm == "beam.smp" and "rabbit boot" in proc.cmdline:
                labels[proc.pid] = "rabbitmq (beam.smp, shared broker)"
            elif self.pg_database and proc.cmdline.startswith("postgres:"):
                if f" {self.pg_database} " in f" {proc.cmdline} ":
                    labels[proc.pid] = "postgresql backends of the bench database"
                elif not BACKEND.search(proc.cmdline):  # checkpointer, WAL writer, …; not others' sessions
                    labels[proc.pid] = "postgresql server processes (shared)"
            elif self.pg_database and proc.comm == "postgres" and " -D " in proc.cmdline:
                labels[proc.pid] = "postgresql server processes (shared)"
        return labels

    def snapshot(self) -> dict:
        """{pid: (label, cpu_s)} for every labelled process now."""
        labels = self.label()
        snap = {}
        for pid, label in labels.items():
            proc = read_proc(pid)
            if proc is not None:
                snap[pid] = (label, proc.cpu_s)
        return snap


def delta(before: dict, after: dict) -> list[dict]:
    """Per process: CPU seconds spent between the snapshots and peak RSS; grouped rows for shared servers."""
    rows: dict[str, dict] = {}
    for pid, (label, cpu_after) in after.items():
        cpu_before = before.get(pid, (label, 0.0))[1]
        rss = peak_rss_mb(pid) or 0.0
        grouped = label.startswith("postgresql") or label.startswith("rabbitmq")
        key = label if grouped else f"{label}|{pid}"
        row = rows.setdefault(key, {"process": label, "pids": [], "cpu_s": 0.0, "peak_rss_mb": 0.0})
        row["pids"].append(pid)
        row["cpu_s"] += max(0.0, cpu_after - cpu_before)
        # Several backends: report the largest one's peak (their sum double-counts shared buffers).
        row["peak_rss_mb"] = max(row["peak_rss_mb"], rss)
    out = []
    for row in rows.values():
        row["cpu_s"] = round(row["cpu_s"], 2)
        row["peak_rss_mb"] = round(row["peak_rss_mb"], 1)
        pids = row.pop("pids")
        row["processes"] = len(pids)
        if len(pids) == 1:
            row["pid"] = pids[0]
        out.append(row)
    out.sort(key=lambda r: -r["cpu_s"])
    return out



def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS
