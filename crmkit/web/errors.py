"""One error handler for every service: every failure leaves as the JSON shape of SPEC §3."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from marshmallow import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from crmkit.errors import ApiError

log = logging.getLogger(__name__)
# deadlock_detected, serialization_failure, lock_not_available
_CONCURRENT_CHANGE = {"40P01", "40001", "55P03"}

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error",
          429: "too_many_requests", 503: "unavailable"}


def flatten_messages(messages, prefix: str = "") -> dict:
    """marshmallow's nested {'lines': {0: {'quantity': [...]}}} → {'lines.0.quantity': [...]}."""
    flat = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, (dict,)):
                flat.update(flatten_messages(value, name))
            else:
                flat[name] = value if isinstance(value, list) else [value]
    else:
        flat[prefix or "_schema"] = messages if isinstance(messages, list) else [messages]
    # marshmallow's "_schema" key holds whole-object errors; keep the name SPEC clients would look for.
    return {k: [str(m) if not isinstance(m, (dict, list)) else m for m in v] for k, v in flat.items()}


def error_response(status: int, code: str, message: str, fields: dict | None = None, headers=None):
    error = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    response = jsonify({"error": error})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.fields, exc.headers)

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError):
        fields = flatten_messages(exc.messages)
        names = ", ".join(sorted(fields))
        return error_response(422, "validation_error", f"Invalid fields: {names}", fields)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            message = "Request body too large."
        return error_response(status, _CODES.get(status, "error"), message)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_unavailable(exc):
        if getattr(getattr(exc, "orig", None), "sqlstate", None) in _CONCURRENT_CHANGE:
            # PostgreSQL broke a deadlock or a lock wait between this request and another: nothing was written,
            # and the same request will very likely go through at once. Not the database being away.
            log.warning("concurrent change: %s", exc)
            return error_response(409, "conflict", "Another change to the same records was being made at the same "
                                  "moment; nothing was saved; try again.", headers={"Retry-After": "1"})
        # A connection lost (database restarted, network cut): the pool has dropped it, a retry gets a new one.
        log.warning("database unavailable: %s", exc)
        return error_response(503, "unavailable", "The database is unavailable; try again.",
                              headers={"Retry-After": "1"})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Internal error; it has been logged.")
