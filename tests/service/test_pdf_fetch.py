"""Notifications reads a PDF from the document store when it sees it, and over HTTP from documents otherwise."""
from __future__ import annotations

import hashlib

import pytest

from crmkit.document_store import DocumentStore
from crmkit.settings import Settings
from services.notifications import emails, mailer
from support.infra import wsgi_server

PDF = b"%PDF-1.4 the signed contract"
SHA = hashlib.sha256(PDF).hexdigest()


@pytest.fixture
def documents_service():
    """A real HTTP server standing in for documents' content endpoint; it records the paths asked for."""
    asked, body = [], {"data": PDF}

    def app(environ, start_response):
        asked.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "application/pdf")])
        return [body["data"]]

    with wsgi_server(app) as url:
        yield url, asked, body


def settings_for(tmp_path, url):
    return Settings.from_env("notifications", {"CRM_VAR_DIR": str(tmp_path), "CRM_SECRET_KEY": "test",
                                               "DOCUMENTS_URL": url, "DOCUMENTS_DIR": str(tmp_path / "documents")})


def test_a_pdf_in_the_shared_store_is_read_without_asking_documents(tmp_path, documents_service):
    url, asked, _ = documents_service
    DocumentStore(tmp_path / "documents").put(PDF)
    assert emails.fetch_pdf(settings_for(tmp_path, url), "doc-1", SHA) == PDF
    assert asked == []


def test_without_the_store_the_pdf_is_fetched_from_documents(tmp_path, documents_service):
    url, asked, _ = documents_service
    assert emails.fetch_pdf(settings_for(tmp_path, url), "doc-1", SHA) == PDF
    assert asked == ["/api/v1/documents/doc-1/content"]


def test_a_damaged_file_in_the_store_is_not_sent_the_pdf_comes_from_documents(tmp_path, documents_service):
    url, asked, _ = documents_service
    path = DocumentStore(tmp_path / "documents").put(PDF).path
    path.write_bytes(b"%PDF-1.4 truncated")
    assert emails.fetch_pdf(settings_for(tmp_path, url), "doc-1", SHA) == PDF
    assert len(asked) == 1


def test_bytes_from_documents_that_do_not_match_the_announced_sha256_fail_the_attempt(tmp_path, documents_service):
    url, _, body = documents_service
    body["data"] = b"%PDF-1.4 another document"
    with pytest.raises(mailer.DeliveryFailed, match="sha256"):
        emails.fetch_pdf(settings_for(tmp_path, url), "doc-1", SHA)
