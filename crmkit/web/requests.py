"""Reading request bodies and query parameters into schemas, with 400/422 that name the field."""
from __future__ import annotations

import json

from flask import request
from marshmallow import Schema

from crmkit.errors import ApiError


def json_body(required: bool = True) -> dict:
    """The request's JSON object; 400 for malformed JSON or a body that is not an object."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise ApiError("A JSON object body is required.", {"_body": ["Missing body."]})
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(f"Malformed JSON: {exc}", {"_body": ["Malformed JSON."]})
    except RecursionError:  # "[[[[…" well under the size limit exhausts the parser's stack
        raise ApiError("Malformed JSON: nested too deeply.", {"_body": ["Nested too deeply."]})
    if not isinstance(body, dict):
        raise ApiError("The body must be a JSON object.", {"_body": ["Must be a JSON object."]})
    return body


def load(schema: Schema, required: bool = True, partial=False) -> dict:
    return schema.load(json_body(required), partial=partial)


def load_args(schema: Schema) -> dict:
    return schema.load(request.args.to_dict())
