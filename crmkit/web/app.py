"""The Flask skeleton every service starts from: errors, auth, size limit, health and metrics."""
from __future__ import annotations

import io
import time

from flask import Flask, g, request
from werkzeug.exceptions import NotFound, RequestEntityTooLarge

from crmkit import timing
from crmkit.metrics import HTTP_REQUESTS, HTTP_SECONDS
from crmkit.web.auth import authenticate
from crmkit.web.errors import register_error_handlers
from crmkit.web.health import health
from crmkit.web.requests import NOT_TEXT

MAX_BODY = 1024 * 1024  # 1 MiB: a contract of 500 lines is ~100 KiB
DRAIN_LIMIT = 16 * MAX_BODY
PUBLIC_PATHS = {"/api/v1/auth/token", "/api/openapi.json", "/api/docs"}


def make_app(name: str, settings, db) -> Flask:
    app = Flask(name)
    app.config["CRM_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["crm_db"] = db
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.url_map.strict_slashes = False
    register_error_handlers(app)
    app.register_blueprint(health)

    @app.before_request
    def _before():
        g.started = time.perf_counter()
        g.timing = timing.start()
        if request.content_length and request.content_length > MAX_BODY:
            _discard_body(request.content_length)
            raise RequestEntityTooLarge()
        if request.content_length is None and "chunked" in request.environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            _read_chunked_body()
        if request.view_args and any(NOT_TEXT.search(value) for value in request.view_args.values()
                                     if isinstance(value, str)):
            raise NotFound()  # no id holds a NUL or a control character; PostgreSQL would refuse the lookup
        if request.path.startswith("/api/") and request.path not in PUBLIC_PATHS:
            authenticate()

    @app.after_request
    def _after(response):
        HTTP_REQUESTS.labels(settings.service, request.method, str(response.status_code)).inc()
        started = g.get("started")
        if started is not None:
            spent = time.perf_counter() - started
            HTTP_SECONDS.labels(settings.service, request.method).observe(spent)
            if g.get("timing") is not None:
                # Where the handler's time went (statements, other services): operators and clients see which
                # part of a slow answer was ours and which was waiting on someone else.
                response.headers["Server-Timing"] = timing.finish(g.pop("timing"), spent)
        return response

    @app.teardown_request
    def _teardown(_exc):
        token = g.pop("timing", None)  # a request that ended without a response (after_request not run)
        if token is not None:
            timing.stop(token)

    return app


def _read_chunked_body() -> None:
    """Read a body sent without Content-Length (chunked) now, so that one past the limit answers 413: read
    later, Werkzeug would cut it silently at the limit and the JSON parser would call it malformed."""
    data = request.environ["wsgi.input"].read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise RequestEntityTooLarge()
    request.environ["wsgi.input"] = io.BytesIO(data)
    request.environ["CONTENT_LENGTH"] = str(len(data))


def _discard_body(length: int) -> None:
    """Read and drop an oversized body (up to a bound) before answering 413."""
    # gunicorn says "keep-alive" but then closes a connection whose large body it cannot drain, so the
    # client's next request on it would fail without any response.
    if length > DRAIN_LIMIT:
        return
    stream = request.environ.get("wsgi.input")
    while stream is not None and length > 0:
        chunk = stream.read(min(65536, length))
        if not chunk:
            break
        length -= len(chunk)
