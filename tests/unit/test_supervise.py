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
