"""Bearer tokens signed with CRM_SECRET_KEY; every service verifies them the same way."""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from crmkit.errors import Forbidden, Unauthorized

ROLES = ("sales", "manager", "admin", "department")
SYSTEM_ROLE = "system"  # services calling each other on nobody's behalf (scheduler, workers)


@dataclass(frozen=True)
class Caller:
    id: str
    username: str
    role: str
    department: str | None = None
    # The user's token generation when this token was issued: the gateway refuses a token of an earlier one
    # (a password reset, a role change, an account disabled since; services.contracts.users.SessionCheck).
    generation: int = 0

    @property
    def sees_all(self) -> bool:
        """Managers, admins and the system see every customer's records; sales only their own."""
        return self.role in ("manager", "admin", SYSTEM_ROLE)

    def require(self, *roles: str) -> None:
        if self.role != SYSTEM_ROLE and self.role not in roles:
            raise Forbidden(f"This action needs the role {' or '.join(roles)}.")

    def can_read_department(self, name: str) -> bool:
        return self.role in ("manager", "admin", SYSTEM_ROLE) or (
            self.role in ("department", "sales") and self.department == name)


_CALLER_FIELDS = frozenset(Caller.__dataclass_fields__)


@functools.lru_cache(maxsize=8)
def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="crm-access-token")


def issue_token(secret: str, caller: Caller) -> str:
    return _serializer(secret).dumps(asdict(caller))


def read_token(secret: str, token: str, max_age: int) -> Caller:
    try:
        data = _serializer(secret).loads(token, max_age=max_age)
        # Keys this release does not know are left out: a token from a newer gateway (a rolling upgrade, a
        # rollback) still reads, as one without `generation` reads here.
        if not isinstance(data, dict):
            raise TypeError("not a caller")
        return Caller(**{key: value for key, value in data.items() if key in _CALLER_FIELDS})
    except SignatureExpired:
        raise Unauthorized("The token has expired; ask for a new one at /api/v1/auth/token.")
    except (BadSignature, TypeError, ValueError):
        raise Unauthorized("The token is not valid.")


def system_token(settings) -> str:
    return issue_token(settings.secret_key, Caller(id="system", username="system", role=SYSTEM_ROLE))


def authenticate() -> Caller:
    """Read the caller from the Authorization header; 401 when missing or invalid."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send 'Authorization: Bearer <token>'; get one at /api/v1/auth/token.")
    settings = current_app.config["CRM_SETTINGS"]
    caller = read_token(settings.secret_key, token.strip(), settings.token_ttl)
    g.caller = caller
    g.token = token.strip()
    return caller


def caller() -> Caller:
    return g.caller


def bearer() -> str:
    return g.token
