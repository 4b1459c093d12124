"""Documents payloads: metadata out, query arguments in, and the document.requested message."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from crmkit.fields import UtcDateTime
from services.documents.rules import KINDS

OWNER_ID = validate.Length(min=1, max=64)


class DocumentOut(Schema):
    id = fields.String()
    kind = fields.String()
    owner_id = fields.String()
    number = fields.String()
    language = fields.String()
    sha256 = fields.String()
    size = fields.Integer()
    filename = fields.String()
    version = fields.Integer()
    content_type = fields.Constant("application/pdf")
    created_at = UtcDateTime()
    rendered_at = UtcDateTime()


class LatestQuery(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    owner_id = fields.String(required=True, validate=OWNER_ID)


class DocumentQuery(Schema):
    kind = fields.String(validate=validate.OneOf(KINDS))
    owner_id = fields.String(validate=OWNER_ID)
    limit = fields.Integer()
    offset = fields.Integer()


class DocumentRequested(Schema):
    """data of document.requested: render `doc` as `kind` for `owner_id`, passing `context` along."""

    class Meta:
        unknown = EXCLUDE  # newer publishers may add fields; this consumer reads only these

    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    owner_id = fields.String(required=True, validate=OWNER_ID)
    doc = fields.Dict(required=True)
    context = fields.Dict(load_default=dict)
