"""`--profile DIR`: py-spy on every process of the system while the load runs, and where their CPU went.

py-spy is not a requirement of the project: `pip install py-spy` into the virtualenv to use this.
Samples are taken only while a thread holds the GIL (`--gil`), so they show CPU, not waiting.
"""
from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from bench import procstat


def py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def start(tree: procstat.SystemTree, directory: Path, delay: float, seconds: float, rate: int = 50):
    """Record every Python process of the system tree after `delay` seconds; returns the thread."""
    exe = py_spy()
    if exe is None:
        print("[bench] --profile: py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return None
    directory.mkdir(parents=True, exist_ok=True)

    def record():
        threading.Event().wait(delay)
        procs = []
        for pid, label in tree.label().items():
            proc = procstat.read_proc(pid)
            if proc is None or "python" not in proc.cmdline or label.startswith("load generator"):
                continue
            name = label.replace(" ", "_").replace("(", "").replace(")", "").replace(",", "")
            out = directory / f"{name}-{pid}.raw"
            procs.append(subprocess.Popen([exe, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", str(rate),
                                           "--gil", "--nonblocking", "-f", "raw", "-o", str(out)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for proc in procs:
            proc.wait()

    thread = threading.Thread(target=record, name="profiler", daemon=True)
    thread.start()
    return thread


def summary(directory: Path, top: int = 25) -> str:
    """Markdown: per profiled process, the functions with the most samples (inclusive), own code first."""
    lines = []
    for raw in sorted(directory.glob("*.raw")):
        inclusive: collections.Counter = collections.Counter()
        total = 0
        for line in raw.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            for frame in set(stack.split(";")):
                inclusive[frame] += n
        if not total:
            continue
        lines += [f"#### {raw.stem} — {total} samples", "", "| share | function |", "|---|---|"]
        ours = [(f, c) for f, c in inclusive.most_common() if "crmkit/" in f or "services/" in f]
        for frame, count in ours[:top]:
            lines.append(f"| {100 * count / total:.0f}% | `{frame}` |")
        lines.append("")
    return "\n".join(lines)
