"""PUT /settings through the gateway's real app, on SQLite and PostgreSQL: a key left out keeps its value (inside
`company` too), a key given replaces it, and default_installments are checked when written, as a plan's are."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from services.contracts.settings_store import load_settings

URL = "/api/v1/settings"
COMPANY = {"name": "宁波恒达五金有限公司", "address": "宁波市江北区", "phone": "0574-8888 0000",
           "tax_id": "91330200XXXXXXXX", "bank_account": "工商银行 3901 0000 0000", "language": "zh-CN",
           "terms": "货到付款", "footer": "恒达五金", "email": "sales@hengda.example.cn"}
FULL = {"company": COMPANY, "shortage_policy": "notify_production", "default_payment_terms": "30 天",
        "default_notify_departments": ["warehouse", "finance"],
        "default_installments": [
            {"label": "定金", "percent": "30", "due_days_after": {"event": "signing", "days": 10}},
            {"label": "尾款", "percent": "70", "due_date": "2031-03-01"}]}


@pytest.fixture
def gateway(db_url, tmp_path: Path):
    """The gateway's Flask app on this database, an admin's headers, and the database."""
    from crmkit.service import open_database
    from crmkit.settings import Settings
    from services.contracts import spec
    settings = Settings.from_env("contracts", {"DATABASE_URL": db_url, "CRM_VAR_DIR": str(tmp_path / "var"),
                                               "CRM_SECRET_KEY": "test-secret", "CRM_ADMIN_PASSWORD": "admin-pass"})
    the_spec = spec()
    db = open_database(the_spec, settings)
    app = the_spec.build_app(settings, db)
    token = app.test_client().post("/api/v1/auth/token", json={"username": "admin", "password": "admin-pass"})
    yield app, {"Authorization": f"Bearer {token.get_json()['access_token']}"}, db
    db.dispose()


def put(gateway, body):
    app, auth, _ = gateway
    return app.test_client().put(URL, json=body, headers=auth)


def get(gateway) -> dict:
    app, auth, _ = gateway
    return app.test_client().get(URL, headers=auth).get_json()


def stored(gateway) -> dict:
    """What every later event is built from (create and confirm read the settings the same way)."""
    with gateway[2].session() as session:
        return load_settings(session)


def test_a_put_of_one_key_keeps_the_company_and_every_other_key(gateway):
    saved = put(gateway, FULL)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json() == FULL

    changed = put(gateway, {"shortage_policy": "warn_sales"})
    assert changed.status_code == 200
    expected = {**FULL, "shortage_policy": "warn_sales"}
    assert changed.get_json() == expected and get(gateway) == expected
    assert stored(gateway)["company"]["name"] == COMPANY["name"]
    assert stored(gateway)["company"]["bank_account"] == COMPANY["bank_account"]


def test_a_key_left_out_of_company_keeps_its_value_and_a_key_given_is_replaced(gateway):
    put(gateway, FULL)
    changed = put(gateway, {"company": {"phone": "0574-1111 2222", "email": None}})
    assert changed.status_code == 200
    assert changed.get_json()["company"] == {**COMPANY, "phone": "0574-1111 2222", "email": None}
    # Given explicitly, an empty value replaces: a list is replaced as a whole, never merged.
    emptied = put(gateway, {"default_notify_departments": [], "default_payment_terms": "",
                            "default_installments": []})
    assert emptied.status_code == 200
    assert {k: emptied.get_json()[k] for k in ("default_notify_departments", "default_payment_terms",
                                               "default_installments")} == {
        "default_notify_departments": [], "default_payment_terms": "", "default_installments": []}
    assert emptied.get_json()["company"]["name"] == COMPANY["name"]


def test_on_a_fresh_system_absent_keys_read_as_the_defaults(gateway):
    changed = put(gateway, {"company": {"name": "恒达"}})
    assert changed.status_code == 200
    body = changed.get_json()
    assert body["company"]["name"] == "恒达" and body["company"]["language"] == "zh-CN"
    assert (body["shortage_policy"], body["default_notify_departments"], body["default_installments"]) == (
        "notify_production", [], [])


@pytest.mark.parametrize("installments, field", [
    ([{"label": "定金", "due_date": "2031-01-01"}], "default_installments.0.percent"),
    ([{"label": "定金", "percent": "30", "amount": "10", "due_date": "2031-01-01"}], "default_installments.0.percent"),
    ([{"label": "定金", "percent": "0", "due_date": "2031-01-01"}], "default_installments.0.percent"),
    ([{"label": "定金", "percent": "100.5", "due_date": "2031-01-01"}], "default_installments.0.percent"),
    ([{"label": "定金", "percent": "100"}], "default_installments.0.due_date"),
    ([{"percent": "100", "due_date": "2031-01-01"}], "default_installments.0.label"),
    ([{"label": "a", "percent": "50", "due_date": "2031-01-01"},
      {"label": "b", "amount": "-5", "due_date": "2031-01-01"}], "default_installments.1.amount"),
    ([{"label": "a", "percent": "100", "due_days_after": {"event": "shipping", "days": 3}}],
     "default_installments.0.due_days_after.event"),
    ([{"label": "a", "percent": "100", "due_days_after": {"event": "signing", "days": "3"}}],
     "default_installments.0.due_days_after.days"),
    ([{"label": "a", "percent": "100", "due_date": "2031-02-30"}], "default_installments.0.due_date"),
    ([{"label": "a", "percent": "100", "due_date": "2031-01-01", "note": "x"}], "default_installments.0.note"),
    (["30%"], "default_installments.0._schema"),
    ({"label": "a"}, "default_installments"),
    ([{"label": "a", "amount": "1", "due_date": "2031-01-01"}] * 61, "default_installments"),
])
def test_bad_default_installments_answer_422_naming_the_field_and_keep_the_settings(gateway, installments, field):
    put(gateway, FULL)
    refused = put(gateway, {"shortage_policy": "warn_sales", "default_installments": installments})
    assert refused.status_code == 422, refused.get_json()
    error = refused.get_json()["error"]
    assert error["code"] == "validation_error" and field in error["fields"], error
    assert get(gateway) == FULL  # nothing of the refused PUT was kept


def test_good_default_installments_are_kept_in_the_plan_shape(gateway):
    changed = put(gateway, {"default_installments": [
        {"label": "定金", "percent": 30, "due_days_after": {"event": "signing", "days": 10}},
        {"label": "尾款", "amount": "700.5", "due_date": "2031-03-01"}]})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["default_installments"] == stored(gateway)["default_installments"] == [
        {"label": "定金", "percent": "30", "due_days_after": {"event": "signing", "days": 10}},
        {"label": "尾款", "amount": "700.50", "due_date": "2031-03-01"}]


def test_two_admins_changing_different_keys_at_once_both_keep_theirs(gateway):
    put(gateway, FULL)
    barrier = threading.Barrier(2)
    replies = []

    def change(body):
        barrier.wait()
        for _ in range(5):
            replies.append(put(gateway, body).status_code)

    threads = [threading.Thread(target=change, args=(body,)) for body in (
        {"shortage_policy": "warn_sales"}, {"company": {"phone": "0574-1111 2222"}})]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert replies == [200] * 10
    now = get(gateway)
    assert now["shortage_policy"] == "warn_sales" and now["company"]["phone"] == "0574-1111 2222"
    assert now["company"]["name"] == COMPANY["name"] and now["default_installments"] == FULL["default_installments"]
