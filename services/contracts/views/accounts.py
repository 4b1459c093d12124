"""POST /auth/token, and users (admins create them)."""
from __future__ import annotations

import uuid

from flask import Blueprint, current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crmkit.errors import Conflict
from crmkit.web.auth import caller, issue_token
from crmkit.web.idempotency import idempotent
from crmkit.web.pagination import fetch_page, page, page_args
from crmkit.web.requests import load
from services.contracts.models import User
from services.contracts.schemas import TokenIn, TokenOut, UserIn, UserOut
from services.contracts.users import check_login, hash_password

bp = Blueprint("accounts", __name__, url_prefix="/api/v1")
user_out = UserOut()


def _db():
    return current_app.extensions["crm_db"]


@bp.post("/auth/token")
def token():
    data = load(TokenIn())
    settings = current_app.config["CRM_SETTINGS"]
    who = check_login(_db(), data["username"], data["password"])
    return TokenOut().dump({"access_token": issue_token(settings.secret_key, who), "token_type": "Bearer",
                            "expires_in": settings.token_ttl})


@bp.post("/users")
@idempotent
def create_user():
    caller().require("admin")
    data = load(UserIn())
    if data["role"] not in ("department", "sales"):
        data["department"] = None  # only department users and salespeople belong to a department inbox
    try:
        with _db().session() as session:
            user = User(id=str(uuid.uuid4()), username=data["username"], password_hash=hash_password(data["password"]),
                        role=data["role"], department=data.get("department"), email=data.get("email"))
            session.add(user)
            session.flush()
            return user_out.dump(user), 201
    except IntegrityError:
        raise Conflict(f"The username {data['username']} is taken.", {"username": ["Already exists."]})


@bp.get("/users")
def list_users():
    caller().require("admin", "manager")
    limit, offset = page_args()
    with _db().session() as session:
        users, total = fetch_page(session, select(User), (User.created_at, User.id), limit, offset)
        return page([user_out.dump(u) for u in users], total)


@bp.get("/users/me")
def me():
    with _db().session() as session:
        user = session.get(User, caller().id)
        return user_out.dump(user) if user else {"id": caller().id, "username": caller().username,
                                                 "role": caller().role}
