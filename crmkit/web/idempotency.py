"""Idempotency-Key on POST creates: the same key and body replay the first response, kept per user."""
from __future__ import annotations

import functools
import hashlib
import json

from flask import current_app, request
from sqlalchemy import bindparam, select, update

from crmkit.db import insert_ignore
from crmkit.errors import ApiError, Conflict, ValidationFailed
from crmkit.models import IdempotencyKey
from crmkit.web.auth import caller
from crmkit.web.requests import json_body

PENDING = 0  # only ever seen committed in rows written before keys and work committed together
_KEYS = IdempotencyKey.__table__


class _Unrecorded(Exception):
    """A response not to keep (5xx): the request's transaction rolls back, the work with it."""

    def __init__(self, response):
        self.response = response


def idempotent(view):
    """Wrap a POST view. The key, the view's work and the response to replay commit in one transaction, so a
    process killed in the middle leaves nothing behind and the retry with the same key simply runs; once it
    committed, the retry gets the first response.

    The key row is written first: a second request with the same key waits at that row until the first
    commits (and replays its response) or rolls back (and runs itself).
    """

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if not key:
            return view(*args, **kwargs)
        if len(key) > 255:
            raise ValidationFailed("Idempotency-Key is too long.", {"Idempotency-Key": ["At most 255 characters."]})
        db = current_app.extensions["crm_db"]
        user_id = caller().id
        digest = _request_digest()
        try:
            with db.one_transaction() as session:
                if insert_ignore(session, _KEYS, {"user_id": user_id, "key": key, "endpoint": request.path,
                                                  "request_hash": digest, "status": PENDING, "body": ""}):
                    response = current_app.make_response(view(*args, **kwargs))
                    if response.status_code >= 500:
                        raise _Unrecorded(response)
                    session.execute(_RECORD, {"who": user_id, "the_key": key, "answered": response.status_code,
                                              "answer": response.get_data(as_text=True)})
                    return response
        except _Unrecorded as unrecorded:
            return unrecorded.response
        return _replay(db, user_id, key, digest)

    return wrapper


def _request_digest(as_sent: bool = False) -> str:
    """The path and the body as data: the same JSON sent again with its keys in another order or spaced
    differently is the same request."""
    body = request.get_data(cache=True)
    if not as_sent:
        try:
            body = json.dumps(json_body(), sort_keys=True, separators=(",", ":")).encode()
        except ApiError:
            pass  # no JSON object: the view answers the 4xx, and nothing is recorded
    return hashlib.sha256(request.path.encode() + b"\0" + body).hexdigest()


# Built once: the last statement of every keyed request.
_RECORD = (update(_KEYS).where(_KEYS.c.user_id == bindparam("who"), _KEYS.c.key == bindparam("the_key"))
           .values(status=bindparam("answered"), body=bindparam("answer")))


def _replay(db, user_id: str, key: str, digest: str):
    with db.session() as session:
        row = session.execute(select(IdempotencyKey).where(IdempotencyKey.user_id == user_id,
                                                           IdempotencyKey.key == key)).scalar_one_or_none()
        if row is None:  # removed since it stopped us: rare enough to ask for a retry
            raise Conflict("The first request with this Idempotency-Key is gone; send it again.")
        # (a key recorded before digests were taken of the data was taken of the bytes)
        if row.request_hash != digest and row.request_hash != _request_digest(as_sent=True):
            raise ValidationFailed("This Idempotency-Key was used with a different request.",
                                   {"Idempotency-Key": ["Already used with a different body."]})
        if row.status == PENDING:
            raise Conflict("A request with this Idempotency-Key is still being processed.")
        response = current_app.response_class(row.body, status=row.status, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response
