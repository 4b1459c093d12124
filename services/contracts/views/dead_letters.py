"""Dead letters for operators (admin only): list them with their error and queue, look at one, replay it."""
from __future__ import annotations

from flask import Blueprint, current_app, request
from marshmallow import Schema, fields
from sqlalchemy import select

from crmkit.errors import NotFound, field_error
from crmkit.fields import UtcDateTime
from crmkit.web.auth import caller
from crmkit.web.pagination import fetch_page, page, page_args
from services.contracts import dead_letters
from services.contracts.dead_letters import DeadLetter

bp = Blueprint("dead_letters", __name__, url_prefix="/api/v1/admin/dead-letters")


class DeadLetterOut(Schema):
    id = fields.String()
    message_id = fields.String()
    type = fields.String()
    contract_id = fields.String(allow_none=True)
    original_queue = fields.String()
    original_exchange = fields.String()
    consumer = fields.String()
    error = fields.String()
    headers = fields.Dict()
    body = fields.String()
    dead_lettered_at = UtcDateTime()
    recorded_at = UtcDateTime()
    replayed_at = UtcDateTime(allow_none=True)
    replay_count = fields.Integer()


out = DeadLetterOut()
# A list stays light: headers and body (a contract's lines, say) are read one letter at a time.
list_out = DeadLetterOut(exclude=("headers", "body"))


def _db():
    return current_app.extensions["crm_db"]


def _filter(name: str) -> str | None:
    value = request.args.get(name)
    if value and "\x00" in value:  # PostgreSQL text cannot hold NUL: refuse it before it reaches a query
        raise field_error(name, "Must not contain NUL characters.")
    return value or None


def _letter(session, dead_letter_id: str) -> DeadLetter:
    letter = session.get(DeadLetter, dead_letter_id) if "\x00" not in dead_letter_id else None
    if letter is None:
        raise NotFound("No such dead letter.")
    return letter


@bp.get("")
def list_dead_letters():
    caller().require("admin")
    limit, offset = page_args()
    query = select(DeadLetter)
    if queue := _filter("queue"):
        query = query.where(DeadLetter.original_queue == queue)
    if type_ := _filter("type"):
        query = query.where(DeadLetter.type == type_)
    if contract_id := _filter("contract_id"):
        query = query.where(DeadLetter.contract_id == contract_id)
    with _db().session() as session:
        rows, total = fetch_page(session, query, (DeadLetter.dead_lettered_at.desc(), DeadLetter.id), limit, offset)
        return page([list_out.dump(row) for row in rows], total)


@bp.get("/<dead_letter_id>")
def get_dead_letter(dead_letter_id):
    caller().require("admin")
    with _db().session() as session:
        return out.dump(_letter(session, dead_letter_id))


@bp.post("/<dead_letter_id>/replay")
def replay_dead_letter(dead_letter_id):
    caller().require("admin")
    with _db().session() as session:
        _letter(session, dead_letter_id)
        # 202: the message is on its way back (the relay publishes it); its consumer has not seen it yet.
        return out.dump(dead_letters.replay(session, dead_letter_id)), 202
