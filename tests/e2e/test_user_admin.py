"""An admin manages users (a new password, another role, someone who has left), a user changes their own
password, and an operator who lost the admin password gets back in."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from support.infra import ADMIN_PASSWORD, ROOT, wait_for


def login(api, username, password) -> int:
    return api.as_token(None).post("/api/v1/auth/token", json={"username": username, "password": password},
                                   auth=False).status_code


def test_an_admin_manages_users_and_a_user_their_own_password(embedded):
    admin = embedded.api
    sam = admin.user("sam", password="first-pass-1")
    sam_id = sam.get("/api/v1/users/me").json["id"]

    reset = admin.patch(f"/api/v1/users/{sam_id}", json={"password": "second-pass-2"})
    assert reset.status_code == 200 and "password" not in reset.json and "password_hash" not in reset.json, reset
    assert login(admin, "sam", "first-pass-1") == 401 and login(admin, "sam", "second-pass-2") == 200

    moved = admin.patch(f"/api/v1/users/{sam_id}", json={"role": "department"})
    assert moved.status_code == 422 and "department" in moved.json["error"]["fields"], moved
    moved = admin.patch(f"/api/v1/users/{sam_id}", json={"role": "department", "department": "warehouse"})
    assert moved.status_code == 200 and (moved.json["role"], moved.json["department"]) == ("department", "warehouse")

    gone = admin.patch(f"/api/v1/users/{sam_id}", json={"active": False})
    assert gone.status_code == 200 and gone.json["active"] is False
    assert login(admin, "sam", "second-pass-2") == 401  # someone who has left cannot log in

    admin_id = admin.get("/api/v1/users/me").json["id"]
    for body, field in (({"role": "manager"}, "role"), ({"active": False}, "active")):
        last = admin.patch(f"/api/v1/users/{admin_id}", json=body)
        assert last.status_code == 409 and field in last.json["error"]["fields"], last
    assert admin.patch("/api/v1/users/nobody", json={"active": False}).status_code == 404
    assert admin.patch(f"/api/v1/users/{sam_id}", json={"password": "short"}).status_code == 422
    manager = admin.user("mia", role="manager")
    assert manager.patch(f"/api/v1/users/{sam_id}", json={"active": True}).status_code == 403

    wrong = manager.post("/api/v1/users/me/password", json={"current_password": "nope", "new_password": "mia-pass-22"})
    assert wrong.status_code == 422 and "current_password" in wrong.json["error"]["fields"], wrong
    own = manager.post("/api/v1/users/me/password", json={"current_password": "password-123",
                                                           "new_password": "mia-pass-22"})
    assert own.status_code == 200, own
    assert login(admin, "mia", "password-123") == 401 and login(admin, "mia", "mia-pass-22") == 200


def test_an_operator_who_lost_the_admin_password_sets_a_new_one(embedded):
    admin = embedded.api
    for _ in range(5):  # and locked the account guessing
        login(admin, "admin", "wrong-guess")
    assert login(admin, "admin", ADMIN_PASSWORD) == 429
    env = {**os.environ, **embedded.env, "CRM_NEW_PASSWORD": "recovered-pass-1"}
    done = subprocess.run([sys.executable, "-m", "services.contracts.users", "set-password", "admin"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Password of 'admin' set" in done.stdout
    assert login(admin, "admin", "recovered-pass-1") == 200
    unknown = subprocess.run([sys.executable, "-m", "services.contracts.users", "set-password", "ghost"], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=120)
    assert unknown.returncode != 0 and "No user 'ghost'" in unknown.stderr


# --------------------------------------------------------------------------- tokens of an account that changed

def statuses(api, path="/api/v1/users/me", times=6) -> set[int]:
    """What a few requests at once answer, each on its own connection: the gateway's processes share them out,
    and each process checks for itself."""
    with ThreadPoolExecutor(3) as pool:
        return set(pool.map(lambda _: api.get(path, headers={"Connection": "close"}).status_code, range(times)))


def refused(api, reason: str):
    """Every process refuses the token (each within a couple of seconds of the change), saying why."""
    # Within SESSION_CHECK_SECONDS (2 s) on a process that had found the token current just before.
    wait_for(lambda: statuses(api) == {401}, timeout=4, message="the old token refused on every process")
    answer = api.get("/api/v1/users/me")
    assert reason in answer.json["error"]["message"], answer
    assert api.get("/api/v1/products").status_code == 401  # a route to another service too


def run_sessions(admin):
    sam = admin.user("sam", password="first-pass-1")
    laptop = admin.as_token(None).login("sam", "first-pass-1")  # a second session of the same person
    sam_id = sam.get("/api/v1/users/me").json["id"]
    assert statuses(sam) == statuses(laptop) == {200}

    # An email change ends nothing; a password reset ends every session.
    assert admin.patch(f"/api/v1/users/{sam_id}", json={"email": "sam@example.cn"}).status_code == 200
    assert statuses(sam) == {200}
    assert admin.patch(f"/api/v1/users/{sam_id}", json={"password": "second-pass-2"}).status_code == 200
    refused(sam, "password, role or department changed")
    refused(laptop, "password, role or department changed")
    sam = admin.as_token(None).login("sam", "second-pass-2")
    assert statuses(sam, times=10) == {200}

    # Changing one's own password signs the other sessions out; this one goes on with the token in the answer.
    laptop = admin.as_token(None).login("sam", "second-pass-2")
    own = sam.post("/api/v1/users/me/password", json={"current_password": "second-pass-2",
                                                      "new_password": "third-pass-3"})
    assert own.status_code == 200 and own.json["token_type"] == "Bearer" and own.json["username"] == "sam", own
    refused(laptop, "password, role or department changed")
    refused(sam, "password, role or department changed")
    sam = sam.as_token(own.json["access_token"])
    assert statuses(sam, times=10) == {200}

    # A demoted manager's token no longer carries the old role.
    admin.patch(f"/api/v1/users/{sam_id}", json={"role": "manager"})
    refused(sam, "password, role or department changed")
    sam = admin.as_token(None).login("sam", "third-pass-3")
    assert sam.get("/api/v1/users/me").json["role"] == "manager"
    assert sam.get("/api/v1/users").status_code == 200
    assert admin.patch(f"/api/v1/users/{sam_id}", json={"role": "sales", "department": "sales"}).status_code == 200
    refused(sam, "password, role or department changed")
    sam = admin.as_token(None).login("sam", "third-pass-3")
    assert sam.get("/api/v1/users").status_code == 403

    # A department user moved to another department no longer reads the old one's inbox.
    assert admin.patch(f"/api/v1/users/{sam_id}", json={"role": "department",
                                                         "department": "warehouse"}).status_code == 200
    refused(sam, "password, role or department changed")
    sam = admin.as_token(None).login("sam", "third-pass-3")
    assert statuses(sam, "/api/v1/departments/warehouse/notifications") == {200}
    assert admin.patch(f"/api/v1/users/{sam_id}", json={"department": "finance"}).status_code == 200
    refused(sam, "password, role or department changed")
    sam = admin.as_token(None).login("sam", "third-pass-3")
    assert statuses(sam, "/api/v1/departments/warehouse/notifications") == {403}

    # Someone who has left: refused at once, not when the token expires hours later.
    assert admin.patch(f"/api/v1/users/{sam_id}", json={"active": False}).status_code == 200
    refused(sam, "disabled")
    assert statuses(admin, times=4) == {200}  # the admin's own session is untouched


def test_a_changed_account_ends_its_sessions(embedded):
    run_sessions(embedded.api)


def test_a_changed_account_ends_its_sessions_on_every_gateway_process(two_web_workers):
    run_sessions(two_web_workers.api)
