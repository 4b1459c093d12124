"""Idempotency-Key on POST creates: the same key and body replay the first response, kept per user."""
from __future__ import annotations

import functools
import hashlib

import time

from flask import current_app, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from crmkit.errors import Conflict, ValidationFailed
from crmkit.models import IdempotencyKey
from crmkit.web.auth import caller

PENDING = 0


def idempotent(view):
    """Wrap a POST view; the key row is claimed before the work so two racing requests run it once."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if not key:
            return view(*args, **kwargs)
        if len(key) > 255:
            raise ValidationFailed("Idempotency-Key is too long.", {"Idempotency-Key": ["At most 255 characters."]})
        db = current_app.extensions["crm_db"]
        user_id = caller().id
        digest = hashlib.sha256(request.path.encode() + b"\0" + request.get_data(cache=True)).hexdigest()
        try:
            with db.session() as session:
                session.add(IdempotencyKey(user_id=user_id, key=key, endpoint=request.path, request_hash=digest,
                                           status=PENDING, body=""))
        except IntegrityError:
            return _replay(db, user_id, key, digest)
        try:
            response = current_app.make_response(view(*args, **kwargs))
        except BaseException:
            with db.session() as session:
                session.execute(delete(IdempotencyKey).where(IdempotencyKey.user_id == user_id,
                                                             IdempotencyKey.key == key))
            raise
        with db.session() as session:
            row = session.get(IdempotencyKey, (user_id, key))
            if response.status_code >= 500:
                session.delete(row)
            else:
                row.status = response.status_code
                row.body = response.get_data(as_text=True)
        return response

    return wrapper


def _replay(db, user_id: str, key: str, digest: str):
    deadline = time.monotonic() + 10
    while True:
        with db.session() as session:
            row = session.execute(select(IdempotencyKey).where(IdempotencyKey.user_id == user_id,
                                                               IdempotencyKey.key == key)).scalar_one_or_none()
            if row is None:
                raise Conflict("The first request with this Idempotency-Key failed; send it again.")
            if row.request_hash != digest:
                raise ValidationFailed("This Idempotency-Key was used with a different request.",
                                       {"Idempotency-Key": ["Already used with a different body."]})
            if row.status != PENDING:
                response = current_app.response_class(row.body, status=row.status, mimetype="application/json")
                response.headers["Idempotent-Replayed"] = "true"
                return response
        if time.monotonic() > deadline:
            raise Conflict("A request with this Idempotency-Key is still being processed.")
        time.sleep(0.05)


