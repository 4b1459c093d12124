"""Customers: a salesperson owns theirs; managers and admins see and assign all."""
from __future__ import annotations

import uuid

from flask import Blueprint, current_app
from sqlalchemy import select, update

from crmkit.db import contains
from crmkit.errors import Forbidden, field_error
from crmkit.messaging.outbox import emit
from crmkit.web.auth import caller
from crmkit.web.idempotency import idempotent
from crmkit.web.pagination import fetch_page, page, page_args
from crmkit.web.requests import load, load_args
from services.contracts.access import customer_for, own_filter, require_reader
from services.contracts.fulfilment_models import RecurringSchedule
from services.contracts.lifecycle import SOURCE
from services.contracts.models import Contract, Customer, User
from services.contracts.schemas import CustomerIn, CustomerOut, CustomerQuery

bp = Blueprint("customers", __name__, url_prefix="/api/v1/customers")
out = CustomerOut()


def _db():
    return current_app.extensions["crm_db"]


def _owner(session, requested: str | None) -> str:
    """Sales own what they create; managers and admins may hand a customer to a salesperson."""
    who = caller()
    if requested and who.role == "sales" and requested not in (who.id, who.username):
        # Said, not ignored: a salesperson who meant to hand a customer over must know it did not happen.
        raise Forbidden("Only a manager or an admin gives a customer to another salesperson.",
                        {"owner": ["Only a manager or an admin may set another owner."]})
    if who.role == "sales" or not requested:
        return who.id
    user = session.execute(select(User).where((User.id == requested) | (User.username == requested))).scalar()
    if user is None or user.role not in ("sales", "manager", "admin"):
        raise field_error("owner", "Unknown salesperson.")
    return user.id


@bp.post("")
@idempotent
def create_customer():
    require_reader(caller())
    caller().require("sales", "manager", "admin")
    data = load(CustomerIn())
    with _db().session() as session:
        data["owner"] = _owner(session, data.get("owner"))
        customer = Customer(id=str(uuid.uuid4()), **data)
        session.add(customer)
        session.flush()
        return out.dump(customer), 201


@bp.get("")
def list_customers():
    require_reader(caller())
    args = load_args(CustomerQuery())
    limit, offset = page_args()
    query = own_filter(select(Customer), caller(), Customer.owner)
    if args.get("q"):
        query = query.where(contains(args["q"], Customer.name, Customer.contact_person, Customer.phone,
                                     Customer.email))
    with _db().session() as session:
        rows, total = fetch_page(session, query, (Customer.created_at.desc(), Customer.id), limit, offset)
        return page([out.dump(c) for c in rows], total)


@bp.get("/<customer_id>")
def get_customer(customer_id):
    require_reader(caller())
    with _db().session() as session:
        return out.dump(customer_for(session, caller(), customer_id))


@bp.patch("/<customer_id>")
def patch_customer(customer_id):
    require_reader(caller())
    data = load(CustomerIn(), partial=True)
    with _db().session() as session:
        customer = customer_for(session, caller(), customer_id, lock=True)
        if "owner" in data:
            # Popped for everyone, never set by the loop below. A salesperson reaches only their own customers,
            # so for them this is either themselves or a 403.
            owner = _owner(session, data.pop("owner"))
            if owner != customer.owner:
                previous, customer.owner = customer.owner, owner
                # The customer's contracts and recurring schedules follow it to the new salesperson here; its
                # quotes, in the quotes service, on customer.reassigned. Schedules are locked before contracts,
                # in the order the scheduler takes them (a schedule, then its source contract): the other way
                # round, a period being generated and this update deadlocked.
                schedules = select(RecurringSchedule.id).where(RecurringSchedule.customer_id == customer.id)
                if session.get_bind().dialect.name != "sqlite":
                    session.execute(schedules.order_by(RecurringSchedule.id).with_for_update()).all()
                session.execute(update(RecurringSchedule).where(RecurringSchedule.customer_id == customer.id)
                                .values(owner_id=owner))
                session.execute(update(Contract).where(Contract.customer_id == customer.id).values(owner_id=owner))
                emit(session, SOURCE, "customer.reassigned", {
                    "customer_id": customer.id, "customer_name": customer.name, "owner_id": owner,
                    "previous_owner_id": previous}, correlation_id=customer.id)
        for key, value in data.items():
            if key == "name" and not value:
                raise field_error("name", "Must not be empty.")
            setattr(customer, key, value)
        return out.dump(customer)
