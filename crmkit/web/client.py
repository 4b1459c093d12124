"""Synchronous reads of another service, with timeouts; in-process when everything runs embedded."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import urllib3
from werkzeug.test import Client

from crmkit import timing
from crmkit.errors import Unavailable

# Filled by the embedded runner: service name -> its Flask app in this process.
LOCAL_APPS: dict = {}

# urllib3 itself rather than requests: requests merges environment proxies, cookies and hooks into every call,
# which cost more CPU than the request on the gateway's hot path (the catalogue read of each new contract).
# Thread-safe; keeps connections to each service alive.
_pool = urllib3.PoolManager(maxsize=16, block=False)


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


class ServiceClient:
    def __init__(self, settings, service: str, timeout: float = 5.0):
        self.service = service
        self.base_url = settings.service_urls.get(service)
        self.timeout = timeout

    def request(self, method: str, path: str, *, token: str | None = None, json_body=None, data: bytes | None = None,
                params=None, headers: dict | None = None) -> Reply:
        started = time.perf_counter()
        try:
            return self._request(method, path, token=token, json_body=json_body, data=data, params=params,
                                 headers=headers)
        finally:
            timing.add(self.service, time.perf_counter() - started)  # the caller's Server-Timing

    def _request(self, method, path, *, token, json_body, data, params, headers) -> Reply:
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        if self.base_url is None:
            app = LOCAL_APPS.get(self.service)
            if app is None:
                raise Unavailable(f"The {self.service} service is not reachable.")
            response = Client(app).open(path, method=method, data=data, query_string=params, headers=headers)
            return Reply(response.status_code, response.get_data(), dict(response.headers))
        url = self.base_url + path
        if params:
            url += ("&" if "?" in url else "?") + _query(params)
        # A read is sent a second time when its connection broke: usually a kept-alive connection the peer closed
        # (its idle timeout) just as we reused it, so the request never reached it. Anything else is not
        # repeated here, since the peer may have acted on it; the caller decides.
        attempts = 2 if method in ("GET", "HEAD") else 1
        for attempt in range(1, attempts + 1):
            try:
                # No redirect followed: the gateway passes a Location on as it is.
                response = _pool.request(method, url, body=data, headers=headers, retries=False, redirect=False,
                                         timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout))
                return Reply(response.status, response.data, dict(response.headers))
            except urllib3.exceptions.HTTPError as exc:
                if not (isinstance(exc, urllib3.exceptions.ProtocolError) and attempt < attempts):
                    raise Unavailable(f"The {self.service} service did not answer: {type(exc).__name__}.")

    def get(self, path: str, **kwargs) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> Reply:
        return self.request("POST", path, **kwargs)


def _query(params: dict) -> str:
    """A query string from {name: value or [values]}; None values are left out."""
    pairs = []
    for name, values in params.items():
        for value in values if isinstance(values, (list, tuple)) else [values]:
            if value is not None:
                pairs.append((name, value))
    return urlencode(pairs)
