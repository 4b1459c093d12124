"""Documents HTTP: PDF metadata and bytes, for the system (gateway, workers) and managers or admins."""
from __future__ import annotations

from flask import Blueprint, Response, current_app

from crmkit.document_store import DocumentStore, MissingContent
from crmkit.errors import Unavailable
from crmkit.service import create_web_app
from crmkit.web.app import make_app
from crmkit.web.auth import caller
from crmkit.web.pagination import fetch_page, page, page_args
from crmkit.web.requests import load_args
from services.documents import library
from services.documents.rules import content_disposition
from services.documents.schemas import DocumentOut, DocumentQuery, LatestQuery

bp = Blueprint("documents", __name__, url_prefix="/api/v1/documents")
out = DocumentOut()


def _db():
    return current_app.extensions["crm_db"]


def _store() -> DocumentStore:
    return current_app.extensions["crm_document_store"]


def _require_reader():
    # A salesperson's access depends on the contract's customer, which only the gateway knows: sales users get
    # their PDFs through the gateway's /contracts|/quotes|/delivery-notes/{id}/pdf, which checks and asks here.
    caller().require("manager", "admin")


@bp.get("")
def list_documents():
    _require_reader()
    args = load_args(DocumentQuery())
    limit, offset = page_args()
    query = library.listing(args.get("kind"), args.get("owner_id"))
    with _db().session() as session:
        rows, total = fetch_page(session, query, (), limit, offset)  # listing() orders it
        return page(out.dump(rows, many=True), total)


@bp.get("/latest")
def latest_document():
    _require_reader()
    args = load_args(LatestQuery())
    with _db().session() as session:
        return out.dump(library.latest(session, args["kind"], args["owner_id"]))


@bp.get("/<document_id>")
def get_document(document_id):
    _require_reader()
    with _db().session() as session:
        return out.dump(library.get(session, document_id))


@bp.get("/<document_id>/content")
def get_content(document_id):
    _require_reader()
    with _db().session() as session:
        document = library.get(session, document_id)
    try:
        data = _store().read(document.sha256)
    except MissingContent:
        raise Unavailable("The stored PDF is missing from DOCUMENTS_DIR; it has to be rendered again.")
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = content_disposition(document.filename, document.kind, document.number)
    response.headers["ETag"] = f'"{document.sha256}"'
    # A document id always names the same bytes.
    response.headers["Cache-Control"] = "private, max-age=86400, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def build_app(settings, db):
    app = make_app("documents", settings, db)
    app.extensions["crm_document_store"] = DocumentStore(settings.documents_dir)
    app.register_blueprint(bp)
    return app


def create_app(settings=None):
    from services.documents import spec
    return create_web_app(spec(), settings)
