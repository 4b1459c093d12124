"""Notifications payloads out, and the query strings of its lists."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from crmkit.fields import UtcDateTime

PUBLIC_STATUSES = ("queued", "sent", "failed")


class EmailOut(Schema):
    id = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    to = fields.List(fields.String())
    cc = fields.List(fields.String())
    subject = fields.String()
    contract_id = fields.String(allow_none=True)
    quote_id = fields.String(allow_none=True)
    document_id = fields.String(allow_none=True)
    message_id = fields.String()
    created_at = UtcDateTime()
    sent_at = UtcDateTime(allow_none=True)
    next_attempt_at = UtcDateTime(allow_none=True)


class EmailQuery(Schema):
    contract_id = fields.String(validate=validate.Length(max=64))
    quote_id = fields.String(validate=validate.Length(max=64))
    status = fields.String(validate=validate.OneOf(PUBLIC_STATUSES))
    limit = fields.String()
    offset = fields.String()


class DepartmentMessageOut(Schema):
    id = fields.String()
    type = fields.String()
    department = fields.String()
    occurred_at = UtcDateTime()
    contract = fields.Dict()
    lines = fields.List(fields.Dict())
    reason = fields.String()
    text = fields.String()
    recipient_id = fields.String(allow_none=True)
    acked_at = UtcDateTime(allow_none=True)
    acked_by = fields.String(allow_none=True)


class InboxQuery(Schema):
    unread = fields.Boolean(load_default=False)
    limit = fields.String()
    offset = fields.String()
