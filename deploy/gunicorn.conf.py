"""Gunicorn settings shared by every service's web role.

    gunicorn -c deploy/gunicorn.conf.py 'services.<name>.app:create_app()'

Port: $PORT, else the service's own default (taken from the app named on the
command line).  Workers: $GUNICORN_WORKERS (default 2), 4 threads each (gthread).
No preload: each worker opens its own database and broker connections.
"""

import json
import os
import re
import shutil
import sys
import tempfile

from gunicorn import util as gunicorn_util

DEFAULT_PORTS = {
    "contracts": 8000,  # the gateway
    "quotes": 8001,
    "inventory": 8002,
    "documents": 8003,
    "notifications": 8004,
}


def _service_from_argv(argv):
    for arg in argv:
        m = re.search(r"services\.(\w+)[.:]", arg)
        if m:
            return m.group(1)
    return "contracts"


service = _service_from_argv(sys.argv)
port = os.environ.get("PORT") or DEFAULT_PORTS.get(service, 8000)

bind = f"0.0.0.0:{port}"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = 4
worker_class = "gthread"
preload_app = False
proc_name = f"crm-{service}-web"

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("CRM_LOG_LEVEL", "info").lower()
capture_output = True

timeout = 60
graceful_timeout = 20
keepalive = 5

# several gunicorns run side by side on one host (make run): no shared control
# socket under $HOME; /dev/shm keeps the worker heartbeat off a container's disk
control_socket_disable = True
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# Prometheus: every worker counts in files under one directory, and /metrics on any worker reads them all
# (crmkit/web/health.py). Without it a scrape sees only the worker that answered it, and so a share of the
# traffic that changes from scrape to scrape. The directory is this gunicorn's own, whatever the environment
# says (two services sharing one would count each other's requests, and one starting would wipe the other's),
# and is set before a worker imports prometheus_client.
_SHM = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


def _remove_orphans():
    """Directories of gunicorns that died without on_exit (SIGKILL, a crashed container's restart)."""
    for name in os.listdir(_SHM):
        found = re.fullmatch(r"crm-\w+-metrics-(\d+)-\w+", name)
        if found and int(found.group(1)) != os.getpid():
            try:
                os.kill(int(found.group(1)), 0)
            except ProcessLookupError:
                shutil.rmtree(os.path.join(_SHM, name), ignore_errors=True)
            except PermissionError:  # alive, someone else's
                pass


_remove_orphans()
_metrics_dir = tempfile.mkdtemp(prefix=f"crm-{service}-metrics-{os.getpid()}-", dir=_SHM)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def child_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    shutil.rmtree(_metrics_dir, ignore_errors=True)


# A request line of up to 8 KiB (gunicorn's largest besides unlimited): long query strings such as
# ?codes=… of a catalogue read pass, and beyond it the answer below is 414.
limit_request_line = 8190

# The codes of crmkit/web/errors.py for these statuses, written here: gunicorn reads this file before the
# project's packages are importable (its own directory is on the path, not the working directory).
_ERROR_CODES = {400: "bad_request", 403: "forbidden", 414: "uri_too_long", 417: "expectation_failed",
                431: "headers_too_large", 500: "internal_error", 501: "not_implemented"}


def _json_error(sock, status_int, reason, mesg):
    """What gunicorn answers itself, before any app sees the request (a request line or header too long, a
    malformed request): the API's JSON error shape, like every other answer, instead of an HTML page."""
    body = json.dumps({"error": {"code": _ERROR_CODES.get(status_int, "bad_request"),
                                 "message": f"{reason}: {mesg}" if mesg else reason}}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin1")
    gunicorn_util.write_nonblock(sock, head + body)


# Workers call util.write_error at the moment of the error; they fork from this process, patched.
gunicorn_util.write_error = _json_error
