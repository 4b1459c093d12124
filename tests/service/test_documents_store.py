"""The documents service on a real database and file system: content addressing, rows, events, HTTP."""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import func, select

from crmkit.messaging.envelope import Envelope
from crmkit.models import OutboxMessage
from crmkit.settings import Settings
from crmkit.web.auth import Caller, issue_token, system_token
from services.documents import library, render as renderer, rules
from services.documents.app import build_app
from services.documents.handlers import HANDLERS, make_context
from services.documents.models import TABLES, Document, DocumentFailure
from crmkit.document_store import DocumentStore

PDF = b"%PDF-1.4\n" + b"x" * 1000 + b"\n%%EOF\n"


def contract_event(**overrides) -> dict:
    data = {
        "contract_id": "c-1", "number": "HT-2026-000001", "language": "zh-CN",
        "customer": {"name": "杭州明远机械有限公司", "address": "杭州市西湖区", "contact_person": "王经理",
                     "email": "buyer@example.cn", "phone": "0571-1234", "language": "zh-CN"},
        "company": {"name": "上海精工制造有限公司", "address": "上海市浦东新区", "phone": "021-5555",
                    "tax_id": "91310000", "bank_account": "工商银行 6222", "language": "zh-CN", "terms": "",
                    "footer": ""},
        "owner_id": "u-1", "owner": {"id": "u-1", "username": "alice", "email": "alice@example.cn"},
        "lines": [{"line_no": 1, "product_code": "BOLT-M8", "name": "六角螺栓 M8", "unit": "件", "quantity": "4",
                   "unit_price": "12.50", "discount": "0", "tax_rate": "0.13", "amount": "50.00",
                   "tax_amount": "6.50"}],
        "subtotal": "50.00", "tax_total": "6.50", "total": "56.50", "currency": "CNY",
        "total_in_words": "人民币伍拾陆元伍角整", "delivery_date": "2026-03-01", "payment_terms": "货到付款",
        "send_to_customer": True, "created_at": "2026-01-05T08:00:00Z", "confirmed_at": "2026-01-05T09:00:00Z",
    }
    data.update(overrides)
    return data


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env("documents", {"CRM_VAR_DIR": str(tmp_path / "var"), "CRM_SECRET_KEY": "test-secret"})


@pytest.fixture
def db(make_db):
    return make_db(TABLES)


@pytest.fixture
def store(settings) -> DocumentStore:
    return DocumentStore(settings.documents_dir)


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def events(db, type_: str) -> list[dict]:
    with db.session() as session:
        rows = session.execute(select(OutboxMessage).where(OutboxMessage.routing_key == type_)
                               .order_by(OutboxMessage.seq)).scalars().all()
        return [json.loads(r.body)["data"] for r in rows]


def handle(db, settings, type_: str, data: dict) -> None:
    """Run a handler as the consumer does: one transaction, with the service's context."""
    envelope = Envelope(type=type_, source="test", data=data, correlation_id=data.get("contract_id"))
    with db.session() as session:
        HANDLERS[type_](envelope, session, make_context(settings, db))


# --- the worker's start ---------------------------------------------------------------------------------------

def test_the_worker_registers_its_font_when_it_starts_and_names_it(db, settings, caplog):
    caplog.set_level("INFO", logger="services.documents.handlers")
    make_context(settings, db)
    assert f"rendering with the font {renderer.font_path()}" in caplog.text


def test_a_missing_font_is_logged_at_start_and_the_worker_still_starts(db, settings, caplog, monkeypatch):
    def no_font():
        raise renderer.FontUnavailable("no usable CJK TrueType font (/nope.ttf: not found)")
    monkeypatch.setattr(renderer, "warm_up", no_font)
    ctx = make_context(settings, db)
    assert ctx.store is not None
    assert any(r.levelname == "ERROR" and "/nope.ttf: not found" in r.getMessage() for r in caplog.records)


# --- the store -------------------------------------------------------------------------------------------------

def test_bytes_are_stored_under_their_sha256(store, settings):
    stored = store.put(PDF)
    sha = hashlib.sha256(PDF).hexdigest()
    assert stored.sha256 == sha and stored.size == len(PDF) and stored.written
    assert stored.path == settings.documents_dir / sha[:2] / f"{sha}.pdf"
    assert stored.path.read_bytes() == PDF
    assert store.read(sha) == PDF


def test_the_same_bytes_reuse_the_same_file(store):
    first = store.put(PDF)
    inode, mtime = first.path.stat().st_ino, first.path.stat().st_mtime_ns
    second = store.put(bytes(PDF))
    assert second.path == first.path and not second.written
    assert (second.path.stat().st_ino, second.path.stat().st_mtime_ns) == (inode, mtime)
    other = store.put(PDF + b"%another\n")
    assert other.path != first.path
    assert len(files(store.root)) == 2


