"""GET /api/openapi.json and GET /api/docs: the gateway's OpenAPI document, built once from the schemas."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from crmkit.web.openapi import docs_page

bp = Blueprint("api_docs", __name__, url_prefix="/api")


def _document() -> dict:
    document = current_app.extensions.get("crm_openapi")
    if document is None:
        from services.contracts.openapi import document as build
        document = current_app.extensions["crm_openapi"] = build()
    return document


@bp.get("/openapi.json")
def openapi_json():
    response = jsonify(_document())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/docs")
def docs():
    return Response(docs_page(_document()), mimetype="text/html")
