"""Department messages in the caller's transaction: the inbox row, crm.departments, department.notified."""
from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from crmkit.db import insert_ignore, row_values
from crmkit.messaging.outbox import emit, emit_department
from crmkit.timeutil import iso, utcnow
from services.notifications.models import CancelledContract, DepartmentMessage
from services.notifications.rules import DEPARTMENTS

SOURCE = "notifications"


def contract_ref(contract_id=None, number=None, customer_name=None, delivery_date=None) -> dict:
    """The `contract` part of a department message (SPEC §4)."""
    return {"id": contract_id, "number": number, "customer_name": customer_name, "delivery_date": delivery_date}


def post(session: Session, *, department: str, type: str, reason: str, text: str, contract: dict, lines: list,
         source_key: str, occurred_at: datetime | None = None, recipient_id: str | None = None,
         correlation_id: str | None = None) -> DepartmentMessage | None:
    """One message to a department (to one reader of it with `recipient_id`); None if already posted."""
    if department not in DEPARTMENTS:
        return None
    dedupe_key = f"{source_key}:{department}:{recipient_id or ''}"
    message = DepartmentMessage(id=str(uuid.uuid4()), dedupe_key=dedupe_key, department=department, type=type,
                                reason=reason, recipient_id=recipient_id, contract_id=contract.get("id"),
                                contract=contract, lines=lines, text=text, occurred_at=occurred_at or utcnow())
    # One statement that is also the duplicate check (dedupe_key is unique); the object stays detached.
    if not insert_ignore(session, DepartmentMessage.__table__, row_values(message)):
        return None
    emit_department(session, department, queue_body(message))
    emit(session, SOURCE, "department.notified", {
        "contract_id": message.contract_id, "department": department, "message_id": message.id,
        "reason": reason, "recipient_id": recipient_id, "text": text,
    }, correlation_id=correlation_id or message.contract_id)
    return message


def queue_body(message: DepartmentMessage) -> dict:
    """The message as any AMQP client reads it on crm.department.<name> (SPEC §4 shape)."""
    body = {"id": message.id, "type": message.type, "department": message.department,
            "occurred_at": iso(message.occurred_at), "contract": message.contract, "lines": message.lines,
            "reason": message.reason, "text": message.text}
    if message.recipient_id:
        body["recipient_id"] = message.recipient_id
    return body


def told_about(session: Session, contract_id: str) -> dict[str, list[dict]]:
    """department -> the messages it got about the contract, oldest first; a salesperson's own ones are not counted."""
    told: dict[str, list[dict]] = {}
    for row in session.execute(_TOLD, {"cid": contract_id}).mappings():
        told.setdefault(row["department"], []).append(dict(row))
    return told


def hold(session: Session, contract_id: str | None) -> None:
    """Wait for any other transaction deciding a department message about this contract, until it commits.

    A cancellation and a message asking to act on the contract (handled on two threads at once) must not miss
    each other: each would read before the other committed, and a department would be told to act and never
    told to stop. On PostgreSQL a transaction-scoped advisory lock per contract orders them; on SQLite the
    handler's first write (its inbox row) already holds the database's one write lock.
    """
    if contract_id and session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.blake2b(contract_id.encode(), digest_size=8).digest(), "big", signed=True)
        session.execute(_HOLD, {"key": key})


def mark_cancelled(session: Session, contract_id: str) -> None:
    insert_ignore(session, CancelledContract.__table__, {"contract_id": contract_id, "cancelled_at": utcnow()})


def is_cancelled(session: Session, contract_id: str | None) -> bool:
    return bool(contract_id) and session.execute(_CANCELLED, {"cid": contract_id}).first() is not None


_HOLD = text("SELECT pg_advisory_xact_lock(:key)")
_MESSAGES = DepartmentMessage.__table__
_TOLD = (select(_MESSAGES.c.department, _MESSAGES.c.reason, _MESSAGES.c.contract, _MESSAGES.c.lines)
         .where(_MESSAGES.c.contract_id == bindparam("cid"), _MESSAGES.c.recipient_id.is_(None),
                _MESSAGES.c.reason != "contract_cancelled")
         .order_by(_MESSAGES.c.occurred_at, _MESSAGES.c.id))
_CANCELLED = select(CancelledContract.__table__.c.contract_id).where(
    CancelledContract.__table__.c.contract_id == bindparam("cid"))
