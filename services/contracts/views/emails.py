"""Emailing a contract: POST /contracts/{id}/send queues it through notifications; GET /emails/{id} follows it.

Addresses and subjects are checked with the notifications service's own pure rules, so the gateway never
accepts an address that the sender would later refuse to put in a header.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

from flask import Blueprint, current_app
from marshmallow import Schema, ValidationError, fields, pre_load, validates_schema
from sqlalchemy import func, select

from crmkit.errors import Conflict, TooMany, field_error
from crmkit.fields import Text
from crmkit.mail_rules import default_subject, recipients_problems, subject_problem
from crmkit.messaging.outbox import emit
from crmkit.timeutil import as_utc, iso, utcnow
from crmkit.web.auth import caller
from crmkit.web.idempotency import idempotent
from crmkit.web.requests import load
from services.contracts.access import contract_for, require_reader
from services.contracts.lifecycle import SOURCE, add_timeline
from services.contracts.models import Customer, EmailRequest, User
from services.contracts.settings_store import load_settings
from services.contracts.views.proxy import forward

bp = Blueprint("emails", __name__, url_prefix="/api/v1")

SENDABLE = ("confirmed", "partially_delivered", "delivered", "completed")
# A contract is mailed a few times at most; more in an hour is a script or a mistake spamming the customer.
SENDS_PER_HOUR = 10
SEND_WINDOW = timedelta(hours=1)


class SendIn(Schema):
    to = fields.Raw(load_default=None)
    cc = fields.Raw(load_default=None)
    subject = fields.Raw(load_default=None)
    message = Text(5000, load_default=None, allow_none=True)

    @pre_load
    def _single_to_list(self, data, **kwargs):
        # One address may be given as a string; it is then held to the same one-address rule.
        if isinstance(data, dict):
            data = {**data, **{k: [data[k]] for k in ("to", "cc") if isinstance(data.get(k), str)}}
        return data

    @validates_schema
    def _check(self, data, **kwargs):
        errors = {}
        for name in ("to", "cc"):
            if data.get(name) is not None:
                errors.update(recipients_problems(data[name], name))
        if data.get("subject") is not None:
            problem = subject_problem(data["subject"])
            if problem:
                errors["subject"] = [problem]
        if errors:
            raise ValidationError(errors)


def _db():
    return current_app.extensions["crm_db"]


@bp.post("/contracts/<contract_id>/send")
@idempotent
def send_contract(contract_id):
    who = caller()
    require_reader(who)
    who.require("sales", "manager", "admin")
    data = load(SendIn(), required=False)
    with _db().session() as session:
        # The row lock serialises concurrent sends of one contract, so the count below cannot be raced past.
        contract = contract_for(session, who, contract_id, lock=True)
        if contract.status not in SENDABLE:
            raise Conflict(f"Contract {contract.number} is {contract.status}; only a confirmed contract is sent.",
                           {"status": [f"Is {contract.status}."]})
        _check_send_budget(session, contract)
        customer = session.get(Customer, contract.customer_id)
        snapshot = contract.customer_snapshot or {}
        to = data["to"] or ([customer.email] if customer and customer.email else [])
        if not to:
            raise field_error("to", "The customer has no email address; give one.")
        subject = data["subject"] or default_subject("contract", contract.number)
        settings = load_settings(session)
        owner = session.get(User, contract.owner_id) if contract.owner_id else None
        email_id = str(uuid.uuid4())
        event = emit(session, SOURCE, "email.requested", {
            "email_id": email_id, "contract_id": contract.id, "number": contract.number, "to": to,
            "cc": data["cc"] or [], "subject": subject, "message": data["message"],
            # None while the PDF is still being rendered: notifications then waits for document.rendered.
            "document_id": contract.document_id,
            "language": snapshot.get("language") or (customer.language if customer else None),
            "customer": {"name": snapshot.get("name") or (customer.name if customer else None),
                         "email": customer.email if customer else snapshot.get("email"),
                         "language": snapshot.get("language") or (customer.language if customer else None)},
            "owner_id": contract.owner_id,
            "owner": {"id": owner.id, "username": owner.username, "email": owner.email} if owner else None,
            "company": {"name": settings["company"].get("name")}, "company_language": settings["company"]["language"],
        }, correlation_id=contract.id)
        session.add(EmailRequest(id=email_id, contract_id=contract.id, to=to, cc=data["cc"] or [], subject=subject,
                                 requested_by=who.id))
        add_timeline(session, contract.id, event.id, "email.requested", f"Email to {', '.join(to)} requested")
    return {"email_id": email_id}, 202


def _check_send_budget(session, contract) -> None:
    """429 with Retry-After once the contract has had SENDS_PER_HOUR send requests in the last hour."""
    since = utcnow() - SEND_WINDOW
    recent = select(EmailRequest.created_at).where(EmailRequest.contract_id == contract.id,
                                                   EmailRequest.created_at > since)
    count = session.execute(select(func.count()).select_from(recent.subquery())).scalar_one()
    if count < SENDS_PER_HOUR:
        return
    oldest = as_utc(session.execute(recent.order_by(EmailRequest.created_at).limit(1)).scalar_one())
    wait = max(1, int((oldest + SEND_WINDOW - utcnow()).total_seconds()) + 1)
    raise TooMany(f"Contract {contract.number} was sent {count} times in the last hour; the limit is "
                  f"{SENDS_PER_HOUR}. Try again in {wait} s.", headers={"Retry-After": str(wait)})


@bp.get("/emails/<email_id>")
def get_email(email_id):
    """Notifications' answer; until it has consumed the request, the gateway's own record says "queued"."""
    response = forward("notifications")
    if response.status_code != 404:
        return response
    with _db().session() as session:
        request = session.get(EmailRequest, email_id)
        if request is None:
            return response
        require_reader(caller())
        contract_for(session, caller(), request.contract_id)
        return {"id": request.id, "status": "queued", "attempts": 0, "last_error": None, "to": request.to,
                "cc": request.cc, "subject": request.subject, "contract_id": request.contract_id,
                "created_at": iso(request.created_at), "sent_at": None}
