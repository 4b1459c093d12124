"""services/documents/render.py: the PDFs themselves, read back with poppler's pdftotext/pdffonts/pdfinfo."""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from services.documents import render as r

ROOT = Path(__file__).resolve().parents[2]
POPPLER = ("pdftotext", "pdffonts", "pdfinfo")

CUSTOMER = "北京星辰智能制造股份有限公司"
PRODUCTS = ["工业级不锈钢离心泵", "高压液压油缸组件", "智能温控变频器", "精密滚珠丝杠", "数控机床主轴轴承"]
WORDS = "人民币壹仟贰佰叁拾肆元伍角整"


@pytest.fixture(scope="module", autouse=True)
def poppler():
    missing = [tool for tool in POPPLER if shutil.which(tool) is None]
    if missing:  # fail, never skip: these tests are the only check that the PDFs are right
        pytest.fail(f"poppler-utils missing ({', '.join(missing)}): apt-get install poppler-utils", pytrace=False)


def _run(tool: str, pdf: bytes, tmp_path: Path, *options: str, stdout: bool = False) -> str:
    path = tmp_path / f"doc-{hashlib.sha256(pdf).hexdigest()[:12]}.pdf"
    path.write_bytes(pdf)
    done = subprocess.run([tool, *options, str(path), *(["-"] if stdout else [])], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, f"{tool} failed: {done.stderr}"
    return done.stdout


def pdftotext(pdf: bytes, tmp_path: Path, page: int | None = None) -> str:
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return _run("pdftotext", pdf, tmp_path, "-enc", "UTF-8", *pages, stdout=True)


def pdffonts(pdf: bytes, tmp_path: Path) -> list[list[str]]:
    out = _run("pdffonts", pdf, tmp_path).splitlines()
    assert out[0].split()[:3] == ["name", "type", "encoding"] and out[1].startswith("---"), out
    return [line.split() for line in out[2:] if line.strip()]


def page_count(pdf: bytes, tmp_path: Path) -> int:
    match = re.search(r"^Pages:\s+(\d+)", _run("pdfinfo", pdf, tmp_path), re.M)
    assert match
    return int(match.group(1))


def company(**extra) -> dict:
    return {"name": "上海示例机电设备有限公司", "address": "上海市浦东新区张江高科技园区碧波路 690 号",
            "phone": "021-5080 1234", "tax_id": "91310115MA1K3XXXX", "bank_account": "招商银行张江支行 1219 0888 8888",
            "terms": "1. 质量标准：按国家标准执行。\n2. 争议解决：提交甲方所在地人民法院诉讼解决。",
            "footer": "上海示例机电设备有限公司 · 服务热线 400-800-1234", **extra}


def customer(**extra) -> dict:
    return {"name": CUSTOMER, "address": "北京市海淀区中关村大街 1 号", "contact_person": "王经理",
            "email": "wang@example.com", "phone": "010-8888 6666", **extra}


def line(i: int) -> dict:
    return {"product_code": f"P-{i:04d}", "name": PRODUCTS[i % len(PRODUCTS)], "unit": "台", "quantity": "2",
            "unit_price": "617.25", "discount": "0", "tax_rate": "0.13", "amount": "1234.50", "tax_amount": "160.49"}


def contract(n_lines: int = 5, language: str = "zh-CN", **extra) -> dict:
    return {
        "number": "HT-2026-000001", "language": language, "company": company(), "customer": customer(),
        "created_at": "2026-11-26T10:00:00Z", "confirmed_at": "2026-11-27T02:30:00Z", "delivery_date": "2026-12-20",
        "payment_terms": "合同签订后预付 30%，验收合格后付 70%。", "currency": "CNY",
        "lines": [line(i) for i in range(n_lines)],
        "subtotal": "1234.50", "tax_total": "160.49", "total": "1234.50", "total_in_words": WORDS,
        "installments": [{"seq": 1, "label": "预付款", "amount": "370.35", "due_date": "2026-12-01"},
                         {"seq": 2, "label": "尾款", "amount": "864.15", "due_date": "2027-01-20"}],
        "notes": "请于交货前三日电话通知收货人。", **extra,
    }


def quote(**extra) -> dict:
    doc = contract(number="BJ-2026-000007", valid_until="2026-12-31", **extra)
    doc.pop("confirmed_at")
    return doc


def delivery_note(**extra) -> dict:
    return {"number": "DN-2026-000001", "contract_number": "HT-2026-000001", "language": "zh-CN",
            "company": company(), "customer": customer(), "address": "北京市海淀区中关村大街 1 号 B 座 收货处",
            "ship_date": "2026-12-18",
            "lines": [{"product_code": f"P-{i:04d}", "name": PRODUCTS[i], "unit": "台", "quantity": "2"}
                      for i in range(3)], **extra}


def receivables_plan(**extra) -> dict:
    return {"contract_number": "HT-2026-000001", "language": "zh-CN", "company": company(), "customer": customer(),
            "total": "1234.50", "currency": "CNY",
            "installments": [{"seq": 1, "label": "预付款", "amount": "370.35", "due_date": "2026-12-01", "status": "paid"},
                             {"seq": 2, "label": "尾款", "amount": "864.15", "due_date": "2027-01-20",
                              "status": "open"}], **extra}


@pytest.fixture(scope="module")
def zh_pdf() -> bytes:
    return r.render_contract(contract())


# --- content -----------------------------------------------------------------------------------------------------

def test_chinese_contract_text_reads_back(zh_pdf, tmp_path):
    text = pdftotext(zh_pdf, tmp_path)
    assert zh_pdf.startswith(b"%PDF-")
    for expected in ("销售合同", "HT-2026-000001", CUSTOMER, "上海示例机电设备有限公司", *PRODUCTS,
                     "1,234.50", WORDS, "甲方（卖方）", "乙方（买方）", "付款计划", "预付款", "2027-01-20",
                     "合同签订后预付 30%", "争议解决", "请于交货前三日", "服务热线 400-800-1234", "13%"):
        assert expected in text, expected


def test_every_font_is_embedded_and_subset(zh_pdf, tmp_path):
    fonts = pdffonts(zh_pdf, tmp_path)
    assert fonts, "no fonts at all"
    for row in fonts:
        emb, sub, uni = row[-5:-2]
        assert (emb, sub, uni) == ("yes", "yes", "yes"), row
        assert re.fullmatch(r"[A-Z]{6}\+\S+", row[0]), row  # the subset tag pdffonts reads "sub yes" from


def test_english_contract(tmp_path):
    pdf = r.render_contract(contract(language="en"))
    text = pdftotext(pdf, tmp_path)
    for expected in ("Sales Contract", "Page 1 of", "Contract No.", "Seller", "Buyer", "Unit price",
                     "Amount in words", "Payment schedule", CUSTOMER, PRODUCTS[0]):
        assert expected in text, expected
    assert "销售合同" not in text and "第 1 页" not in text


def test_chinese_page_label(zh_pdf, tmp_path):
    text = pdftotext(zh_pdf, tmp_path)
    assert "第 1 页 / 共" in text
    assert re.search(rf"第 1 页 / 共 {page_count(zh_pdf, tmp_path)} 页", text)


def test_long_contract_breaks_across_pages_with_the_header_on_each(tmp_path):
    pdf = r.render_contract(contract(n_lines=120))
    pages = page_count(pdf, tmp_path)
    assert pages >= 3
    codes_seen = []
    pages_with_lines = 0
    for page in range(1, pages + 1):
        text = pdftotext(pdf, tmp_path, page)
        assert f"第 {page} 页 / 共 {pages} 页" in text
        codes = re.findall(r"P-\d{4}", text)
        if codes:
            pages_with_lines += 1
            assert "单价" in text and "税率" in text and "品名" in text, f"no table header on page {page}"
        codes_seen += codes
        if page > 1:
            assert "HT-2026-000001" in text  # running header
    assert pages_with_lines >= 3
    assert codes_seen == [f"P-{i:04d}" for i in range(120)]  # every line once, in order


def test_each_kind_renders(tmp_path):
    cases = {
        "contract": (contract(), ["销售合同", "HT-2026-000001"]),
        "quote": (quote(), ["报价单", "BJ-2026-000007", "有效期至", "2026-12-31"]),
        "delivery_note": (delivery_note(), ["发货单", "DN-2026-000001", "收货地址", "B 座 收货处", "2026-12-18",
                                            PRODUCTS[2], "收货人"]),
        "receivables_plan": (receivables_plan(), ["应收款计划", "HT-2026-000001", "已收", "待收", "864.15",
                                                  "1,234.50"]),
    }
    assert set(cases) == set(r.KINDS)
    for kind, (doc, expected) in cases.items():
        pdf = r.render(kind, doc)
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF"), kind
        direct = getattr(r, f"render_{kind}")(doc)
        assert direct == pdf, kind
        text = pdftotext(pdf, tmp_path)
        for item in expected:
            assert item in text, (kind, item)
        for row in pdffonts(pdf, tmp_path):
            assert row[-5:-3] == ["yes", "yes"], (kind, row)


def test_english_kinds(tmp_path):
    for kind, doc, title in (("quote", quote(language="en"), "Quotation"),
                             ("delivery_note", delivery_note(language="en"), "Delivery Note"),
                             ("receivables_plan", receivables_plan(language="en"), "Receivables Plan")):
        text = pdftotext(r.render(kind, doc), tmp_path)
        assert title in text and "Page 1 of" in text, kind
        if kind == "receivables_plan":
            assert "Paid" in text and "Open" in text and "open" not in text  # SPEC's status, in words


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown document kind"):
        r.render("invoice", contract())
    with pytest.raises(TypeError):
        r.render_contract(["not", "a", "dict"])


def test_missing_optional_keys_render_a_dash(tmp_path):
    for kind in r.KINDS:
        pdf = r.render(kind, {"number": "X-1", "contract_number": "X-1", "language": "zh-CN"})
        text = pdftotext(pdf, tmp_path)
        assert "X-1" in text and "—" in text, kind
    # nulls, wrong types and junk numbers are tolerated too
    doc = contract(delivery_date=None, customer=None, installments=None, notes=None, currency=None,
                   lines=[{"name": None, "quantity": "abc", "unit_price": None}, "not a line"])
    text = pdftotext(r.render_contract(doc), tmp_path)
    assert "abc" in text and "HT-2026-000001" in text


def test_long_values_do_not_break_the_layout(tmp_path):
    doc = contract(n_lines=3, notes="备注很长。" * 4000)
    doc["customer"]["name"] = "超长客户名称" * 800
    doc["lines"][0]["name"] = "很长的产品名称" * 60
    doc["lines"][1]["product_code"] = "X" * 300
    pdf = r.render_contract(doc)
    assert page_count(pdf, tmp_path) > 5
    assert "超长客户名称" in pdftotext(pdf, tmp_path)


# --- security ----------------------------------------------------------------------------------------------------

def test_markup_in_user_text_prints_literally(tmp_path):
    img = '<img src="file:///etc/passwd"/>'
    link = '<a href="http://x">click</a>'
    doc = contract(notes=f'{link} <font size="40" color="red">big</font> &amp; &#60;b&#62;',
                   payment_terms='<para><b>bold</b></para>', total_in_words=f"{WORDS}{img}")
    doc["customer"]["name"] = f"{CUSTOMER}{img}"
    doc["customer"]["address"] = link
    doc["company"]["terms"] = f"<br/>{img}<unknown>"
    doc["company"]["footer"] = img
    doc["company"]["name"] = '<font name="Helvetica">ACME</font>'
    doc["lines"][0]["name"] = '<b>bold</b> 产品'
    pdf = r.render_contract(doc)
    text = pdftotext(pdf, tmp_path)
    assert "<img" in text
    assert 'file:///etc/passwd"/>' in text
    assert '<a href="http://x">click</a>' in text
    assert '<font size="40" color="red">big</font> &amp; &#60;b&#62;' in text
    assert "<para><b>bold</b></para>" in text
    assert '<font name="Helvetica">ACME</font>' in text
    assert "<b>bold</b> 产品" in text
    assert "<unknown>" in text
    # nothing was loaded or linked: no image XObject, no link annotation, no second font, no passwd content
    assert b"/XObject" not in pdf and b"/Subtype /Image" not in pdf
    assert b"/URI" not in pdf and b"/Annot" not in pdf and b"/Link" not in pdf
    assert len({row[0].split("+", 1)[1] for row in pdffonts(pdf, tmp_path)}) == 1
    assert "root:" not in text


# --- determinism, purity, concurrency ----------------------------------------------------------------------------

_CHILD = """
import hashlib, json, sys
before = set(sys.modules)
from services.documents import render as r
from reportlab.lib import colors
from reportlab.pdfbase import pdfmetrics
report = {"flask": any(m == "flask" or m.startswith("flask.") for m in sys.modules),
          "sqlalchemy": any(m == "sqlalchemy" or m.startswith("sqlalchemy.") for m in sys.modules),
          "registered_at_import": r.FONT_NAME in pdfmetrics.getRegisteredFontNames(),
          "colour_names_at_import": len(colors._namedColors or {})}
docs = json.load(sys.stdin)
try:
    report["sha"] = [hashlib.sha256(r.render(kind, doc)).hexdigest() for kind, doc in docs]
except Exception as exc:
    report["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(report))
"""


def _child(docs, **env) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(docs), capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **env}, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_same_input_gives_the_same_bytes():
    docs = [("contract", contract(n_lines=30)), ("quote", quote()), ("delivery_note", delivery_note()),
            ("receivables_plan", receivables_plan())]
    here = [hashlib.sha256(r.render(kind, copy.deepcopy(doc))).hexdigest() for kind, doc in docs]
    assert here == [hashlib.sha256(r.render(kind, doc)).hexdigest() for kind, doc in docs]
    for seed in ("1", "2"):  # other processes, other hash seeds
        child = _child(docs, PYTHONHASHSEED=seed)
        assert child.get("sha") == here, child
    other = contract(n_lines=30)
    other["lines"][7]["quantity"] = "3"
    assert hashlib.sha256(r.render_contract(other)).hexdigest() != here[0]