def test_a_failed_write_leaves_neither_a_partial_file_nor_a_temporary_one(store, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        store.put(PDF)
    assert files(store.root) == []


def test_a_damaged_copy_is_rewritten_not_reused(store):
    path = store.path_of(hashlib.sha256(PDF).hexdigest())
    path.parent.mkdir(parents=True)
    path.write_bytes(PDF[:100])  # e.g. a copy damaged outside the service
    stored = store.put(PDF)
    assert stored.written and path.read_bytes() == PDF
    path.write_bytes(PDF[:-1] + b"?")  # same size, different bytes
    assert store.put(PDF).written and path.read_bytes() == PDF


def test_concurrent_writers_of_the_same_content_end_with_one_whole_file(store):
    data = os.urandom(200_000)
    barrier = threading.Barrier(8)
    results = []

    def write():
        barrier.wait()
        results.append(store.put(data))

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.path for r in results}) == 1
    assert files(store.root) == [results[0].path]
    assert results[0].path.read_bytes() == data


@pytest.mark.parametrize("name", ["../../etc/passwd", "ab", "A" * 64, "g" * 64, ""])
def test_only_a_sha256_becomes_a_path(store, name):
    with pytest.raises(ValueError):
        store.path_of(name)


# --- rows and events -------------------------------------------------------------------------------------------

def test_a_rerender_of_the_same_content_reuses_the_row_and_the_file(db, settings, store):
    handle(db, settings, "contract.confirmed", contract_event())
    handle(db, settings, "contract.confirmed", contract_event())  # e.g. a second confirmation event
    with db.session() as session:
        rows = session.execute(select(Document)).scalars().all()
    assert len(rows) == 1 and rows[0].version == 1
    assert len(files(store.root)) == 1
    rendered = events(db, "document.rendered")
    assert [e["document_id"] for e in rendered] == [rows[0].id] * 2
    assert [e["reused"] for e in rendered] == [False, True]
    assert store.read(rows[0].sha256).startswith(b"%PDF")
    assert rows[0].size == len(store.read(rows[0].sha256))


def test_document_rendered_carries_what_the_mailer_needs(db, settings):
    handle(db, settings, "contract.confirmed", contract_event())
    [data] = events(db, "document.rendered")
    with db.session() as session:
        document = session.execute(select(Document)).scalar_one()
    assert data["document_id"] == document.id
    assert data["kind"] == "contract" and data["owner_id"] == "c-1" and data["contract_id"] == "c-1"
    assert data["number"] == "HT-2026-000001"
    assert data["sha256"] == document.sha256 and data["size"] == document.size
    assert data["filename"] == "销售合同-HT-2026-000001.pdf"
    assert data["customer"] == {"name": "杭州明远机械有限公司", "email": "buyer@example.cn", "language": "zh-CN"}
    assert data["send_to_customer"] is True
    assert data["owner"] == {"id": "u-1", "username": "alice", "email": "alice@example.cn"}
    assert data["language"] == "zh-CN"
    assert "quote_id" not in data


def test_changed_content_is_a_new_version_and_latest_follows_the_last_render(db, settings):
    handle(db, settings, "contract.confirmed", contract_event())
    handle(db, settings, "contract.confirmed", contract_event(payment_terms="预付 30%"))
    with db.session() as session:
        newest = library.latest(session, "contract", "c-1")
        assert newest.version == 2
    handle(db, settings, "contract.confirmed", contract_event())  # the first content again: its row is reused
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(Document)).scalar_one() == 2
        assert library.latest(session, "contract", "c-1").version == 1


def test_english_customers_get_english_file_names(db, settings):
    handle(db, settings, "contract.confirmed", contract_event(
        language="en", customer={**contract_event()["customer"], "language": "en", "name": "Acme Ltd"}))
    assert events(db, "document.rendered")[0]["filename"] == "Contract-HT-2026-000001.pdf"


def test_a_renderer_error_is_announced_once_and_not_retried(db, settings, monkeypatch):
    def broken(kind, doc):
        raise RuntimeError("no glyph for ☃")

    monkeypatch.setattr(renderer, "render", broken)
    handle(db, settings, "contract.confirmed", contract_event())  # finishes normally: the message is acked
    [failed] = events(db, "document.failed")
    assert failed["kind"] == "contract" and failed["owner_id"] == "c-1" and failed["contract_id"] == "c-1"
    assert "no glyph" in failed["error"]
    with db.session() as session:
        with pytest.raises(Exception) as info:
            library.latest(session, "contract", "c-1")
        assert info.value.status == 409
    monkeypatch.undo()
    handle(db, settings, "contract.confirmed", contract_event())
    with db.session() as session:
        assert session.get(DocumentFailure, ("contract", "c-1")) is None
        assert library.latest(session, "contract", "c-1").version == 1


def test_a_quote_without_company_renders_without_a_header_when_settings_are_unreachable(db, settings):
    quote = {"quote_id": "q-1", "number": "BJ-2026-000007", "customer": contract_event()["customer"],
             "language": "zh-CN", "company": None, "owner": {"id": "u-1", "username": "alice", "email": None},
             "lines": contract_event()["lines"], "subtotal": "50.00", "tax_total": "6.50", "total": "56.50",
             "currency": "CNY", "valid_until": "2026-02-01"}
    handle(db, settings, "quote.sent", quote)  # no gateway in this test: the fetch fails, the quote still prints
    [data] = events(db, "document.rendered")
    assert data["kind"] == "quote" and data["quote_id"] == "q-1" and data["owner_id"] == "q-1"
    assert data["filename"] == "报价单-BJ-2026-000007.pdf"
    assert "contract_id" not in data


