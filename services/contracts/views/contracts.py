"""Contracts: create (from scratch or a quote), read, change while draft, confirm, cancel, timeline."""
from __future__ import annotations

import functools
import logging
from datetime import date
from decimal import Decimal
from urllib.parse import quote as url_quote

from flask import Blueprint, current_app
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from crmkit.catalogue import availability, fetch_products
from crmkit.db import contains
from crmkit.errors import Conflict, NotFound, ValidationFailed
from crmkit.fields import qty_str
from crmkit.money import amount_in_words
from crmkit.timeutil import business_days
from crmkit.web.auth import bearer, caller
from crmkit.web.client import ServiceClient
from crmkit.web.idempotency import idempotent
from crmkit.web.pagination import fetch_page, fetch_prebuilt_page, page, page_args, page_statements
from crmkit.web.requests import load, load_args
from services.contracts import deliveries, lifecycle, receivables, recurring, rules
from services.contracts.access import (contract_for, customer_and_settings, own_filter, require_contract,
                                       require_reader, scope_of, scoped)
from services.contracts.models import Contract, Customer, TimelineEntry, User
from services.contracts.schemas import (ContractIn, ContractOut, ContractPatch, ContractQuery, FromQuoteIn,
                                       TimelineOut)
from services.contracts.settings_store import SETTINGS_COLUMN, merged_settings

log = logging.getLogger(__name__)
bp = Blueprint("contracts", __name__, url_prefix="/api/v1")
out = ContractOut()
timeline_out = TimelineOut(many=True)
ZERO = Decimal(0)


def _db():
    return current_app.extensions["crm_db"]


def _settings():
    return current_app.config["CRM_SETTINGS"]


def dump(contract: Contract, available: dict | None = None) -> dict:
    """The SPEC shape; `available` (code -> free stock) adds the live stock check for open contracts."""
    live = available is not None and contract.status == "draft"
    lines, warnings = [], []
    for line in contract.lines:
        if live:
            free = available.get(line.product_code)
            shortage = max(ZERO, line.quantity - free) if free is not None else None
        else:
            free = available.get(line.product_code) if available else None
            shortage = max(ZERO, line.quantity - line.reserved) if contract.stock_status in ("reserved", "short") \
                else None
        if live and shortage:
            warnings.append({"code": "insufficient_stock", "product_code": line.product_code,
                             "requested": qty_str(line.quantity), "available": qty_str(free)})
        lines.append({**{c: getattr(line, c) for c in ("product_code", "name", "unit", "quantity", "unit_price",
                                                        "discount", "tax_rate", "amount", "tax_amount", "reserved",
                                                        "delivered")},
                      "available": free, "shortage": shortage})
    if live is False and available is None and contract.status == "draft":
        warnings.append({"code": "stock_unknown", "message": "Stock could not be checked right now."})
    language = (contract.customer_snapshot or {}).get("language") or "zh-CN"
    data = {c: getattr(contract, c) for c in ("id", "number", "version", "customer_id", "quote_id", "recurring_id",
                                              "status", "currency", "subtotal", "tax_total", "total", "delivery_date",
                                              "payment_terms", "notify_departments", "send_to_customer",
                                              "stock_status", "document_id", "owner_id", "created_by", "created_at",
                                              "confirmed_at")}
    data.update(customer=contract.customer_snapshot, lines=lines,
                warnings=warnings if contract.status == "draft" else (contract.warnings or []),
                total_in_words=amount_in_words(contract.total, language, contract.currency))
    return out.dump(data)


def _live(contract: Contract) -> dict | None:
    if contract.status not in ("draft", "confirmed", "partially_delivered"):
        return {}
    return availability(_settings(), bearer(), [l.product_code for l in contract.lines])


def _owner(session, contract: Contract):
    return session.get(User, contract.owner_id)


@bp.post("/contracts")
@idempotent
def create_contract():
    who = caller()
    require_reader(who)
    who.require("sales", "manager", "admin")
    data = load(ContractIn())
    if data.get("quote_id"):
        return from_quote(data["quote_id"], data)
    products = fetch_products(_settings(), bearer(), [l["product_code"] for l in data["lines"]])
    lines = lifecycle.build_lines(data["lines"], products)
    with _db().session() as session:
        customer, company_settings = _customer_field(session, data["customer_id"])
        contract = lifecycle.create(session, customer=customer, lines=lines, created_by=who.id,
                                    delivery_date=data["delivery_date"], payment_terms=data["payment_terms"],
                                    notify_departments=data["notify_departments"],
                                    send_to_customer=data["send_to_customer"], settings=company_settings)
        if data["confirm"]:
            lifecycle.confirm(session, contract, customer, _owner(session, contract), settings=company_settings)
    available = {code: Decimal(p["available"]) for code, p in products.items()}
    return dump(contract, available), 201


