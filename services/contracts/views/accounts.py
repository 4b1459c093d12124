"""POST /auth/token, and users (admins create them)."""
from __future__ import annotations

import uuid

from flask import Blueprint, current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash

from crmkit.errors import Conflict, NotFound, field_error
from crmkit.web.auth import caller, issue_token
from crmkit.web.idempotency import idempotent
from crmkit.web.pagination import fetch_page, page, page_args
from crmkit.web.requests import load
from services.contracts.models import User
from services.contracts.schemas import PasswordChange, PasswordChanged, TokenIn, TokenOut, UserIn, UserOut, UserPatch
from services.contracts.users import caller_of, check_login, end_sessions, hash_password

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


@bp.patch("/users/<user_id>")
def change_user(user_id):
    """Reset a password, change a role or department, disable someone who has left (admins)."""
    caller().require("admin")
    data = load(UserPatch())
    with _db().session() as session:
        user = session.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound("No such user.")
        before = (user.role, user.department, user.active)
        reset = "password" in data
        if reset:
            user.password_hash = hash_password(data.pop("password"))
            user.failed_logins, user.locked_until = 0, None
        for key, value in data.items():
            setattr(user, key, value)
        if user.role not in ("department", "sales"):
            user.department = None
        elif user.role == "department" and not user.department:
            raise field_error("department", "A department user needs a department.")
        if user.role != "admin" or not user.active:
            others = session.execute(select(User.id).where(User.role == "admin", User.active.is_(True),
                                                           User.id != user.id).limit(1)).first()
            if others is None:
                raise Conflict("This is the last active admin: make another admin first.",
                               {"role" if user.role != "admin" else "active": ["The last active admin."]})
        # What a token carries (role, department) or grants no longer holds: the user signs in again.
        if reset or (user.role, user.department) != before[:2] or (before[2] and not user.active):
            end_sessions(session, user)
        return user_out.dump(user)


@bp.post("/users/me/password")
def change_own_password():
    data = load(PasswordChange())
    with _db().session() as session:
        user = session.get(User, caller().id, with_for_update=True)
        if user is None or not check_password_hash(user.password_hash, data["current_password"]):
            raise field_error("current_password", "Wrong password.")
        user.password_hash = hash_password(data["new_password"])
        # Signs out every other session (a password is changed when one may have leaked); this one goes on
        # with the token in the answer.
        end_sessions(session, user)
        settings = current_app.config["CRM_SETTINGS"]
        return PasswordChanged().dump({**{c: getattr(user, c) for c in PasswordChanged.USER_FIELDS},
                                       "access_token": issue_token(settings.secret_key, caller_of(user)),
                                       "token_type": "Bearer", "expires_in": settings.token_ttl})


@bp.get("/users/me")
def me():
    with _db().session() as session:
        user = session.get(User, caller().id)
        return user_out.dump(user) if user else {"id": caller().id, "username": caller().username,
                                                 "role": caller().role}
