"""The gateway's OpenAPI document: served without a token, and it describes every route and every SPEC §3 path."""
from __future__ import annotations

import importlib
import re

import pytest

from crmkit.settings import Settings

# SPEC §3, method and path as written there (… expanded), plus the additions the gateway has.
SPEC_PATHS = [
    "POST /api/v1/auth/token",
    "POST /api/v1/users",
    "GET /api/v1/settings", "PUT /api/v1/settings",
    "POST /api/v1/customers", "GET /api/v1/customers", "GET /api/v1/customers/{id}", "PATCH /api/v1/customers/{id}",
    "POST /api/v1/products", "GET /api/v1/products", "GET /api/v1/products/{code}", "PATCH /api/v1/products/{code}",
    "POST /api/v1/products/{code}/stock",
    "POST /api/v1/quotes", "GET /api/v1/quotes", "GET /api/v1/quotes/{id}", "PATCH /api/v1/quotes/{id}",
    "POST /api/v1/quotes/{id}/send", "POST /api/v1/quotes/{id}/accept", "POST /api/v1/quotes/{id}/reject",
    "POST /api/v1/quotes/{id}/contract",
    "POST /api/v1/contracts", "GET /api/v1/contracts", "GET /api/v1/contracts/{id}", "PATCH /api/v1/contracts/{id}",
    "POST /api/v1/contracts/{id}/confirm", "POST /api/v1/contracts/{id}/cancel",
    "GET /api/v1/contracts/{id}/timeline",
    "GET /api/v1/contracts/{id}/pdf", "GET /api/v1/quotes/{id}/pdf", "GET /api/v1/delivery-notes/{id}/pdf",
    "POST /api/v1/contracts/{id}/send", "GET /api/v1/emails/{id}",
    "POST /api/v1/contracts/{id}/delivery-notes",
    "GET /api/v1/delivery-notes/{id}", "POST /api/v1/delivery-notes/{id}/ship",
    "POST /api/v1/contracts/{id}/receivables-plan",
    "GET /api/v1/contracts/{id}/receivables", "GET /api/v1/receivables",
    "POST /api/v1/receivables/{id}/payments",
    "POST /api/v1/recurring-contracts", "GET /api/v1/recurring-contracts", "GET /api/v1/recurring-contracts/{id}",
    "POST /api/v1/recurring-contracts/{id}/pause", "POST /api/v1/recurring-contracts/{id}/resume",
    "POST /api/v1/admin/scheduler/run",
    "GET /api/v1/departments/{name}/notifications", "POST /api/v1/departments/{name}/notifications/{id}/ack",
    "GET /healthz", "GET /readyz", "GET /metrics", "GET /api/openapi.json", "GET /api/docs",
    # additions
    "GET /api/v1/users", "GET /api/v1/users/me", "GET /api/v1/emails",
    "GET /api/v1/admin/dead-letters", "GET /api/v1/admin/dead-letters/{id}",
    "POST /api/v1/admin/dead-letters/{id}/replay",
]
PROXIED = {"products": "inventory", "quotes": "quotes", "emails": "notifications", "departments": "notifications",
           "documents": "documents"}


class _NoDatabase:
    """Building the apps and serving the document touch no table."""


def _app(service: str, tmp_path):
    settings = Settings.from_env(service, {"CRM_VAR_DIR": str(tmp_path), "CRM_SECRET_KEY": "test-secret"})
    return importlib.import_module(f"services.{service}").spec().build_app(settings, _NoDatabase())


def _shape(method: str, path: str) -> str:
    """`GET /a/{x}/b` with every parameter name dropped, so `{id}` matches `{contract_id}`."""
    return f"{method} {re.sub(r'{[^}]+}|<[^>]+>', '{}', path)}"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    return _app("contracts", tmp_path_factory.mktemp("openapi"))


@pytest.fixture(scope="module")
def document(gateway):
    response = gateway.test_client().get("/api/openapi.json")
    assert response.status_code == 200, response.get_data()
    return response.get_json()


def _documented(document) -> set[str]:
    return {_shape(method.upper(), path) for path, methods in document["paths"].items() for method in methods}


def _rules(app, prefix: str = "/api/v1") -> set[str]:
    return {_shape(method, rule.rule) for rule in app.url_map.iter_rules() if rule.rule.startswith(prefix)
            and "<path:" not in rule.rule and rule.endpoint.split(".")[0] != "proxy"
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_served_without_a_token_and_cached(gateway, document):
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    again = gateway.test_client().get("/api/openapi.json").get_json()
    assert again == document
    page = gateway.test_client().get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "/api/v1/contracts/{contract_id}/confirm" in page.get_data(as_text=True)


def test_every_gateway_route_is_documented(gateway, document):
    missing = _rules(gateway) - _documented(document)
    assert not missing, f"gateway routes missing from the OpenAPI document: {sorted(missing)}"


@pytest.mark.parametrize("service", sorted(set(PROXIED.values())))
def test_every_proxied_route_is_documented(service, document, tmp_path):
    """What the gateway forwards to another service is documented with that service's routes."""
    routes = {r for r in _rules(_app(service, tmp_path)) if r.split("/")[3] in PROXIED}
    missing = routes - _documented(document)
    assert not missing, f"{service} routes missing from the OpenAPI document: {sorted(missing)}"


def test_every_spec_path_is_documented(document):
    missing = {_shape(*p.split(" ")) for p in SPEC_PATHS} - _documented(document)
    assert not missing, f"SPEC §3 paths missing from the OpenAPI document: {sorted(missing)}"


def test_operations_have_schemas_and_errors(document):
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            responses = op["responses"]
            ok = [s for s in responses if s.startswith("2")]
            assert ok, f"{method} {path} has no success response"
            if path.startswith("/api/v1/") and path != "/api/v1/auth/token":
                assert op["security"] == [{"bearer": []}], f"{method} {path}"
                assert responses["401"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"}
            if method in ("post", "put", "patch") and "requestBody" in op:
                assert op["requestBody"]["content"]["application/json"]["schema"], f"{method} {path}"
            if any(p["name"] == "limit" for p in op["parameters"]):
                schema = responses[ok[0]]["content"]["application/json"]["schema"]
                assert schema["required"] == ["items", "total"], f"{method} {path}"


def test_money_is_a_decimal_string(document):
    contract = document["components"]["schemas"]["ContractOut"]["properties"]
    assert contract["total"]["type"] == "string" and "pattern" in contract["total"]
    line = document["components"]["schemas"]["LineIn"]["properties"]
    assert line["quantity"]["type"] == "string"
    assert document["components"]["schemas"]["QuotesLineIn"]  # the quotes' own LineIn, not overwritten
