"""Quotes HTTP: create, read, change while draft, send, accept, reject; reached through the gateway."""
from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, current_app
from sqlalchemy import and_, select

from crmkit import catalogue
from crmkit.errors import NotFound, field_error
from crmkit.service import create_web_app
from crmkit.timeutil import utcnow
from crmkit.web.app import make_app
from crmkit.web.auth import Caller, bearer, caller
from crmkit.web.idempotency import idempotent
from crmkit.web.pagination import fetch_page, page, page_args
from crmkit.web.requests import load, load_args
from services.quotes import lifecycle, remote, rules
from services.quotes.models import Quote
from services.quotes.schemas import QuoteIn, QuoteOut, QuotePatch, QuoteQuery

bp = Blueprint("quotes", __name__, url_prefix="/api/v1/quotes")
out = QuoteOut()

FIELDS = ("id", "number", "customer_id", "valid_until", "currency", "subtotal", "tax_total", "total",
          "payment_terms", "delivery_date", "notes", "contract_id", "document_id", "owner_id", "created_by",
          "created_at", "sent_at", "accepted_at", "rejected_at", "converted_at")
LINE_FIELDS = ("product_code", "name", "unit", "quantity", "unit_price", "discount", "tax_rate", "amount",
               "tax_amount")


def _db():
    return current_app.extensions["crm_db"]


def _settings():
    return current_app.config["CRM_SETTINGS"]


def _reader() -> Caller:
    """Department users read only their department's inbox; nothing of the sales records."""
    who = caller()
    if who.role == "department":
        raise NotFound("Not found.")
    return who


def _writer() -> Caller:
    who = _reader()
    who.require("sales", "manager", "admin")
    return who


def _visible(query, who: Caller):
    return query if who.sees_all else query.where(Quote.owner_id == who.id)


def _quote_for(session, who: Caller, quote_id: str, lock: bool = False) -> Quote:
    query = _visible(select(Quote).where(Quote.id == quote_id), who)
    if lock:
        query = query.with_for_update()
    quote = session.execute(query).scalar_one_or_none()
    if quote is None:
        raise NotFound("No such quote.")
    return quote


def _available(quotes) -> dict | None:
    return catalogue.availability(_settings(), bearer(), {line.product_code for q in quotes for line in q.lines})


def dump(quote: Quote, available: dict | None) -> dict:
    """The SPEC shape plus the live stock check: per-line available and shortage, warnings while open."""
    status = lifecycle.status_of(quote)
    per_line, warnings = rules.stock_check([(line.product_code, line.quantity) for line in quote.lines], available,
                                           warn=status in rules.OPEN)
    lines = [{**{c: getattr(line, c) for c in LINE_FIELDS}, "available": free, "shortage": shortage}
             for line, (free, shortage) in zip(quote.lines, per_line)]
    data = {c: getattr(quote, c) for c in FIELDS}
    data.update(status=status, customer=quote.customer_snapshot, lines=lines, warnings=warnings,
                total_in_words=lifecycle.words(quote))
    return out.dump(data)


def _price(lines_in: list[dict], currency: str) -> tuple[list[dict], dict]:
    products = catalogue.fetch_products(_settings(), bearer(), [line["product_code"] for line in lines_in])
    available = {code: Decimal(p["available"]) for code, p in products.items()}
    return rules.price_lines(lines_in, products, currency), available


@bp.post("")
@idempotent
def create_quote():
    who = _writer()
    data = load(QuoteIn())
    customer = remote.fetch_customer(_settings(), bearer(), data["customer_id"])
    priced, available = _price(data["lines"], data["currency"])
    with _db().session() as session:
        quote = lifecycle.create(session, customer=customer, priced=priced, created_by=who.id,
                                 valid_until=data["valid_until"], currency=data["currency"],
                                 payment_terms=data["payment_terms"], delivery_date=data["delivery_date"],
                                 notes=data["notes"])
    return dump(quote, available), 201


@bp.get("")
def list_quotes():
    who = _reader()
    args = load_args(QuoteQuery())
    limit, offset = page_args()
    query = _visible(select(Quote), who)
    if args.get("customer_id"):
        query = query.where(Quote.customer_id == args["customer_id"])
    status, today = args.get("status"), lifecycle.today()
    if status == "expired":
        query = query.where(and_(Quote.status.in_(rules.EXPIRING), Quote.valid_until < today))
    elif status in rules.EXPIRING:
        query = query.where(Quote.status == status, Quote.valid_until >= today)
    elif status:
        query = query.where(Quote.status == status)
    with _db().session() as session:
        quotes, total = fetch_page(session, query, (Quote.created_at.desc(), Quote.id.desc()), limit, offset)
    available = _available(quotes)
    return page([dump(q, available) for q in quotes], total)


@bp.get("/<quote_id>")
def get_quote(quote_id):
    who = _reader()
    with _db().session() as session:
        quote = _quote_for(session, who, quote_id)
    return dump(quote, _available([quote]))


@bp.patch("/<quote_id>")
def patch_quote(quote_id):
    who = _writer()
    data = load(QuotePatch())
    with _db().session() as session:
        current = _quote_for(session, who, quote_id)
    rules.require_editable(current.status)
    priced = available = None
    if "lines" in data:
        priced, available = _price(data["lines"], data.get("currency") or current.currency)
    with _db().session() as session:
        quote = _quote_for(session, who, quote_id, lock=True)
        lifecycle.change(session, quote, data, priced)
    return dump(quote, available if priced is not None else _available([quote]))


@bp.post("/<quote_id>/send")
def send_quote(quote_id):
    who = _writer()
    with _db().session() as session:
        current = _quote_for(session, who, quote_id)
    lifecycle.require_sendable(current, utcnow())
    # The customer as they are now: the quote goes to today's address, and prints it.
    customer = remote.fetch_customer(_settings(), bearer(), current.customer_id)
    if not (customer.get("email") or "").strip():
        raise field_error("customer.email", "The customer has no email address to send the quote to; add one "
                                            f"(PATCH /api/v1/customers/{current.customer_id}) and send it again.")
    company, owner = remote.sender_context(_settings(), bearer(), current.owner_id)
    with _db().session() as session:
        quote = _quote_for(session, who, quote_id, lock=True)
        lifecycle.send(session, quote, company, owner, customer)
    return dump(quote, _available([quote]))


@bp.post("/<quote_id>/accept")
def accept_quote(quote_id):
    who = _writer()
    with _db().session() as session:
        quote = _quote_for(session, who, quote_id, lock=True)
        lifecycle.accept(session, quote)
    return dump(quote, _available([quote]))


@bp.post("/<quote_id>/reject")
def reject_quote(quote_id):
    who = _writer()
    with _db().session() as session:
        quote = _quote_for(session, who, quote_id, lock=True)
        lifecycle.reject(quote)
    return dump(quote, _available([quote]))


def build_app(settings, db):
    app = make_app("quotes", settings, db)
    app.register_blueprint(bp)
    return app


def create_app(settings=None):
    from services.quotes import spec
    return create_web_app(spec(), settings)
