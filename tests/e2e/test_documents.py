"""Contract PDFs end to end through the gateway, in both modes: 202 then 200, text, fonts, access, filenames."""
from __future__ import annotations

import hashlib
import re
import subprocess
import threading
from decimal import Decimal
from urllib.parse import quote

import pytest

from support.infra import wait_for
from support.pdf import pdf_text

MARKUP = '<img src="file:///etc/passwd"/>'


class RenderingPaused:
    """Hold the documents worker so a PDF is certainly still "being rendered", then let it go."""

    def __init__(self, system):
        self.system = system

    def __enter__(self):
        if hasattr(self.system, "procs"):
            self.system.kill("documents-worker-1")  # the event waits in RabbitMQ meanwhile
        else:
            from services import embedded
            self.worker = next(p for p in embedded._running if p.spec.name == "documents").worker
            self.gate = threading.Event()
            handle = self.worker.handle

            def held(raw, properties):
                self.gate.wait(30)
                return handle(raw, properties)

            self.worker.handle = held  # consulted per message, before any database transaction starts
        return self

    def __exit__(self, *exc):
        if hasattr(self.system, "procs"):
            self.system.restart_worker("documents")
        else:
            del self.worker.handle
            self.gate.set()


def compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def pdf_fonts(pdf: bytes, tmp_path) -> list[tuple[str, str]]:
    """(font name, emb) for every font, read by the columns of pdffonts' ruler (types contain spaces)."""
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    lines = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True,
                           timeout=30).stdout.splitlines()
    ruler = next(i for i, line in enumerate(lines) if line.startswith("---"))
    spans = [m.span() for m in re.finditer(r"-+", lines[ruler])]
    name, emb = spans[0], spans[3]
    return [(line[name[0]:name[1]].strip(), line[emb[0]:emb[1]].strip()) for line in lines[ruler + 1:] if line]


def wait_pdf(api, path):
    return wait_for(lambda: (r := api.get(path)).status_code == 200 and r, timeout=60, message=f"{path} rendered")


def money(value: str) -> str:
    return f"{Decimal(value):,.2f}"


