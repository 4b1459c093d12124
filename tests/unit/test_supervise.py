"""How `python -m crmkit.supervise` starts each service: its gunicorn command lines."""
from __future__ import annotations

from crmkit.supervise import arguments, commands


def _web_workers(argv, environ) -> dict[str, str]:
    args = arguments(argv, environ)
    lines = commands(web_workers=args.web_workers, ports={"contracts": 8000})
    return {label: argv_[argv_.index("-w") + 1] for label, argv_ in lines if label.endswith("-web")}


def test_gunicorn_workers_sets_the_web_processes_of_every_service():
    assert set(_web_workers([], {}).values()) == {"2"}
    assert set(_web_workers([], {"GUNICORN_WORKERS": "3"}).values()) == {"3"}
    assert set(_web_workers(["--web-workers", "4"], {"GUNICORN_WORKERS": "3"}).values()) == {"4"}
    assert len(_web_workers([], {})) == 5


def _metrics_ports(argv, environ, scale=None) -> dict[str, str]:
    args = arguments(argv, environ)
    lines = commands(ports={"contracts": 8000}, workers_per_service=scale,
                     metrics_base=args.metrics_base_port or None)
    return {label: argv_[argv_.index("--metrics-port") + 1] for label, argv_ in lines if "--metrics-port" in argv_}


def test_each_worker_serves_its_metrics_on_a_port_of_its_own():
    """make run with RabbitMQ: the workers' metrics (queue waits, which service to scale) are reachable."""
    ports = _metrics_ports([], {}, scale={"documents": 2})
    assert ports == {"contracts-worker-1": "9100", "quotes-worker-1": "9101", "inventory-worker-1": "9102",
                     "documents-worker-1": "9103", "documents-worker-2": "9104", "notifications-worker-1": "9105"}
    assert _metrics_ports([], {"CRM_METRICS_BASE_PORT": "9200"})["contracts-worker-1"] == "9200"
    assert _metrics_ports(["--metrics-base-port", "0"], {}) == {}
    assert all("--metrics-port" not in argv for _, argv in commands())  # tests' clusters: none unless asked
