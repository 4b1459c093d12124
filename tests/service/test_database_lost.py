"""Connections are not pinged before use: one cut under a running service costs at most one 503, never a 500."""
from __future__ import annotations

from crmkit.db import Database
from crmkit.models import KIT_TABLES
from crmkit.settings import Settings
from crmkit.web.auth import system_token
from services.documents.app import build_app
from services.documents.models import TABLES
from support.pg import connect


def test_a_connection_killed_under_the_service_answers_503_once_then_the_service_recovers(tmp_path, pg_url):
    settings = Settings.from_env("documents", {"DATABASE_URL": pg_url, "CRM_VAR_DIR": str(tmp_path),
                                               "CRM_SECRET_KEY": "test"})
    db = Database(settings.database_url, settings.db_schema, tables=KIT_TABLES + TABLES)
    db.create_all()
    client = build_app(settings, db).test_client()
    headers = {"Authorization": f"Bearer {system_token(settings)}"}
    path = "/api/v1/documents/no-such-document"
    assert client.get(path, headers=headers).status_code == 404  # the pool now holds a live connection

    database = pg_url.rsplit("/", 1)[1]
    with connect(pg_url) as conn:  # what a database restart does to every open connection
        killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE datname = %s AND pid <> pg_backend_pid()", (database,)).fetchone()[0]
    assert killed >= 1

    first = client.get(path, headers=headers)  # finds its pooled connection dead
    assert first.status_code == 503, first.get_data(as_text=True)
    assert first.json["error"]["code"] == "unavailable" and first.headers["Retry-After"] == "1"
    assert client.get(path, headers=headers).status_code == 404
    db.dispose()
