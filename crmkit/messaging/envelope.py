"""The message envelope of SPEC §4: id, type, occurred_at, source, correlation_id, version, data."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from crmkit.timeutil import iso, utcnow

VERSION = 1


def _default(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(obj) -> str:
    """JSON with money as decimal strings and dates in ISO form; never a float for a Decimal."""
    return json.dumps(obj, default=_default, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Envelope:
    type: str
    source: str
    data: dict
    correlation_id: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: str = field(default_factory=lambda: iso(utcnow()))
    version: int = VERSION

    def to_dict(self) -> dict:
        return {"id": self.id, "type": self.type, "occurred_at": self.occurred_at, "source": self.source,
                "correlation_id": self.correlation_id, "version": self.version, "data": self.data}

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, body: dict) -> "Envelope":
        missing = [k for k in ("id", "type", "source", "data") if k not in body]
        if missing:
            raise ValueError(f"envelope lacks {', '.join(missing)}")
        if not isinstance(body["data"], dict):
            raise ValueError("envelope data must be an object")
        return cls(type=body["type"], source=body["source"], data=body["data"],
                   correlation_id=body.get("correlation_id"), id=str(body["id"]),
                   occurred_at=body.get("occurred_at") or iso(utcnow()), version=body.get("version", VERSION))
