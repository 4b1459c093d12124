"""A small HTTP client for tests: one interface over real HTTP or a WSGI app, with a bearer token."""
from __future__ import annotations

import json as jsonlib

import requests


class Response:
    def __init__(self, status: int, body: bytes, headers):
        self.status_code = status
        self.content = body
        self.headers = headers

    @property
    def json(self):
        return jsonlib.loads(self.content) if self.content else None

    def __repr__(self):
        return f"<Response {self.status_code} {self.content[:300]!r}>"


class Api:
    def __init__(self, base_url: str | None = None, wsgi_client=None, token: str | None = None):
        self.base_url = base_url
        self.wsgi = wsgi_client
        self.token = token
        self.session = requests.Session() if base_url else None

    @classmethod
    def for_wsgi(cls, app):
        return cls(wsgi_client=app.test_client())

    def as_token(self, token: str | None) -> "Api":
        """The same system seen by another user (or by nobody, with None)."""
        other = Api(self.base_url, self.wsgi, token)
        other.session = self.session
        return other

    def login(self, username: str, password: str) -> "Api":
        response = self.post("/api/v1/auth/token", json={"username": username, "password": password}, auth=False)
        assert response.status_code == 200, response
        self.token = response.json["access_token"]
        return self

    def user(self, username: str, role: str = "sales", password: str = "password-123", **extra) -> "Api":
        """Create a user as this (admin) client and return a client logged in as them."""
        response = self.post("/api/v1/users", json={"username": username, "password": password, "role": role,
                                                    **extra})
        assert response.status_code == 201, response
        return self.as_token(None).login(username, password)

    def request(self, method: str, path: str, json=None, data=None, headers=None, params=None, auth=True):
        headers = dict(headers or {})
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if json is not None:
            data = jsonlib.dumps(json, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        if self.wsgi is not None:
            r = self.wsgi.open(path, method=method, data=data, headers=headers, query_string=params)
            return Response(r.status_code, r.get_data(), r.headers)
        r = self.session.request(method, self.base_url + path, data=data, headers=headers, params=params, timeout=30)
        return Response(r.status_code, r.content, r.headers)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    # the seed data most tests need

    def product(self, code: str, stock=0, price="100.00", name=None, tax_rate="0.13", unit="件", **extra):
        r = self.post("/api/v1/products", json={"code": code, "name": name or f"产品 {code}", "unit": unit,
                                                "unit_price": price, "tax_rate": tax_rate, **extra})
        assert r.status_code == 201, r
        if stock:
            r = self.post(f"/api/v1/products/{code}/stock", json={"delta": str(stock), "reason": "initial stock"})
            assert r.status_code == 200, r
        return r.json

    def customer(self, name="杭州明远机械有限公司", language="zh-CN", email="buyer@example.cn", **extra):
        r = self.post("/api/v1/customers", json={"name": name, "language": language, "email": email, **extra})
        assert r.status_code == 201, r
        return r.json

    def contract(self, customer_id: str, lines, **extra):
        r = self.post("/api/v1/contracts", json={"customer_id": customer_id, "lines": [
            {"product_code": code, "quantity": str(q)} for code, q in lines], **extra})
        assert r.status_code == 201, r
        return r.json