def _customer_field(session, customer_id: str) -> tuple[Customer, dict]:
    """The customer named in the body, and the company settings."""
    try:
        return customer_and_settings(session, caller(), customer_id)
    except NotFound:
        raise ValidationFailed("Unknown customer.", {"customer_id": ["Unknown customer."]})


@bp.post("/quotes/<quote_id>/contract")
@idempotent
def convert_quote(quote_id):
    require_reader(caller())
    caller().require("sales", "manager", "admin")
    return from_quote(quote_id, load(FromQuoteIn(), required=False))


def from_quote(quote_id: str, options: dict):
    """The contract inherits the quote's customer, lines, negotiated prices, discounts, taxes and terms; a delivery
    date or payment terms given with the request replace the quote's (the options act only on the first call:
    again, the contract made then is the answer, as it stands)."""
    with _db().session() as session:
        existing = session.execute(select(Contract).where(Contract.quote_id == quote_id)).scalar_one_or_none()
        if existing is not None and contract_visible(existing):
            return dump(existing, _live(existing)), 200
    # Quoted whole: an id holding "?" or "/" must not reach another quotes endpoint.
    reply = ServiceClient(_settings(), "quotes").get(f"/api/v1/quotes/{url_quote(quote_id, safe='')}",
                                                     token=bearer())
    quote = reply.json() if reply.status == 200 else None
    if reply.status == 404 or (reply.status == 200 and not (isinstance(quote, dict) and quote.get("id") == quote_id)):
        raise NotFound("No such quote.", {"quote_id": ["Unknown quote."]})
    if reply.status != 200:
        raise Conflict(f"The quote could not be read ({reply.status}).")
    if quote["status"] not in ("accepted", "converted"):
        raise Conflict(f"Only an accepted quote becomes a contract; this one is {quote['status']}.",
                       {"status": [f"Is {quote['status']}."]})
    products = {l["product_code"]: {"code": l["product_code"], "name": l["name"], "unit": l["unit"],
                                    "unit_price": l["unit_price"], "tax_rate": l["tax_rate"]} for l in quote["lines"]}
    lines = lifecycle.build_lines([{"product_code": l["product_code"], "quantity": Decimal(l["quantity"]),
                                    "unit_price": Decimal(l["unit_price"]), "discount": Decimal(l["discount"]),
                                    "tax_rate": l["tax_rate"], "name": l["name"], "unit": l["unit"]}
                                   for l in quote["lines"]], products)
    try:
        with _db().session() as session:
            customer, company_settings = _customer_field(session, quote["customer_id"])
            contract = lifecycle.create(
                session, customer=customer, lines=lines, created_by=caller().id, quote_id=quote_id,
                delivery_date=options.get("delivery_date") or _date(quote.get("delivery_date")),
                payment_terms=options.get("payment_terms") or quote.get("payment_terms"),
                notify_departments=options.get("notify_departments"),
                send_to_customer=options.get("send_to_customer"), currency=quote.get("currency") or "CNY",
                settings=company_settings)
            if options.get("confirm"):
                lifecycle.confirm(session, contract, customer, _owner(session, contract), settings=company_settings)
        return dump(contract, _live(contract)), 201
    except IntegrityError:
        # A concurrent conversion of the same quote won; answer with its contract.
        with _db().session() as session:
            existing = session.execute(select(Contract).where(Contract.quote_id == quote_id)).scalar_one()
            return dump(existing, _live(existing)), 200


def _date(value):
    return date.fromisoformat(value) if value else None


def contract_visible(contract: Contract) -> bool:
    who = caller()
    return who.sees_all or contract.owner_id == who.id


