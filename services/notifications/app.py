"""Notifications HTTP: email status and department inboxes, reached through the gateway with the caller's token."""
from __future__ import annotations

from flask import Blueprint, current_app
from sqlalchemy import select

from crmkit.errors import Forbidden, NotFound
from crmkit.service import create_web_app
from crmkit.timeutil import utcnow
from crmkit.web.app import make_app
from crmkit.web.auth import Caller, caller
from crmkit.web.pagination import fetch_page, page, page_args
from crmkit.web.requests import load_args
from services.notifications.models import FAILED, SENT, DepartmentMessage, Email
from services.notifications.rules import ADDRESSED, DEPARTMENTS, inbox_scope
from services.notifications.schemas import DepartmentMessageOut, EmailOut, EmailQuery, InboxQuery

emails_bp = Blueprint("emails", __name__, url_prefix="/api/v1/emails")
departments_bp = Blueprint("departments", __name__, url_prefix="/api/v1/departments")
email_out = EmailOut()
message_out = DepartmentMessageOut()


def _db():
    return current_app.extensions["crm_db"]


# --- emails ----------------------------------------------------------------------------------------------------

def public_status(status: str) -> str:
    """waiting (for the PDF) and sending are both still "queued" to the outside."""
    return status if status in (SENT, FAILED) else "queued"


def dump_email(email: Email) -> dict:
    return email_out.dump({**{c: getattr(email, c) for c in ("id", "attempts", "last_error", "to", "cc", "subject",
                                                             "contract_id", "quote_id", "document_id", "message_id",
                                                             "created_at", "sent_at", "next_attempt_at")},
                           "status": public_status(email.status)})


def _visible(query, who: Caller):
    """The salesperson whose contract it is, managers and admins; nobody else learns it exists."""
    return query if who.sees_all else query.where(Email.owner_id == who.id)


@emails_bp.get("/<email_id>")
def get_email(email_id):
    with _db().session() as session:
        email = session.execute(_visible(select(Email).where(Email.id == email_id), caller())).scalar_one_or_none()
        if email is None:
            raise NotFound("No such email.")
        return dump_email(email)


@emails_bp.get("")
def list_emails():
    args = load_args(EmailQuery())
    limit, offset = page_args()
    query = _visible(select(Email), caller())
    if args.get("contract_id"):
        query = query.where(Email.contract_id == args["contract_id"])
    if args.get("quote_id"):
        query = query.where(Email.quote_id == args["quote_id"])
    if args.get("status"):
        status = args["status"]
        query = query.where(Email.status == status) if status != "queued" else \
            query.where(Email.status.not_in((SENT, FAILED)))
    with _db().session() as session:
        rows, total = fetch_page(session, query, (Email.created_at, Email.id), limit, offset)
        return page([dump_email(e) for e in rows], total)


# --- department inboxes ----------------------------------------------------------------------------------------

def _inbox(name: str):
    """The query of `name`'s inbox as the caller may read it: 404 for no such department, 403 for not yours."""
    if name not in DEPARTMENTS:
        raise NotFound(f"No department named {name}.")
    who = caller()
    scope = inbox_scope(who.role, who.department, name)
    if scope is None:
        raise Forbidden(f"Only the {name} department and managers read this inbox.")
    query = select(DepartmentMessage).where(DepartmentMessage.department == name)
    if scope == ADDRESSED:
        query = query.where(DepartmentMessage.recipient_id == who.id)
    return query


@departments_bp.get("/<name>/notifications")
def list_notifications(name):
    query = _inbox(name)
    args = load_args(InboxQuery())
    limit, offset = page_args()
    if args["unread"]:
        query = query.where(DepartmentMessage.acked_at.is_(None))
    with _db().session() as session:
        rows, total = fetch_page(session, query, (DepartmentMessage.occurred_at.desc(), DepartmentMessage.id),
                                 limit, offset)
        return page([message_out.dump(m) for m in rows], total)


@departments_bp.post("/<name>/notifications/<message_id>/ack")
def ack_notification(name, message_id):
    """Mark a message read; acknowledging it again changes nothing."""
    query = _inbox(name).where(DepartmentMessage.id == message_id).with_for_update()
    with _db().session() as session:
        message = session.execute(query).scalar_one_or_none()
        if message is None:
            raise NotFound("No such notification in this inbox.")
        if message.acked_at is None:
            message.acked_at, message.acked_by = utcnow(), caller().id
        return message_out.dump(message)


def build_app(settings, db):
    app = make_app("notifications", settings, db)
    app.register_blueprint(emails_bp)
    app.register_blueprint(departments_bp)
    return app


def create_app(settings=None):
    from services.notifications import spec
    return create_web_app(spec(), settings)