def test_module_is_pure_and_registers_the_font_lazily():
    child = _child([])
    names = child.pop("colour_names_at_import")
    assert child == {"flask": False, "sqlalchemy": False, "registered_at_import": False, "sha": []}
    # ReportLab's colour-name table, which it fills lazily and not thread-safely, is complete before any render
    # thread can ask for "black" while another is filling it.
    assert names > 100


def test_font_override(tmp_path):
    child = _child([("contract", contract())], CRM_PDF_FONT=str(tmp_path / "nope.ttf"))
    assert child["error"].startswith("FontUnavailable") and "nope.ttf" in child["error"]
    font = r.warm_up()
    assert font == r.font_path() and os.path.isfile(font)
    expected = hashlib.sha256(r.render_quote(quote())).hexdigest()
    assert _child([("quote", quote())], CRM_PDF_FONT=font)["sha"] == [expected]


def test_concurrent_renders_match_sequential_ones():
    docs = []
    for i in range(6):
        doc = contract(n_lines=10 + 7 * i)
        doc["customer"]["name"] = f"客户{'甲乙丙丁戊己'[i]}{'春夏秋冬'[i % 4]}贸易有限公司"
        doc["lines"][0]["name"] = "鑫淼焱垚犇骉"[i] * 3 + "特种配件"
        docs.append(doc)
    expected = [r.render_contract(doc) for doc in docs]
    results: dict[int, bytes] = {}
    errors = []

    def work(i):
        try:
            for _ in range(2):
                results[i] = r.render_contract(docs[i])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(docs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [results[i] for i in range(len(docs))] == expected


# --- value formatting ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("1234.5", "1,234.50"), ("1234.50", "1,234.50"), ("0", "0.00"), ("12.345", "12.345"), (1000, "1,000.00"),
    ("-5", "-5.00"), (None, "—"), ("", "—"), ("n/a", "n/a"), ("NaN", "NaN"),
])
def test_money(value, expected):
    assert r._money(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("10.000", "10"), ("2.500", "2.5"), ("12000", "12,000"), ("0.125", "0.125"), (None, "—"),
])
def test_quantity(value, expected):
    assert r._qty(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("0.13", "13%"), ("0.125", "12.5%"), ("0", "0%"), ("0.0500", "5%"), ("1", "100%"), ("13", "13%"), (None, "—"),
])
def test_percent(value, expected):
    assert r._percent(value) == expected


