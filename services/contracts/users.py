"""Users and passwords: slow hashes, the first admin, and a brake on password guessing."""
from __future__ import annotations

import logging
import secrets
import time
import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from crmkit.db import after_commit
from crmkit.errors import TooMany, Unauthorized
from crmkit.timeutil import as_utc, utcnow
from crmkit.web.auth import SYSTEM_ROLE, Caller
from services.contracts.models import User

log = logging.getLogger(__name__)

MAX_FAILURES = 5
LOCK_SECONDS = 60
# Checked against when the username does not exist, so the answer takes as long either way.
_DUMMY_HASH = generate_password_hash("not-a-password")


def hash_password(password: str) -> str:
    return generate_password_hash(password)  # scrypt: slow on purpose


def caller_of(user: User) -> Caller:
    return Caller(id=user.id, username=user.username, role=user.role, department=user.department,
                  generation=user.token_generation or 0)


def end_sessions(session, user: User) -> None:
    """Every token issued to this user so far stops working once this commits, within SESSION_CHECK_SECONDS on
    every gateway process (usually at once on this one)."""
    user_id = user.id
    user.token_generation = (user.token_generation or 0) + 1
    after_commit(session, lambda: SESSIONS.forget(user_id), once_per=f"sessions:{user_id}")


# How long a gateway process trusts a token it has found current: a disabled account or a reset password ends
# its sessions on every process within this, for one primary-key read per user and process at most this often.
SESSION_CHECK_SECONDS = 2.0


class SessionCheck:
    """Refuses the token of a disabled account, or one issued before the account's password, role or department
    changed: signed tokens alone would stay valid until they expire (CRM_TOKEN_TTL, 8 h by default)."""

    def __init__(self):
        self._current: dict[tuple[str, int], float] = {}  # (user id, generation) -> trusted until (monotonic)

    def check(self, db, who: Caller) -> None:
        if who.role == SYSTEM_ROLE:
            return
        key = (who.id, who.generation)
        if self._current.get(key, 0.0) > time.monotonic():
            return
        with db.session() as session:
            row = session.execute(select(User.active, User.token_generation).where(User.id == who.id)).first()
        if row is None or not row.active:
            raise Unauthorized("This account has been disabled.")
        if (row.token_generation or 0) != who.generation:
            raise Unauthorized("This token was issued before the account's password, role or department changed; "
                               "ask for a new one at /api/v1/auth/token.")
        self._current[key] = time.monotonic() + SESSION_CHECK_SECONDS

    def forget(self, user_id: str) -> None:
        for key in [key for key in list(self._current) if key[0] == user_id]:
            self._current.pop(key, None)


SESSIONS = SessionCheck()


def check_login(db, username: str, password: str) -> Caller:
    """The caller for these credentials; 401 for wrong ones, 429 while the account is locked.

    A wrong password is counted in a transaction that commits before the 401 leaves: raised inside the
    session, the count would be rolled back with it and the lock would never engage.
    """
    failure = None
    with db.session() as session:
        user = session.execute(select(User).where(User.username == username).with_for_update()).scalar_one_or_none()
        if user is None or not user.active:
            check_password_hash(_DUMMY_HASH, password)
            raise Unauthorized("Wrong username or password.")
        now = utcnow()
        locked = None if user.locked_until is None else as_utc(user.locked_until)
        if locked is not None and locked > now:
            raise TooMany("Too many wrong passwords; try again in a minute.",
                          headers={"Retry-After": str(int((locked - now).total_seconds()) + 1)})
        if check_password_hash(user.password_hash, password):
            user.failed_logins = 0
            user.locked_until = None
            return caller_of(user)
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + timedelta(seconds=LOCK_SECONDS)
            user.failed_logins = 0
        failure = Unauthorized("Wrong username or password.")
    raise failure


def ensure_admin(settings, db) -> None:
    """Create the first admin from CRM_ADMIN_USER/CRM_ADMIN_PASSWORD; generate and print a password if unset."""
    with db.session() as session:
        if session.execute(select(User.id).where(User.role == "admin").limit(1)).first():
            return
    password = settings.admin_password or secrets.token_urlsafe(12)
    try:
        with db.session() as session:
            session.add(User(id=str(uuid.uuid4()), username=settings.admin_user, password_hash=hash_password(password),
                             role="admin"))
    except IntegrityError:
        return  # another process created it first
    if not settings.admin_password:
        print(f"Created the first admin: username {settings.admin_user!r}, password {password!r} "
              "(set CRM_ADMIN_PASSWORD to choose it)", flush=True)
    log.info("created admin user %s", settings.admin_user)


def set_password(db, username: str, password: str) -> None:
    """The operator's way back in when an admin password is lost: the user's new password, active, unlocked."""
    with db.session() as session:
        user = session.execute(select(User).where(User.username == username).with_for_update()).scalar_one_or_none()
        if user is None:
            raise SystemExit(f"No user {username!r}.")
        user.password_hash = hash_password(password)
        user.active, user.failed_logins, user.locked_until = True, 0, None
        end_sessions(session, user)


def main(argv=None) -> None:
    """`python -m services.contracts.users set-password USERNAME`: with the settings of the running system (the
    same DATABASE_URL or var/), the new password from CRM_NEW_PASSWORD or typed at the prompt."""
    import argparse
    import getpass
    import os

    from crmkit.service import open_database, setup_logging
    from crmkit.settings import Settings
    from services.contracts import spec
    parser = argparse.ArgumentParser(prog="python -m services.contracts.users", description=main.__doc__)
    parser.add_argument("command", choices=["set-password"])
    parser.add_argument("username")
    args = parser.parse_args(argv)
    password = os.environ.get("CRM_NEW_PASSWORD") or getpass.getpass(f"New password for {args.username}: ")
    if len(password) < 8:
        raise SystemExit("A password needs at least 8 characters.")
    setup_logging()
    db = open_database(spec(), Settings.from_env("contracts"))
    try:
        set_password(db, args.username, password)
    finally:
        db.dispose()
    print(f"Password of {args.username!r} set; the account is active and unlocked.", flush=True)


if __name__ == "__main__":
    main()
