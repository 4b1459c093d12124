"""The data every run needs, made through the gateway over HTTP: settings, products, salespeople, customers."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import requests
import urllib3

from bench.system import ADMIN_PASSWORD, ADMIN_USER

COMPANY = {"name": "宁波恒达五金有限公司", "address": "浙江省宁波市江北区长兴路 688 号", "phone": "0574-8888 0000",
           "tax_id": "91330200MA2XXXXXXX", "bank_account": "中国工商银行宁波江北支行 3901 0000 0000 0000",
           "language": "zh-CN"}
PRODUCT_NAMES = ("六角螺栓", "法兰螺母", "平垫圈", "弹簧垫圈", "内六角螺钉", "膨胀螺栓", "自攻螺钉", "铆钉",
                 "U 型螺栓", "地脚螺栓")
CUSTOMER_NAMES = ("杭州明远机械有限公司", "苏州恒力精密制造有限公司", "温州通达阀门厂", "上海申华电气设备有限公司",
                  "宁波海天五金批发部", "无锡锦程汽配有限公司", "台州永固建材有限公司", "嘉兴华鑫机电有限公司")


class HttpError(RuntimeError):
    def __init__(self, method, path, response):
        super().__init__(f"{method} {path} → {response.status_code}: {response.text[:300]}")
        self.status = response.status_code


class Client:
    """A requests.Session with a bearer token against the gateway's /api/v1."""

    default_timeout = 30.0

    def __init__(self, base_url: str, token: str | None = None, timeout: float | None = None):
        self.base = base_url.rstrip("/") + "/api/v1"
        self.session = requests.Session()
        self.timeout = timeout or self.default_timeout
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def login(self, username: str, password: str) -> "Client":
        r = self.session.post(f"{self.base}/auth/token", json={"username": username, "password": password},
                              timeout=self.timeout)
        if r.status_code != 200:
            raise HttpError("POST", "/auth/token", r)
        self.token = r.json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {self.token}"
        return self

    def call(self, method: str, path: str, expect=(200, 201), **kwargs):
        r = self.session.request(method, self.base + path, timeout=self.timeout, **kwargs)
        if r.status_code not in expect:
            raise HttpError(method, path, r)
        return r.json() if r.content else None

    def timed(self, method: str, path: str, json_body=None, params=None) -> tuple["Reply | None", float, float,
                                                                                    str | None]:
        """(response or None, wall start, seconds, error) — never raises, for the load loop.

        urllib3 rather than the requests session: the load generator's CPU counts against the box, and
        requests spent more of it per call than the rest of the client."""
        headers = {"Authorization": self.session.headers.get("Authorization", "")}
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        url = self.base + path + (f"?{urlencode(params)}" if params else "")
        start_wall = time.time()
        start = time.perf_counter()
        try:
            r = _POOL.request(method, url, body=body, headers=headers, retries=False, redirect=False,
                              timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout))
            return Reply(r.status, r.data, r.headers.get("Server-Timing")), start_wall, time.perf_counter() - start, None
        except urllib3.exceptions.HTTPError as exc:
            return None, start_wall, time.perf_counter() - start, f"{type(exc).__name__}: {exc}"[:300]


_POOL = urllib3.PoolManager(maxsize=64, block=False)


@dataclass
class Reply:
    """What the load loop reads of a response."""
    status_code: int
    content: bytes
    server_timing: str | None = None

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


@dataclass
class Seed:
    base_url: str
    admin_token: str
    products: list[str]
    # per salesperson: (token, [customer ids])
    sales: list[tuple[str, list[str]]] = field(default_factory=list)
    sales_ids: list[str] = field(default_factory=list)


def make(base_url: str, products: int = 50, customers: int = 24, salespeople: int = 3,
         departments=("warehouse",)) -> Seed:
    admin = Client(base_url).login(ADMIN_USER, ADMIN_PASSWORD)
    admin.call("PUT", "/settings", json={"company": COMPANY, "shortage_policy": "notify_production",
                                         "default_payment_terms": "签约后 30 天内付清全款",
                                         "default_notify_departments": list(departments)})
    codes = []
    for i in range(products):
        code = f"BN-{i + 1:04d}"
        admin.call("POST", "/products", json={
            "code": code, "name": f"{PRODUCT_NAMES[i % len(PRODUCT_NAMES)]} M{6 + 2 * (i % 8)}×{20 + 5 * (i % 12)}",
            "unit": "件", "unit_price": f"{1 + (i * 37) % 200}.{(i * 13) % 100:02d}", "tax_rate": "0.13"})
        # Plenty of stock: the saga measured is the ordinary one, not the shortage path.
        admin.call("POST", f"/products/{code}/stock", json={"delta": "1000000000", "reason": "bench opening stock"})
        codes.append(code)
    seed = Seed(base_url, admin.token, codes)
    suffix = f"{int(time.time() * 1000) % 100000:05d}"
    for s in range(salespeople):
        username = f"bench.sales{s + 1}.{suffix}"
        user = admin.call("POST", "/users", json={"username": username, "password": "bench-password-1",
                                                  "role": "sales", "email": f"sales{s + 1}@bench.example.cn"})
        seller = Client(base_url).login(username, "bench-password-1")
        ids = []
        for c in range(customers // salespeople or 1):
            n = s * 1000 + c
            customer = seller.call("POST", "/customers", json={
                "name": f"{CUSTOMER_NAMES[n % len(CUSTOMER_NAMES)]}（{n + 1:03d}）", "kind": "company",
                "email": f"buyer{n + 1}@customer.example.cn", "phone": f"0571-8{n:03d} 0000",
                "address": f"浙江省杭州市余杭区文一西路 {100 + n} 号", "contact_person": "王经理", "language": "zh-CN"})
            ids.append(customer["id"])
        seed.sales.append((seller.token, ids))
        seed.sales_ids.append(user["id"])
    return seed
