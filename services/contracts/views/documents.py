"""PDFs through the gateway: check the caller may see the record, then fetch its latest PDF as the system."""
from __future__ import annotations

from urllib.parse import quote as url_quote

from flask import Blueprint, Response, current_app, jsonify

from crmkit.errors import ApiError, Conflict, NotFound, Unavailable
from crmkit.web.auth import bearer, caller, system_token
from crmkit.web.client import ServiceClient
from services.contracts.access import contract_for, require_reader
from services.contracts.fulfilment_models import DeliveryNote

bp = Blueprint("pdfs", __name__, url_prefix="/api/v1")

RETRY_AFTER = 1  # seconds; a contract PDF takes tens of milliseconds once the worker has the event
PASSED = ("Content-Disposition", "ETag")


def _db():
    return current_app.extensions["crm_db"]


def _settings():
    return current_app.config["CRM_SETTINGS"]


@bp.get("/contracts/<contract_id>/pdf")
def contract_pdf(contract_id):
    require_reader(caller())
    with _db().session() as session:
        contract = contract_for(session, caller(), contract_id)
    if contract.confirmed_at is None:
        # The PDF is the signed document: it is rendered when the contract is confirmed, never for a draft.
        raise Conflict(f"Contract {contract.number} is {contract.status} and has no PDF; confirm it first.",
                       {"status": [f"Is {contract.status}."]})
    return _pdf("contract", contract.id)


@bp.get("/quotes/<quote_id>/pdf")
def quote_pdf(quote_id):
    require_reader(caller())
    # The quotes service decides who may see a quote: ask it with the caller's own token.
    reply = ServiceClient(_settings(), "quotes", timeout=5).get(f"/api/v1/quotes/{url_quote(quote_id, safe='')}",
                                                                 token=bearer())
    if reply.status == 404:
        raise NotFound("No such quote.")
    if reply.status in (401, 403):
        body = reply.json() or {}
        raise ApiError((body.get("error") or {}).get("message") or "Not allowed.", status=reply.status,
                       code="unauthorized" if reply.status == 401 else "forbidden")
    if reply.status != 200 or not isinstance(reply.json(), dict):
        raise Unavailable(f"The quotes service answered {reply.status}.")
    quote = reply.json()
    if quote.get("status") == "draft" or ("sent_at" in quote and not quote["sent_at"]):
        raise Conflict(f"Quote {quote.get('number', '')} has not been sent and has no PDF; send it first.",
                       {"status": [f"Is {quote.get('status')}."]})
    return _pdf("quote", quote_id)


@bp.get("/delivery-notes/<note_id>/pdf")
def delivery_note_pdf(note_id):
    require_reader(caller())
    with _db().session() as session:
        note = session.get(DeliveryNote, note_id)
        if note is None:
            raise NotFound("No such delivery note.")
        try:
            contract_for(session, caller(), note.contract_id)
        except NotFound:
            raise NotFound("No such delivery note.") from None
    return _pdf("delivery_note", note.id)


def _pdf(kind: str, owner_id: str) -> Response:
    """200 with the bytes, or 202 + Retry-After while the documents worker has not rendered it yet."""
    client = ServiceClient(_settings(), "documents", timeout=10)
    token = system_token(_settings())
    meta = client.get("/api/v1/documents/latest", token=token, params={"kind": kind, "owner_id": owner_id})
    if meta.status == 404:
        response = jsonify(status="rendering", kind=kind, owner_id=owner_id, retry_after=RETRY_AFTER,
                           message="The PDF is being rendered; ask again shortly.")
        response.status_code = 202
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response
    if meta.status == 409:
        message = ((meta.json() or {}).get("error") or {}).get("message") or "The PDF could not be rendered."
        raise Conflict(message, {"document": ["Rendering failed."]})
    if meta.status != 200 or not isinstance(meta.json(), dict):
        raise Unavailable(f"The documents service answered {meta.status}.")
    document = meta.json()
    content = client.get(f"/api/v1/documents/{document['id']}/content", token=token)
    if content.status != 200:
        raise Unavailable(f"The documents service answered {content.status} for the PDF's bytes.")
    response = Response(content.body, status=200, mimetype="application/pdf")
    for key in PASSED:
        if key in content.headers:
            response.headers[key] = content.headers[key]
    response.headers["X-Document-Id"] = document["id"]
    response.headers["X-Content-SHA256"] = document["sha256"]
    # The newest PDF of a record may change (a new version), so clients revalidate rather than cache.
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
