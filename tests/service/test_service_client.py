"""The services' HTTP client against a real server: queries, bodies, redirects passed on, a peer away or hanging up."""
from __future__ import annotations

import json
import socket
import threading
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


class ClosesKeptConnection:
    """A raw HTTP/1.1 peer: on each connection it answers the first request and keeps the connection open, then
    reads the next request and hangs up without answering, as a server whose idle timeout fires just as the
    client reuses the connection. Records each request's first line."""

    def __init__(self):
        self.seen = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                if self._request(conn):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nfresh")
                    self._request(conn)

    def _request(self, conn) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        self.seen.append(data.split(b"\r\n", 1)[0].decode())
        return True


def test_a_read_whose_kept_connection_the_peer_closed_is_sent_again_on_a_new_one():
    peer = ClosesKeptConnection()
    inventory = client(peer.url)
    assert inventory.get("/api/v1/products/A").body == b"fresh"
    assert inventory.get("/api/v1/products/B").body == b"fresh"  # the kept connection is closed under it
    assert peer.seen == ["GET /api/v1/products/A HTTP/1.1", "GET /api/v1/products/B HTTP/1.1",
                         "GET /api/v1/products/B HTTP/1.1"]


def test_a_write_whose_connection_broke_is_not_sent_again():
    peer = ClosesKeptConnection()
    inventory = client(peer.url)
    assert inventory.get("/api/v1/products/A").body == b"fresh"
    with pytest.raises(Unavailable, match="inventory"):
        inventory.post("/api/v1/products/A/receive", json_body={"delta": "5"})
    assert peer.seen == ["GET /api/v1/products/A HTTP/1.1", "POST /api/v1/products/A/receive HTTP/1.1"]