def test_delivery_notes_plans_and_requests_are_rendered(db, settings):
    base = contract_event()
    handle(db, settings, "delivery.created", {
        "delivery_note_id": "d-1", "number": "FH-2026-000001", "contract_id": "c-1",
        "contract_number": "HT-2026-000001", "customer": base["customer"], "company": base["company"],
        "address": "杭州市", "ship_date": "2026-02-01", "lines": base["lines"], "language": "zh-CN"})
    handle(db, settings, "receivables.planned", {
        "contract_id": "c-1", "contract_number": "HT-2026-000001", "customer": base["customer"],
        "company": base["company"], "currency": "CNY", "total": "56.50", "language": "zh-CN",
        "installments": [{"seq": 1, "label": "预付款", "amount": "56.50", "due_date": "2026-02-01",
                          "status": "open"}]})
    handle(db, settings, "document.requested", {
        "kind": "contract", "owner_id": "c-2", "doc": contract_event(contract_id="c-2", number="HT-2026-000002"),
        "context": {"send_to_customer": False}})
    rendered = events(db, "document.rendered")
    assert [(e["kind"], e["owner_id"], e.get("contract_id")) for e in rendered] == [
        ("delivery_note", "d-1", "c-1"), ("receivables_plan", "c-1", "c-1"), ("contract", "c-2", "c-2")]
    assert rendered[0]["filename"] == "发货单-FH-2026-000001.pdf"
    assert rendered[1]["filename"] == "应收款计划-HT-2026-000001.pdf"
    assert rendered[2]["send_to_customer"] is False


def test_an_unusable_request_says_so(db, settings):
    handle(db, settings, "document.requested", {"kind": "contract", "owner_id": "c-9", "doc": "not a dict"})
    [failed] = events(db, "document.failed")
    assert failed["owner_id"] == "c-9" and "invalid document request" in failed["error"]


# --- HTTP ------------------------------------------------------------------------------------------------------

@pytest.fixture
def client(db, settings):
    return build_app(settings, db).test_client()


def auth(settings, role: str) -> dict:
    token = system_token(settings) if role == "system" else issue_token(
        settings.secret_key, Caller(id=f"{role}-1", username=role, role=role))
    return {"Authorization": f"Bearer {token}"}


def test_http_serves_metadata_latest_and_bytes_to_the_system_and_managers(db, settings, client, store):
    handle(db, settings, "contract.confirmed", contract_event())
    latest = client.get("/api/v1/documents/latest?kind=contract&owner_id=c-1", headers=auth(settings, "system"))
    assert latest.status_code == 200, latest.get_data()
    meta = latest.get_json()
    assert meta["filename"] == "销售合同-HT-2026-000001.pdf" and meta["version"] == 1
    assert client.get(f"/api/v1/documents/{meta['id']}", headers=auth(settings, "manager")).get_json() == meta
    content = client.get(f"/api/v1/documents/{meta['id']}/content", headers=auth(settings, "system"))
    assert content.status_code == 200 and content.mimetype == "application/pdf"
    assert hashlib.sha256(content.get_data()).hexdigest() == meta["sha256"]
    disposition = content.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="Contract-HT-2026-000001.pdf"; ')
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == "销售合同-HT-2026-000001.pdf"
    assert content.headers["ETag"] == f'"{meta["sha256"]}"'
    listed = client.get("/api/v1/documents?owner_id=c-1", headers=auth(settings, "admin")).get_json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == meta["id"]


def test_http_refuses_sales_and_answers_json_errors(client, settings):
    assert client.get("/api/v1/documents/x", headers=auth(settings, "sales")).status_code == 403
    assert client.get("/api/v1/documents/x/content", headers=auth(settings, "department")).status_code == 403
    assert client.get("/api/v1/documents/x").status_code == 401
    system = auth(settings, "system")
    assert client.get("/api/v1/documents/nope", headers=system).status_code == 404
    assert client.get("/api/v1/documents/latest?kind=contract&owner_id=c-1", headers=system).status_code == 404
    bad = client.get("/api/v1/documents/latest?kind=invoice", headers=system)
    assert bad.status_code == 422 and set(bad.get_json()["error"]["fields"]) == {"kind", "owner_id"}
    assert client.get("/api/v1/documents?limit=500", headers=system).status_code == 422


def test_filenames_never_carry_paths_or_quotes():
    assert rules.filename("contract", '../"x"\r\n', "en") == "Contract-x.pdf"
    assert rules.filename("quote", None, "zh-CN") == "报价单-document.pdf"
    header = rules.content_disposition("销售合同-HT-1.pdf", "contract", "HT-1")
    assert header.isascii() and "\n" not in header
