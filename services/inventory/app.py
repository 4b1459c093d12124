"""Inventory HTTP: the catalogue and stock, reached only through the gateway with the caller's token."""
from __future__ import annotations

from flask import Blueprint, current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crmkit.db import contains
from crmkit.errors import Conflict, NotFound, field_error
from crmkit.service import create_web_app
from crmkit.web.app import make_app
from crmkit.web.auth import caller
from crmkit.web.idempotency import idempotent
from crmkit.web.pagination import fetch_page, page, page_args
from crmkit.web.requests import load, load_args
from services.inventory import spec as service_spec
from services.inventory.models import Product
from services.inventory.schemas import ProductIn, ProductOut, ProductPatch, ProductQuery, StockIn
from services.inventory.stock import receive

bp = Blueprint("products", __name__, url_prefix="/api/v1/products")
product_out = ProductOut()


def _db():
    return current_app.extensions["crm_db"]


def dump(product: Product) -> dict:
    return product_out.dump({**{c: getattr(product, c) for c in ("code", "name", "unit", "unit_price", "currency",
                                                                  "tax_rate", "replenished_by", "on_hand", "reserved")},
                             "available": product.on_hand - product.reserved})


@bp.post("")
@idempotent
def create_product():
    caller().require("admin", "manager")
    data = load(ProductIn())
    try:
        with _db().session() as session:
            product = Product(reserved=0, **data)
            session.add(product)
            session.flush()
            return dump(product), 201
    except IntegrityError:
        raise Conflict(f"A product with code {data['code']} already exists.", {"code": ["Already exists."]})


@bp.get("")
def list_products():
    args = load_args(ProductQuery())
    limit, offset = page_args()
    query = select(Product)
    if args.get("codes"):
        query = query.where(Product.code.in_([c for c in args["codes"].split(",") if c][:200]))
    if args.get("q"):
        query = query.where(contains(args["q"], Product.code, Product.name))
    with _db().autocommit() as session:  # reads only; the gateway's catalogue read of every new contract
        rows, total = fetch_page(session, query, (Product.code,), limit, offset)
        return page([dump(p) for p in rows], total)


@bp.get("/<code>")
def get_product(code):
    with _db().autocommit() as session:
        product = session.get(Product, code)
        if product is None:
            raise NotFound(f"No product with code {code}.")
        return dump(product)


@bp.patch("/<code>")
def change_product(code):
    caller().require("admin", "manager")
    data = load(ProductPatch())
    with _db().session() as session:
        product = session.get(Product, code)
        if product is None:
            raise NotFound(f"No product with code {code}.")
        for key, value in data.items():
            setattr(product, key, value)  # only these columns are written: the stock counters stay untouched
        session.flush()
        return dump(product)


@bp.post("/<code>/stock")
def change_stock(code):
    caller().require("admin", "manager")
    data = load(StockIn())
    if data["delta"] == 0:
        raise field_error("delta", "Must not be zero.")
    with _db().session() as session:
        product = receive(session, code, data["delta"], data["reason"], caller().id)
        return dump(product)


def build_app(settings, db):
    app = make_app("inventory", settings, db)
    app.register_blueprint(bp)
    return app


def create_app(settings=None):
    return create_web_app(service_spec(), settings)
