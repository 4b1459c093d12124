"""Gunicorn settings shared by every service's web role.

    gunicorn -c deploy/gunicorn.conf.py 'services.<name>.app:create_app()'

Port: $PORT, else the service's own default (taken from the app named on the
command line).  Workers: $GUNICORN_WORKERS (default 2), 4 threads each (gthread).
No preload: each worker opens its own database and broker connections.
"""

import os
import re
import sys

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