@pytest.mark.parametrize("value, zh, en", [
    ("0.05", "9.5折", "5%"), ("0.1", "9折", "10%"), ("0.125", "8.75折", "12.5%"), ("0.5", "5折", "50%"),
    ("0", "—", "0%"), ("1", "免费", "100%"), (None, "—", "—"),
])
def test_discount_reads_as_the_reader_counts_it(value, zh, en):
    assert (r._discount(value, "zh"), r._discount(value, "en")) == (zh, en)


def test_a_chinese_contract_prints_a_discount_as_zhe_not_as_a_percent_read_as_zhe(tmp_path):
    """Under 折扣, "5%" reads to many Chinese buyers as 5折, half price; 9.5折 cannot be misread."""
    discounted = [dict(line(0), discount="0.05", amount="1172.78"), line(1)]
    zh = pdftotext(r.render_contract(contract(lines=discounted)), tmp_path)
    assert "9.5折" in zh and "5%" not in zh
    en = pdftotext(r.render_contract(contract(lines=discounted, language="en")), tmp_path)
    assert "5%" in en and "折" not in en


def test_a_recurring_contract_prints_its_period_and_others_print_none(tmp_path):
    period = {"from": "2031-01-31", "until": "2031-02-27", "source_number": "HT-2026-000042"}
    zh = re.sub(r"\s+", "", pdftotext(r.render_contract(contract(period=period)), tmp_path))
    assert "本期：2031-01-31至2031-02-27，续订合同HT-2026-000042" in zh
    en = pdftotext(r.render_contract(contract(period={**period, "until": None}, language="en")), tmp_path)
    assert "from 2031-01-31, renewing contract HT-2026-000042" in en
    assert "本期" not in pdftotext(r.render_contract(contract()), tmp_path)


