"""Synchronous reads of another service, with timeouts; in-process when everything runs embedded."""
from __future__ import annotations

import json
from dataclasses import dataclass

import requests
from werkzeug.test import Client

from crmkit.errors import Unavailable

# Filled by the embedded runner: service name -> its Flask app in this process.
LOCAL_APPS: dict = {}

_session = requests.Session()


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
        try:
            response = _session.request(method, self.base_url + path, data=data, params=params, headers=headers,
                                        timeout=self.timeout)
        except requests.RequestException as exc:
            raise Unavailable(f"The {self.service} service did not answer: {type(exc).__name__}.")
        return Reply(response.status_code, response.content, dict(response.headers))

    def get(self, path: str, **kwargs) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> Reply:
        return self.request("POST", path, **kwargs)
