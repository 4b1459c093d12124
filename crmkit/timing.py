"""Where one request's time went, for its Server-Timing header: database statements, calls to other services.

A context variable rather than Flask's `g`, so that the database layer can add to it without knowing about
Flask; outside a request (workers, scripts) nothing is collected and `add` returns at once.
"""
from __future__ import annotations

from contextvars import ContextVar, Token

_spent: ContextVar[dict | None] = ContextVar("crm_server_timing", default=None)


def start() -> Token:
    return _spent.set({})


def add(name: str, seconds: float) -> None:
    spent = _spent.get()
    if spent is not None:
        total, count = spent.get(name, (0.0, 0))
        spent[name] = (total + seconds, count + 1)


def stop(token: Token) -> dict[str, tuple[float, int]]:
    """End the collection and return it (an embedded call to another service gives the caller's back)."""
    spent = _spent.get() or {}
    try:
        _spent.reset(token)
    except ValueError:  # started in another context (never in our stacks): a header is not worth a 500
        _spent.set(None)
    return spent


def finish(token: Token, total_seconds: float) -> str:
    """End the collection; the header's value, `app` (the whole handler) first, e.g.
    `app;dur=12.3, db;dur=4.1;desc="9", inventory;dur=7.7;desc="1"`."""
    spent = stop(token)
    parts = [f"app;dur={total_seconds * 1000:.1f}"]
    parts += [f'{name};dur={seconds * 1000:.1f};desc="{count}"' for name, (seconds, count) in spent.items()]
    return ", ".join(parts)


def parse(header: str | None) -> dict[str, float]:
    """name -> milliseconds of a Server-Timing value (what a client such as the bench reads back)."""
    found = {}
    for part in (header or "").split(","):
        name, _, params = part.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur" and name:
                try:
                    found[name] = float(value)
                except ValueError:
                    pass
    return found