def test_wrap_keeps_latin_words_and_hangs_punctuation():
    r._ensure_font()
    wrapped = r._wrap("Stainless steel centrifugal pump 不锈钢离心泵，工业级", 60)
    lines = wrapped.split("\n")
    assert len(lines) > 1
    assert all(r._sw(line, r.TABLE_SIZE) <= 60 + r._sw("，", r.TABLE_SIZE) for line in lines)
    assert "Stainless" in lines[0] and not any(line.startswith("，") for line in lines)
    assert "".join(wrapped.split()) == "".join("Stainless steel centrifugal pump 不锈钢离心泵，工业级".split())


def test_rare_characters_print_and_what_no_font_has_shows_as_missing(tmp_path):
    """A buyer named 刘䶮 (CJK Extension A, which the main font lacks) was printed as 刘: a party's legal name cut
    short without a sign. Extension A comes from the fallback font; Extension B, which no font here has, prints
    as 〓 so the reader sees that a character is missing."""
    name = "刘䶮 㐀记商行"
    doc = contract(customer=dict(customer(), name=name), lines=[
        dict(line(0), name="生僻字：㐀龘䶮 𠀀 堃喆犇淼")])
    pdf = r.render_contract(doc)
    text = pdftotext(pdf, tmp_path)
    assert text.count(name) >= 2, text  # the buyer's box and the signature block
    assert "生僻字：㐀龘䶮 〓 堃喆犇淼" in text.replace("\n", "")
    assert r.render_contract(doc) == pdf  # still deterministic
    fonts = pdffonts(pdf, tmp_path)
    assert len(fonts) == 2 and all(row[-5:-2] == ["yes", "yes", "yes"] for row in fonts), fonts
    # Running headers and footers (canvas text) use the fallback too: they name the seller on every page.
    seller = "㐀记五金有限公司"
    footer = f"{seller} · 服务热线 400-800-1234"
    page_2 = pdftotext(r.render_contract(contract(n_lines=60, company=dict(company(), name=seller, footer=footer))),
                       tmp_path, page=2)
    assert page_2.startswith(seller) and footer in page_2, page_2


