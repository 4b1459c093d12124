"""`make bench` / `python -m bench`: the full contract saga under load, through the gateway over HTTP.

    python -m bench [--quick] [--volume N] [--clients K] [--duration S | --count N] [--offered-rate R]
                    [--scale documents=2] [--saga auto|full|stock] [--out DIR] [--tag TAG]

Mode from the environment: with AMQP_URL and DATABASE_URL set, every service runs as its own processes
on a fresh vhost and database derived from those URLs; otherwise the embedded mode (one gunicorn).
Exits non-zero when any request failed or any saga did not complete.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import load, metrics, micro, procstat, profile, report, seed as seeding
from bench.infra import ROOT
from bench.system import ClusterSystem, EmbeddedSystem, SmtpServer

RESULTS = ROOT / "bench" / "results"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few dozen sagas, no preload (what make test runs)")
    p.add_argument("--volume", type=int, default=None,
                   help="contracts to preload before measuring (default 10000; 0 with --quick)")
    p.add_argument("--clients", type=int, default=None, help="concurrent clients (default 8; 4 with --quick)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--duration", type=float, default=None, help="seconds of load (default 60)")
    group.add_argument("--count", type=int, default=None, help="sagas to start (default: --duration; 36 quick)")
    p.add_argument("--offered-rate", type=float, default=None, help="open loop: start R sagas per second")
    p.add_argument("--scale", action="append", default=[], metavar="SERVICE=N",
                   help="RabbitMQ mode: N worker processes of a service, e.g. --scale documents=2")
    p.add_argument("--web-workers", type=int, default=2, help="RabbitMQ mode: gunicorn workers per service")
    p.add_argument("--threads", type=int, default=16, help="embedded mode: gunicorn threads")
    p.add_argument("--saga", choices=("auto", "full", "stock"), default="auto",
                   help="what completes a saga; auto = full once documents and notifications handle events")
    p.add_argument("--drain-timeout", type=float, default=None,
                   help="seconds to wait after the load for pending sagas (default 60; 300 with --quick)")
    p.add_argument("--products", type=int, default=50)
    p.add_argument("--smtp-delay", type=float, default=0.0, metavar="MS",
                   help="the SMTP server answers each message this much later, as a remote relay does")
    p.add_argument("--request-timeout", type=float, default=None, help="seconds per HTTP request (30; 120 quick)")
    p.add_argument("--no-micro", action="store_true", help="skip the PDF and relay micro-benchmarks")
    p.add_argument("--out", type=Path, default=RESULTS, help="where the .json and .md go")
    p.add_argument("--tag", default="", help="appended to the result file names")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, SQLite files)")
    p.add_argument("--profile", type=Path, default=None, metavar="DIR",
                   help="py-spy every process of the system during the load; raw stacks and a summary in DIR")
    args = p.parse_args(argv)
    if args.volume is None:
        args.volume = 0 if args.quick else 10000
    if args.clients is None:
        args.clients = 4 if args.quick else 8
    if args.count is None and args.duration is None:
        if args.quick:
            args.count = 36
        else:
            args.duration = 60.0
    if args.request_timeout is None:
        args.request_timeout = 120.0 if args.quick else 30.0
    if args.drain_timeout is None:
        args.drain_timeout = 300.0 if args.quick else 60.0
    args.scale = {k: int(v) for k, v in (item.split("=", 1) for item in args.scale)}
    return args


def detect_saga() -> str:
    """full when documents render on contract.confirmed and notifications email on document.rendered."""
    try:
        from services import documents, notifications
        renders = "contract.confirmed" in documents.spec().handlers
        mails = {"document.rendered", "contract.confirmed"} <= set(notifications.spec().handlers)
    except Exception:
        return load.STOCK_ONLY
    return load.FULL if renders and mails else load.STOCK_ONLY


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _interrupt(*_):
    raise KeyboardInterrupt()


def main(argv=None) -> int:
    args = parse_args(argv)
    # SIGTERM (timeout, CI cancelling) unwinds like Ctrl-C, so the system's processes and vhost are removed.
    signal.signal(signal.SIGTERM, _interrupt)
    amqp_url, database_url = os.environ.get("AMQP_URL"), os.environ.get("DATABASE_URL")
    mode = "rabbitmq" if amqp_url and database_url else "embedded"
    saga_kind = detect_saga() if args.saga == "auto" else {"full": load.FULL, "stock": load.STOCK_ONLY}[args.saga]
    if saga_kind == load.STOCK_ONLY:
        say("saga = stock reserved only (documents/notifications do not handle the saga's events yet)")
    started_iso = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")

    # The CPU-speed check runs even without the micro-benchmarks, before and after the load: on a shared
    # host the same code can take twice the CPU from one hour to the next, and runs compare only through it.
    micro_results: dict = dict(micro.cpu_calibration())
    if not args.no_micro:
        say("micro-benchmarks: PDF rendering, outbox relay")
        micro_results.update(micro.pdf_benchmark(runs=10 if args.quick else 50))
        try:
            micro_results.update(micro.relay_benchmark(amqp_url or DEFAULT_AMQP, rows=1000 if args.quick else 5000,
                                                       database_url=database_url if mode == "rabbitmq" else None))
        except Exception as exc:  # a broker we may not touch must not sink the whole run
            micro_results.update({"relay_events_per_s": None, "relay_note": f"{type(exc).__name__}: {exc}"[:300]})
        say(f"pdf {micro_results.get('pdf_ms')} ms ({micro_results.get('pdf_pages')} pages), "
            f"relay {micro_results.get('relay_events_per_s')} events/s")

    workdir = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    smtp = SmtpServer(workdir, delay_ms=args.smtp_delay).start()
    if mode == "rabbitmq":
        system = ClusterSystem(workdir, smtp, amqp_url, database_url, scale=args.scale, web_workers=args.web_workers)
    else:
        if args.scale:
            say("--scale applies to the RabbitMQ mode only; ignored")
        system = EmbeddedSystem(workdir, smtp, threads=args.threads)
    result = None
    try:
        say(f"starting the system ({mode}) in {workdir}")
        system.start()
        say("seeding through the gateway: settings, products, salespeople, customers")
        seeding.Client.default_timeout = args.request_timeout
        seed = seeding.make(system.base_url, products=args.products)
        preload_info = None
        if args.volume:
            from bench.preload import preload
            say(f"preloading {args.volume:,} contracts")
            preload_info = preload(system, seed, args.volume, log=say)
        tree = procstat.SystemTree({**system.roots(), "smtp server (aiosmtpd)": smtp.proc.pid},
                                   pg_database=system.pg_database, servers=mode == "rabbitmq")
        snaps: dict = {}
        # The system's own idle cost (pollers, heartbeats), so the report can tell it from the cost per saga.
        idle_seconds = 3.0 if args.quick else 5.0
        time.sleep(1.0)
        idle_before, idle_started = tree.snapshot(), time.monotonic()
        time.sleep(idle_seconds)
        idle = procstat.delta(idle_before, tree.snapshot())
        idle_elapsed = time.monotonic() - idle_started

        def on_load_start():
            snaps["t0"] = time.monotonic()
            snaps["metrics"] = metrics.scrape(system.metrics_urls())
            snaps["procs"] = tree.snapshot()
            snaps["machine"] = procstat.machine_cpu_seconds()
            snaps["loadavg"] = os.getloadavg()[0]
            if args.profile:
                span = args.duration or 40.0
                snaps["profiler"] = profile.start(tree, args.profile, delay=min(5.0, span / 4),
                                                  seconds=max(10.0, span - 10.0))

        def on_drained():
            snaps["t1"] = time.monotonic()
            snaps["machine_after"] = procstat.machine_cpu_seconds()
            snaps["procs_after"] = tree.snapshot()
            snaps["metrics_after"] = metrics.scrape(system.metrics_urls())
            micro_results["python_loop_3m_cpu_ms_after"] = micro.cpu_calibration()["python_loop_3m_cpu_ms"]
            if micro_results.get("pdf_cpu_ms"):
                # The host's speed drifts within a run: the PDF unit is timed at both ends, like the speed check.
                micro_results["pdf_cpu_ms_after"] = micro.pdf_benchmark(runs=10 if args.quick else 30)["pdf_cpu_ms"]

        what = f"{args.count} sagas" if args.count else f"{args.duration:g} s"
        say(f"load: {args.clients} clients, {what}" + (f", offered {args.offered_rate:g}/s" if args.offered_rate
                                                        else ", closed loop"))
        run = load.run(seed, smtp, saga_kind=saga_kind, clients=args.clients, duration=args.duration,
                       count=args.count, offered_rate=args.offered_rate, drain_timeout=args.drain_timeout,
                       on_load_start=on_load_start, on_drained=on_drained, system=system)
        config = {"clients": args.clients, "duration": args.duration, "count": args.count,
                  "offered_rate": args.offered_rate, "volume": args.volume, "scale": args.scale,
                  "web_workers": args.web_workers if mode == "rabbitmq" else None,
                  "threads": args.threads if mode == "embedded" else None, "quick": args.quick,
                  "products": args.products, "smtp_delay_ms": args.smtp_delay, "lines_per_contract": 5,
                  "departments": ["warehouse"], "cpus": os.cpu_count(), "git": git_commit()}
        busy = snaps["machine_after"][0] - snaps["machine"][0]
        elapsed = (snaps["machine_after"][1] - snaps["machine"][1]) / (os.cpu_count() or 1)
        machine = {"loadavg_1m_at_start": round(snaps["loadavg"], 1), "loadavg_1m_at_end": round(os.getloadavg()[0], 1),
                   "busy_cpu_s": round(busy, 1), "elapsed_s": round(elapsed, 1),
                   "capacity_cpu_s": round(elapsed * (os.cpu_count() or 1), 1)}
        result = report.build(run, mode=mode, system=system, config=config, micro=micro_results,
                              metrics_delta=metrics.diff(snaps["metrics"], snaps["metrics_after"]),
                              processes=procstat.delta(snaps["procs"], snaps["procs_after"]),
                              preload=preload_info, started_iso=started_iso, machine=machine,
                              idle={"processes": idle, "seconds": idle_elapsed},
                              measured_seconds=snaps["t1"] - snaps["t0"])
    except Exception as exc:
        say(f"FAILED: {type(exc).__name__}: {exc}")
        say(f"logs are in {workdir}")
        args.keep = True
        raise
    finally:
        system.stop()
        smtp.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    stem = datetime.now(timezone.utc).strftime("%Y-%m-%d") + f"-{mode}"
    for part in (["quick"] if args.quick else []) + [f"{k}{v}" for k, v in sorted(args.scale.items())] + \
            ([f"rate{args.offered_rate:g}"] if args.offered_rate else []) + \
            ([f"volume{args.volume}"] if args.volume and args.volume != 10000 else []) + \
            ([args.tag] if args.tag else []):
        stem += f"-{part}"
    json_path, md_path = report.write(result, args.out, stem)
    if args.profile and snaps.get("profiler") is not None:
        snaps["profiler"].join(120)
        (args.profile / "summary.md").write_text(profile.summary(args.profile))
        say(f"profiles: {args.profile}/summary.md")
    print(report.markdown(result))
    print(f"results: {json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path}")
    if result["errors"] or not result["sagas"]:
        say(f"{result['errors']} errors, {result['sagas']} sagas complete: failing")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
