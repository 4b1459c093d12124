"""Routes to the services that own a resource; the caller's token travels along and is checked there too."""
from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, current_app, request

from crmkit.web.client import ServiceClient

bp = Blueprint("proxy", __name__, url_prefix="/api/v1")

# public path prefix -> owning service
ROUTES = {
    "products": "inventory",
    "quotes": "quotes",
    "emails": "notifications",
    "departments": "notifications",
    "documents": "documents",
}
PASSED_HEADERS = ("Content-Type", "Retry-After", "Content-Disposition", "Location", "Idempotent-Replayed", "ETag")
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def forward(service: str, path: str | None = None) -> Response:
    headers = {k: v for k, v in request.headers.items()
               if k in ("Authorization", "Content-Type", "Idempotency-Key", "Accept")}
    # The path arrives decoded: quoted again, an id holding "?" or "#" stays one path segment.
    target = path or quote(request.path, safe="/:@!$&'()*+,;=~")
    reply = ServiceClient(current_app.config["CRM_SETTINGS"], service, timeout=10).request(
        request.method, target, data=request.get_data(), params=request.args.to_dict(flat=False),
        headers=headers)
    response = Response(reply.body, status=reply.status)
    for key in PASSED_HEADERS:
        if key in reply.headers:
            response.headers[key] = reply.headers[key]
    return response


def _make_route(prefix: str, service: str):
    def route(rest=""):
        return forward(service)
    route.__name__ = f"forward_{prefix}"
    bp.add_url_rule(f"/{prefix}", view_func=route, methods=METHODS)
    bp.add_url_rule(f"/{prefix}/<path:rest>", view_func=route, methods=METHODS)


for _prefix, _service in ROUTES.items():
    _make_route(_prefix, _service)