def test_large_numbers_are_never_cut_inside_a_digit_group(tmp_path):
    """12,345.678 printed as 12,345.67 over 8 reads as another quantity. Number columns now widen at the
    product name's expense; only numbers too long for any room left break, and then after a comma."""
    big = dict(line(0), quantity="12345.678", unit_price="6790.05", amount="83827479.23", tax_amount="10897572.30",
               discount="0", tax_rate="0.13")
    text = pdftotext(r.render_contract(contract(lines=[big])), tmp_path)
    for value in ("12,345.678", "6,790.05", "83,827,479.23", "10,897,572.30"):
        assert value in text, value
    huge = dict(line(1), quantity="1000000000", unit_price="999999999999.99", amount="999999999999999.99",
                tax_amount="129999999999999.99", discount="0.05", tax_rate="0.13")
    text = pdftotext(r.render_contract(contract(lines=[big, huge])), tmp_path)
    for value in ("12,345.678", "83,827,479.23", "1,000,000,000", "999,999,999,999.99"):
        assert value in text, value
    # A number without commas that does not fit still breaks (anywhere) rather than run into the next column.
    assert r._wrap("123456789012345.5", 30).count("\n") >= 1
    # Whatever still has to break does so after a comma: each piece is whole digit groups.
    pieces = re.findall(r"[\d,.]+", text)
    assert "129,999,999,999,999.99" in text or {"129,999,999,", "999,999.99"} <= set(pieces) or \
        {"129,999,999,999,", "999.99"} <= set(pieces), pieces


def test_dates_printed_are_the_companys_not_utcs(tmp_path):
    """Confirmed at 07:37 in Beijing (23:37 UTC the day before): the signed contract carries the day it was
    confirmed. Plain dates print as given."""
    text = pdftotext(r.render_contract(contract(created_at="2026-11-27T23:30:00Z", confirmed_at="2026-11-27T23:37:00Z",
                                                delivery_date="2026-12-20")), tmp_path)
    assert "2026-11-28" in text and "2026-11-27" not in text and "2026-12-20" in text
