"""`python -m crmkit.supervise`: every service as its own processes (gunicorn web + worker), as compose does.

Used by `make run` when AMQP_URL and DATABASE_URL are set, and by the end-to-end tests.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from crmkit.settings import DEFAULT_PORTS, SERVICES


def commands(services=SERVICES, web_workers: int = 2, ports: dict | None = None,
             workers_per_service: dict | None = None, metrics_base: int | None = None) -> list[tuple[str, list[str]]]:
    """(label, argv) for each process: one gunicorn and N workers per service; with `metrics_base`, the workers
    serve their metrics on consecutive ports from it (contracts-worker-1 first)."""
    next_metrics = metrics_base
    python = sys.executable
    gunicorn = os.path.join(os.path.dirname(python), "gunicorn")
    ports = {**DEFAULT_PORTS, **(ports or {})}
    result = []
    for name in services:
        port = ports[name]
        result.append((f"{name}-web", [gunicorn, "-c", "deploy/gunicorn.conf.py", "-b", f"127.0.0.1:{port}",
                                       "-w", str(web_workers), f"services.{name}.app:create_app()"]))
        for i in range((workers_per_service or {}).get(name, 1)):
            argv = [python, "-m", f"services.{name}.worker"]
            if next_metrics:
                argv += ["--metrics-port", str(next_metrics)]
                next_metrics += 1
            result.append((f"{name}-worker-{i + 1}", argv))
    return result


def service_env(base: dict | None = None, ports: dict | None = None) -> dict:
    """The environment of every process: each service learns where the others' HTTP lives."""
    env = dict(os.environ if base is None else base)
    ports = {**DEFAULT_PORTS, "contracts": int(env.get("PORT") or DEFAULT_PORTS["contracts"]), **(ports or {})}
    for name in SERVICES:
        env.setdefault(f"{name.upper()}_URL", f"http://127.0.0.1:{ports[name]}")
    return env


def arguments(argv=None, environ=os.environ) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    # The same setting as the containers' gunicorn (deploy/gunicorn.conf.py), which -w on its command line overrides.
    parser.add_argument("--web-workers", type=int, default=int(environ.get("GUNICORN_WORKERS") or 2),
                        help="gunicorn workers per service (default: $GUNICORN_WORKERS, else 2)")
    parser.add_argument("--scale", action="append", default=[], metavar="SERVICE=N",
                        help="run N workers of a service, e.g. --scale documents=2")
    parser.add_argument("--metrics-base-port", type=int, default=int(environ.get("CRM_METRICS_BASE_PORT") or 9100),
                        help="workers serve their Prometheus metrics on 127.0.0.1 from this port on, one each "
                             "(default: $CRM_METRICS_BASE_PORT, else 9100; 0 turns them off)")
    return parser.parse_args(argv)


def main(argv=None):
    args = arguments(argv)
    env = service_env()
    if not env.get("AMQP_URL"):
        raise SystemExit("AMQP_URL is not set: use the embedded mode (make run without it).")
    scale = {k: int(v) for k, v in (item.split("=", 1) for item in args.scale)}
    port = int(env.get("PORT") or 8000)
    procs = []
    for label, argv_ in commands(web_workers=args.web_workers, ports={"contracts": port}, workers_per_service=scale,
                                 metrics_base=args.metrics_base_port or None):
        procs.append((label, subprocess.Popen(argv_, env=env)))
        metrics = f", metrics on 127.0.0.1:{argv_[-1]}" if "--metrics-port" in argv_ else ""
        print(f"started {label} (pid {procs[-1][1].pid}{metrics})", flush=True)
    stopping = False

    def _stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopping:
            for label, proc in procs:
                if proc.poll() is not None:
                    print(f"{label} exited with {proc.returncode}; stopping everything", flush=True)
                    stopping = True
            time.sleep(0.5)
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
