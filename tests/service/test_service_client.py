"""The services' HTTP client against a real server: queries, bodies, redirects passed on, a peer that is away."""
from __future__ import annotations

import json
import socket
import time

import pytest

from crmkit.errors import Unavailable
from crmkit.settings import Settings
from crmkit.web.client import ServiceClient
from support.infra import wsgi_server


@pytest.fixture
def peer():
    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/moved":
            start_response("308 Permanent Redirect", [("Location", "/elsewhere")])
            return [b""]
        if path == "/slow":
            time.sleep(1.5)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        seen = {"method": environ["REQUEST_METHOD"], "path": path, "query": environ.get("QUERY_STRING", ""),
                "body": environ["wsgi.input"].read(length).decode(), "auth": environ.get("HTTP_AUTHORIZATION"),
                "type": environ.get("CONTENT_TYPE")}
        start_response("201 Created", [("Content-Type", "application/json"), ("ETag", '"abc"')])
        return [json.dumps(seen).encode()]

    with wsgi_server(app) as url:
        yield url


def client(url, timeout=5.0):
    settings = Settings.from_env("contracts", {"CRM_SECRET_KEY": "test", "INVENTORY_URL": url})
    return ServiceClient(settings, "inventory", timeout=timeout)


def test_a_request_carries_its_query_body_and_token_and_returns_status_body_and_headers(peer):
    reply = client(peer).post("/api/v1/products", token="t0k", json_body={"name": "螺栓"},
                              params={"codes": "A,B", "tag": ["x", "y"], "skip": None, "limit": 200})
    assert reply.status == 201 and reply.headers["ETag"] == '"abc"'
    seen = reply.json()
    assert seen["query"] == "codes=A%2CB&tag=x&tag=y&limit=200"
    assert json.loads(seen["body"]) == {"name": "螺栓"} and seen["type"] == "application/json"
    assert seen["auth"] == "Bearer t0k" and seen["method"] == "POST"


def test_a_redirect_is_returned_not_followed(peer):
    reply = client(peer).get("/moved")
    assert reply.status == 308 and reply.headers["Location"] == "/elsewhere"


def test_a_peer_that_is_not_listening_is_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the request: nothing listens there
    with pytest.raises(Unavailable, match="inventory"):
        client(f"http://127.0.0.1:{port}").get("/api/v1/products")


def test_a_peer_slower_than_the_timeout_is_unavailable(peer):
    with pytest.raises(Unavailable, match="inventory"):
        client(peer, timeout=0.3).get("/slow")