def run_documents(system, tmp_path):
    api = system.api
    company = {"name": "上海精工制造有限公司", "address": "上海市浦东新区张江路 88 号", "phone": "021-5555 6666",
               "tax_id": "91310115MA1K000000", "bank_account": "中国工商银行上海张江支行 1001 2345 6789",
               "language": "zh-CN", "terms": "质量异议须在收货后七日内书面提出。", "footer": "上海精工 · 诚信经营"}
    assert api.put("/api/v1/settings", json={"company": company}).status_code == 200
    api.product("BOLT-M8", stock=500, price="12.50", name="不锈钢六角螺栓 M8", unit="件")
    api.product("BRG-6204", stock=50, price="45.80", name="深沟球轴承 6204", unit="套")
    alice = api.user("alice", "sales", email="alice@example.cn")
    bob = api.user("bob", "sales")
    customer = alice.customer(name="杭州明远机械有限公司", contact_person="王建国", address="杭州市西湖区文三路 100 号")
    contract = alice.contract(customer["id"], [("BOLT-M8", 100), ("BRG-6204", 10)], payment_terms="货到 30 天付清")
    path = f"/api/v1/contracts/{contract['id']}/pdf"

    draft = alice.get(path)
    assert draft.status_code == 409 and "confirm" in draft.json["error"]["message"], draft

    with RenderingPaused(system):
        assert alice.post(f"/api/v1/contracts/{contract['id']}/confirm").status_code == 200
        pending = alice.get(path)
        assert pending.status_code == 202, pending
        assert pending.headers["Retry-After"] == "1"
        assert pending.json["status"] == "rendering"
    response = wait_pdf(alice, path)

    # What the customer receives: the PDF with a sensible name, Chinese spelled per RFC 6266 / 5987.
    number = contract["number"]
    assert response.headers["Content-Type"] == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition == (f"attachment; filename=\"Contract-{number}.pdf\"; "
                           f"filename*=UTF-8''{quote(f'销售合同-{number}.pdf')}")
    pdf = response.content
    assert pdf.startswith(b"%PDF-")

    text = compact(pdf_text(pdf))
    for expected in (number, "杭州明远机械有限公司", "不锈钢六角螺栓M8", "深沟球轴承6204", money(contract["total"]),
                     contract["total_in_words"], "上海精工制造有限公司", "销售合同", "第1页/共"):
        assert compact(expected) in text, expected
    assert contract["total"] == "1930.04" and contract["total_in_words"].startswith("人民币壹仟玖佰叁拾元")
    fonts = pdf_fonts(pdf, tmp_path)
    assert fonts and all(emb == "yes" for _, emb in fonts), fonts

    # The gateway learned about it: document id on the contract, document.rendered on the timeline.
    rendered = wait_for(lambda: (c := alice.get(f"/api/v1/contracts/{contract['id']}").json)["document_id"] and c,
                        message="document_id on the contract")
    types = wait_for(lambda: "document.rendered" in (t := [e["type"] for e in alice.get(
        f"/api/v1/contracts/{contract['id']}/timeline").json["items"]]) and t, message="timeline entry")
    assert "contract.confirmed" in types
    meta = api.get(f"/api/v1/documents/{rendered['document_id']}")
    assert meta.status_code == 200, meta
    assert meta.json["sha256"] == hashlib.sha256(pdf).hexdigest() == response.headers["X-Content-SHA256"]
    assert meta.json["size"] == len(pdf) and meta.json["kind"] == "contract" and meta.json["owner_id"] == contract["id"]
    assert meta.json["filename"] == f"销售合同-{number}.pdf"

    # Asking again serves the same stored bytes; others' contracts and other roles stay out.
    assert alice.get(path).content == pdf
    assert api.get(path).content == pdf  # the admin sees every contract
    assert bob.get(path).status_code == 404
    assert bob.get(f"/api/v1/documents/{rendered['document_id']}").status_code == 403
    assert alice.get("/api/v1/contracts/no-such-contract/pdf").status_code == 404
    assert api.as_token(None).get(path).status_code == 401

    # Markup typed into a customer's name is printed as text, never interpreted (no image, no file read).
    tricky = alice.customer(name=MARKUP, language="en", email="x@example.com")
    other = alice.contract(tricky["id"], [("BOLT-M8", 1)], confirm=True)
    english = wait_pdf(alice, f"/api/v1/contracts/{other['id']}/pdf")
    assert english.headers["Content-Disposition"].startswith(f"attachment; filename=\"Contract-{other['number']}.pdf\"")
    english_text = pdf_text(english.content)
    assert compact(MARKUP) in compact(english_text)
    assert "Sales Contract" in english_text and "root:" not in english_text
    assert b"/Subtype /Image" not in english.content and b"/Subtype/Image" not in english.content

    # A contract cancelled as a draft never gets a PDF.
    dropped = alice.contract(customer["id"], [("BOLT-M8", 1)])
    assert alice.post(f"/api/v1/contracts/{dropped['id']}/cancel").status_code == 200
    assert alice.get(f"/api/v1/contracts/{dropped['id']}/pdf").status_code == 409


def test_contract_pdf_embedded(embedded, tmp_path):
    run_documents(embedded, tmp_path)


@pytest.mark.e2e
def test_contract_pdf_on_rabbitmq_and_postgresql(cluster, tmp_path):
    run_documents(cluster, tmp_path)


def test_pdf_routes_win_over_the_proxy(embedded):
    """/quotes/{id}/pdf is the gateway's own route even though /quotes/* is forwarded to the quotes service."""
    urls = embedded.app.url_map.bind("localhost")
    assert urls.match("/api/v1/quotes/q-1/pdf", method="GET")[0] == "pdfs.quote_pdf"
    assert urls.match("/api/v1/quotes/q-1", method="GET")[0] == "proxy.forward_quotes"
    assert urls.match("/api/v1/delivery-notes/d-1/pdf", method="GET")[0] == "pdfs.delivery_note_pdf"
    missing = embedded.api.get("/api/v1/quotes/no-such-quote/pdf")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    assert embedded.api.get("/api/v1/delivery-notes/no-such-note/pdf").status_code == 404


