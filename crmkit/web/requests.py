"""Reading request bodies and query parameters into schemas, with 400/422 that name the field."""
from __future__ import annotations

import json
import math
import re

from flask import g, request
from marshmallow import Schema

from crmkit.errors import ApiError, ValidationFailed

# Text no field may hold: NUL and the other C0 controls but tab, newline and carriage return (PostgreSQL refuses
# NUL; the rest garble PDFs, mail headers and department messages), and a surrogate left unpaired (no UTF-8
# encoding exists for it, so storing or answering it fails). JSON can only carry them as \u escapes.
NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_MAYBE_NOT_TEXT = re.compile(rb"\\u(?:00[01]|[dD][89a-fA-F])")
NOT_TEXT_MESSAGE = "Contains a control character or an unpaired surrogate."


def json_body(required: bool = True) -> dict:
    """The request's JSON object; 400 for malformed JSON or a body that is not an object. Parsed once per request
    (a keyed POST's digest reads it before its view does)."""
    if "crm_json_body" not in g:
        raw = request.get_data(cache=True)
        if not raw.strip():
            if required:
                raise ApiError("A JSON object body is required.", {"_body": ["Missing body."]})
            return {}
        g.crm_json_body = _parse(raw)
    return g.crm_json_body


def _parse(raw: bytes) -> dict:
    try:
        body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(f"Malformed JSON: {exc}", {"_body": ["Malformed JSON."]})
    except RecursionError:  # "[[[[…" well under the size limit exhausts the parser's stack
        raise ApiError("Malformed JSON: nested too deeply.", {"_body": ["Nested too deeply."]})
    if not isinstance(body, dict):
        raise ApiError("The body must be a JSON object.", {"_body": ["Must be a JSON object."]})
    if _MAYBE_NOT_TEXT.search(raw) or b"\x00" in raw:  # NUL bytes: a UTF-16 or UTF-32 body, escapes unseen
        refuse_characters(body)
    return body


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e400: Python reads it as infinity, which no JSON answer can carry back
        raise ValueError(f"{text} is out of range")
    return number


def refuse_characters(value, path: str = "") -> None:
    """422 naming every field (or key) of a loaded body whose text holds what no field may hold."""
    errors = {}
    pending = [(path, value)]
    while pending:  # a loop, not recursion: the body may nest as deep as the parser allowed
        where, item = pending.pop()
        if isinstance(item, str):
            if NOT_TEXT.search(item):
                errors[where or "_body"] = [NOT_TEXT_MESSAGE]
        elif isinstance(item, dict):
            for key, inner in item.items():
                name = NOT_TEXT.sub("\ufffd", key)
                name = f"{where}.{name}" if where else name
                if name != (f"{where}.{key}" if where else key):
                    errors[name] = [NOT_TEXT_MESSAGE]
                else:
                    pending.append((name, inner))
        elif isinstance(item, list):
            pending.extend((f"{where}.{i}" if where else str(i), inner) for i, inner in enumerate(item))
    if errors:
        raise ValidationFailed(f"Invalid fields: {', '.join(sorted(errors))}", errors)


def load(schema: Schema, required: bool = True, partial=False) -> dict:
    return schema.load(json_body(required), partial=partial)


def load_args(schema: Schema) -> dict:
    args = request.args.to_dict()
    refuse_characters(args)
    return schema.load(args)