@bp.get("/contracts")
def list_contracts():
    require_reader(caller())
    args = load_args(ContractQuery())
    limit, offset = page_args()
    query = own_filter(select(Contract), caller(), Contract.owner_id)
    if args.get("customer_id"):
        query = query.where(Contract.customer_id == args["customer_id"])
    if args.get("status"):
        query = query.where(Contract.status == args["status"])
    if args.get("q"):
        named = select(Customer.id).where(contains(args["q"], Customer.name))
        query = query.where(contains(args["q"], Contract.number) | Contract.customer_id.in_(named))
    if args.get("confirmed_from") or args.get("confirmed_to"):
        start, after = business_days(args.get("confirmed_from"), args.get("confirmed_to"))
        query = query.where(Contract.confirmed_at.is_not(None))  # a draft is signed on no day
        if start is not None:
            query = query.where(Contract.confirmed_at >= start)
        if after is not None:
            query = query.where(Contract.confirmed_at < after)
    with _db().session() as session:
        rows, total = fetch_page(session, query, (Contract.created_at.desc(), Contract.id.desc()), limit, offset)
        return page([dump(c) for c in rows], total)


@bp.get("/contracts/<contract_id>")
def get_contract(contract_id):
    require_reader(caller())
    with _db().session() as session:
        contract = contract_for(session, caller(), contract_id)
    return dump(contract, _live(contract))


@bp.patch("/contracts/<contract_id>")
def patch_contract(contract_id):
    require_reader(caller())
    data = load(ContractPatch())
    products = fetch_products(_settings(), bearer(), [l["product_code"] for l in data["lines"]]) \
        if "lines" in data else None
    with _db().session() as session:
        contract = contract_for(session, caller(), contract_id, lock=True)
        lifecycle.require_customer_unchanged(contract, data.get("customer_id"))
        rules.require_editable(contract.status)
        if data.get("version") is not None and data["version"] != contract.version:
            raise Conflict("The contract was changed by someone else; reload it.", {"version": ["Is stale."]})
        if products is not None:
            lifecycle.set_lines(contract, lifecycle.build_lines(data["lines"], products))
        for key in ("delivery_date", "payment_terms", "notify_departments", "send_to_customer"):
            if key in data:
                setattr(contract, key, data[key])
        contract.version += 1
    return dump(contract, _live(contract))


@bp.post("/contracts/<contract_id>/confirm")
def confirm_contract(contract_id):
    require_reader(caller())
    with _db().session() as session:
        contract = contract_for(session, caller(), contract_id, lock=True)
        # The customer (frozen into the contract), the salesperson (named in the event) and the company settings
        # (copied into it) in one read.
        customer, owner, stored = session.execute(
            _CONFIRM_PARTIES, {"customer_id": contract.customer_id, "owner_id": contract.owner_id}).one()
        lifecycle.confirm(session, contract, customer, owner, settings=merged_settings(stored))
    return dump(contract)


_CONFIRM_PARTIES = (select(Customer, User, SETTINGS_COLUMN).outerjoin(User, User.id == bindparam("owner_id"))
                    .where(Customer.id == bindparam("customer_id")))


@bp.post("/contracts/<contract_id>/cancel")
def cancel_contract(contract_id):
    require_reader(caller())
    with _db().session() as session:
        contract = contract_for(session, caller(), contract_id, lock=True)
        lifecycle.cancel(session, contract, received=receivables.received(session, contract.id))
        deliveries.cancel_open_notes(session, contract)
        receivables.cancel_installments(session, contract)
    try:  # once the cancellation is committed (recurring.pause_from_cancelled says why)
        with _db().session() as session:
            recurring.pause_from_cancelled(session, session.get(Contract, contract_id))
    except SQLAlchemyError as exc:
        # The cancellation stands and its answer is due; the next scheduler run pauses the schedules instead.
        log.warning("contract %s cancelled; its schedules not paused yet: %s", contract_id, exc)
    return dump(contract)


@bp.get("/contracts/<contract_id>/timeline")
def timeline(contract_id):
    require_reader(caller())
    limit, offset = page_args()
    with _db().autocommit() as session:  # reads only
        rows, total = fetch_prebuilt_page(session, _timeline_statements(scope_of(caller())),
                                          {"id": contract_id, "owner": caller().id}, limit, offset)
        if not rows:
            require_contract(session, caller(), contract_id)
        return page(timeline_out.dump(rows), total)


@functools.lru_cache(maxsize=None)
def _timeline_statements(scope: str) -> tuple:
    """A contract's timeline, one page; read after every confirm, so built once per scope.

    The caller's right to the contract is a join of the same statement. An empty page leaves it open whether
    the contract is someone else's (404) or the offset is past the end: only then is it asked.
    """
    query = scoped(select(TimelineEntry).join(Contract, Contract.id == TimelineEntry.contract_id)
                   .where(TimelineEntry.contract_id == bindparam("id")), scope, Contract.owner_id)
    return page_statements(query, (TimelineEntry.at, TimelineEntry.id))