def run_other_documents(system, tmp_path):
    """The other documents: a sent quote, a delivery note and a receivables plan, each printed on its event."""
    from datetime import date, timedelta
    api = system.api
    api.product("VALVE-DN50", stock=20, price="480.00", name="闸阀 DN50", unit="只")
    alice = api.user("alice", "sales", email="alice@example.cn")
    bob = api.user("bob", "sales")
    customer = alice.customer(name="宁波港机设备有限公司")

    sent = alice.post("/api/v1/quotes", json={
        "customer_id": customer["id"], "valid_until": (date.today() + timedelta(days=30)).isoformat(),
        "lines": [{"product_code": "VALVE-DN50", "quantity": "5"}]})
    assert sent.status_code == 201, sent
    quote_path = f"/api/v1/quotes/{sent.json['id']}/pdf"
    assert alice.get(quote_path).status_code == 409  # a draft quote has not been printed
    assert alice.post(f"/api/v1/quotes/{sent.json['id']}/send").status_code == 200
    printed = wait_pdf(alice, quote_path)
    assert printed.headers["Content-Disposition"].endswith(quote(f"报价单-{sent.json['number']}.pdf"))
    quote_text = compact(pdf_text(printed.content))
    assert sent.json["number"] in quote_text and "闸阀DN50" in quote_text and "报价单" in quote_text
    assert bob.get(quote_path).status_code == 404

    contract = alice.contract(customer["id"], [("VALVE-DN50", 4)], confirm=True)
    wait_for(lambda: alice.get(f"/api/v1/contracts/{contract['id']}").json["stock_status"] == "reserved",
             message="stock reserved (a delivery note takes what is held)")
    note = alice.post(f"/api/v1/contracts/{contract['id']}/delivery-notes", json={"address": "宁波市北仑区"})
    assert note.status_code == 201, note
    note_path = f"/api/v1/delivery-notes/{note.json['id']}/pdf"
    note_pdf = wait_pdf(alice, note_path)
    note_text = compact(pdf_text(note_pdf.content))
    assert note.json["number"] in note_text and contract["number"] in note_text and "发货单" in note_text
    assert bob.get(note_path).status_code == 404

    plan = alice.post(f"/api/v1/contracts/{contract['id']}/receivables-plan", json={"installments": [
        {"label": "预付款", "percent": "30", "due_days_after": {"event": "signing", "days": 0}},
        {"label": "尾款", "percent": "70", "due_days_after": {"event": "delivery", "days": 30}}]})
    assert plan.status_code in (200, 201), plan
    latest = wait_for(lambda: (r := api.get("/api/v1/documents/latest", params={
        "kind": "receivables_plan", "owner_id": contract["id"]})).status_code == 200 and r.json,
        message="plan rendered")
    assert latest["filename"] == f"应收款计划-{contract['number']}.pdf"
    plan_pdf = api.get(f"/api/v1/documents/{latest['id']}/content")
    assert plan_pdf.status_code == 200 and plan_pdf.headers["Content-Type"] == "application/pdf", plan_pdf
    assert hashlib.sha256(plan_pdf.content).hexdigest() == latest["sha256"]
    plan_text = compact(pdf_text(plan_pdf.content))
    first = (Decimal(contract["total"]) * Decimal("0.30")).quantize(Decimal("0.01"))
    for expected in ("应收款计划", contract["number"], "宁波港机设备有限公司", "预付款", "尾款", money(first),
                     money(Decimal(contract["total"]) - first), money(contract["total"])):
        assert compact(expected) in plan_text, expected


def test_quote_delivery_note_and_plan_pdfs_embedded(embedded, tmp_path):
    run_other_documents(embedded, tmp_path)


@pytest.mark.e2e
def test_quote_delivery_note_and_plan_pdfs_on_rabbitmq_and_postgresql(cluster, tmp_path):
    run_other_documents(cluster, tmp_path)
