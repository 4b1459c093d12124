"""A DOCUMENTS_DIR that cannot take a PDF stops the documents service at start, saying so."""
from __future__ import annotations

import pytest

from crmkit.settings import Settings
from services.documents import check_documents_dir


def settings(tmp_path, documents_dir) -> Settings:
    return Settings.from_env("documents", {"CRM_VAR_DIR": str(tmp_path), "CRM_SECRET_KEY": "k",
                                           "DOCUMENTS_DIR": str(documents_dir)})


def test_a_folder_it_can_write_is_made_if_missing(tmp_path):
    check_documents_dir(settings(tmp_path, tmp_path / "pdfs" / "2026"), None)
    assert (tmp_path / "pdfs" / "2026").is_dir() and list((tmp_path / "pdfs" / "2026").iterdir()) == []


def test_a_path_under_a_file_stops_the_start(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(SystemExit, match=r"DOCUMENTS_DIR=.*a-file/pdfs is not a folder this service can write"):
        check_documents_dir(settings(tmp_path, tmp_path / "a-file" / "pdfs"), None)


def test_the_embedded_system_does_not_start_with_it(tmp_path):
    from services import embedded
    (tmp_path / "a-file").write_text("not a folder")
    env = {"CRM_VAR_DIR": str(tmp_path / "var"), "CRM_SECRET_KEY": "k", "CRM_ADMIN_PASSWORD": "admin-secret-1",
           "DOCUMENTS_DIR": str(tmp_path / "a-file" / "pdfs")}
    try:
        with pytest.raises(SystemExit, match="DOCUMENTS_DIR"):
            embedded.start(env, workers=False)
    finally:
        embedded.stop()
        from crmkit.web.client import LOCAL_APPS
        LOCAL_APPS.clear()
