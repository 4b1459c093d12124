"""Print-ready A4 PDFs of sales documents: contract, quotation, delivery note, receivables plan.

Pure: a JSON-like dict in (money as decimal strings), PDF bytes out. No Flask, no database.

* One embedded, subset TrueType CJK font, found at run time (``CRM_PDF_FONT`` overrides the search) and
  registered lazily, once per process, under a lock. Nothing is registered at import time. Characters it
  lacks (rare ones in names: CJK Extension A) come from a fallback font, embedded only when used; what no
  font here has prints as 〓, never as a silent gap.
* Every user-typed string reaches a ``Paragraph`` only through ``_markup`` (``xml.sax.saxutils.escape``), so
  ``<img src=...>``, ``<a href=...>`` or ``<font>`` print as inert text. Table cells and canvas text are plain
  strings, which ReportLab never parses as markup.
* Deterministic: the same dict gives byte-identical PDFs (``invariant=1``: fixed creation date and file id),
  so a document can be addressed by the sha256 of its bytes.
* Speed (about 120 M instructions for a 2-page, 40-line contract): table cells are plain strings wrapped by
  ``_wrap`` rather than Paragraphs, drawn by ``_Grid`` into one text object per table part; cell styles are
  shared; the font's glyf table is sliced once; ASCII85 is off; streams are deflated at level 1. What is
  left is mostly ReportLab's own pure-Python TrueType subsetting and zlib.
"""
from __future__ import annotations

import functools
import os
import re
import threading
import zlib
from datetime import datetime
from decimal import Decimal, InvalidOperation
from io import BytesIO
from xml.sax.saxutils import escape

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import CondPageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import HRFlowable
from reportlab.platypus.tables import CellStyle

from crmkit.timeutil import business_date

__all__ = ["KINDS", "FontUnavailable", "font_path", "render", "render_contract", "render_delivery_note",
           "render_quote", "render_receivables_plan", "warm_up"]

KINDS = ("contract", "quote", "delivery_note", "receivables_plan")

# ReportLab fills its table of colour names on first use, and a thread that looks while another is filling it
# finds it half full: "Invalid color value 'black'" for the first two contracts of a new documents worker that
# got them at once. Filled here, on import, where one thread runs.
colors.getAllNamedColors()

FONT_ENV = "CRM_PDF_FONT"
FONT_NAME = "CRM-CJK"
# WenQuanYi Micro Hei first: it carries Latin letters and digits as well as CJK. Droid Sans Fallback Full has
# no ASCII glyphs at all (it is a fallback font), so it only qualifies if a future build of it gains them.
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)

DASH = "—"
# Characters the main font lacks are drawn from this one when it has them: Droid Sans Fallback carries nearly
# all of CJK Extension A (WenQuanYi Micro Hei 2 of 6,592), so a buyer named 刘䶮 is printed whole.
FALLBACK_NAME = "CRM-CJK-FALLBACK"
FALLBACK_CANDIDATES = ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",)
# What a character no font here can draw (CJK Extension B and beyond) prints as: the geta mark, which CJK
# typesetting uses for a missing glyph, so the reader sees a character is missing rather than a silent gap.
MISSING_GLYPH = "〓"

# --- geometry --------------------------------------------------------------------------------------------------

PAGE_W, PAGE_H = A4
MARGIN_X = 18 * mm
MARGIN_TOP = 20 * mm
MARGIN_BOTTOM = 22 * mm
FRAME_PAD = 6  # SimpleDocTemplate's frame pads each side by 6 pt
CONTENT_W = PAGE_W - 2 * MARGIN_X - 2 * FRAME_PAD
CELL_PAD = 3
TABLE_SIZE = 8.0
TABLE_LEADING = 10.0
MAX_CELL_LINES = 30  # a table row cannot break across pages; keep every row well under a page
MAX_FIELD_CHARS = 2000
HEADING_KEEP = 30 * mm  # a heading starts a new page unless this much room is left under it

# --- labels ----------------------------------------------------------------------------------------------------

LABELS = {
    "zh": {
        "title.contract": "销售合同", "title.quote": "报价单", "title.delivery_note": "发货单",
        "title.receivables_plan": "应收款计划",
        "number.contract": "合同编号", "number.quote": "报价单号", "number.delivery_note": "发货单号",
        "contract_number": "合同编号", "created_at": "制单日期", "confirmed_at": "确认日期",
        "period": "本期", "period_text": "{start} 至 {until}，续订合同 {source}", "period_open": "{start} 起，续订合同 {source}",
        "delivery_date": "交货日期", "valid_until": "有效期至", "ship_date": "发货日期", "currency": "币种",
        "seller": "甲方（卖方）", "buyer": "乙方（买方）", "shipper": "发货方", "consignee": "收货方",
        "name": "名称", "address": "地址", "phone": "电话", "tax_id": "税号", "bank_account": "开户行及账号",
        "contact_person": "联系人", "email": "邮箱", "delivery_address": "收货地址",
        "col.no": "序号", "col.code": "编码", "col.name": "品名", "col.unit": "单位", "col.quantity": "数量",
        "col.unit_price": "单价", "col.discount": "折扣", "col.amount": "金额", "col.tax_rate": "税率",
        "col.tax": "税额",
        "col.seq": "期次", "col.label": "款项", "col.due_date": "到期日", "col.status": "状态",
        "subtotal": "小计", "tax_total": "税额", "total": "合计", "total_in_words": "金额大写",
        "schedule": "付款计划", "delivery_terms": "交货及付款条款", "payment_terms": "付款方式",
        "terms": "条款与条件", "notes": "备注",
        "signature": "授权代表（签字）：", "seal": "盖章：", "date": "日期：      年    月    日",
        "shipped_by": "发货人（签字）：", "received_by": "收货人（签字）：",
        "page": "第 {page} 页 / 共 {total} 页",
        "status.open": "待收", "status.pending": "待收", "status.due": "待收", "status.paid": "已收", "status.overdue": "逾期",
        "status.partially_paid": "部分收款", "status.partial": "部分收款", "status.cancelled": "已取消",
        "status.written_off": "已核销",
        "colon": "：",
    },
    "en": {
        "title.contract": "Sales Contract", "title.quote": "Quotation", "title.delivery_note": "Delivery Note",
        "title.receivables_plan": "Receivables Plan",
        "number.contract": "Contract No.", "number.quote": "Quotation No.", "number.delivery_note": "Delivery Note No.",
        "contract_number": "Contract No.", "created_at": "Date", "confirmed_at": "Confirmed",
        "period": "Period", "period_text": "{start} to {until}, renewing contract {source}",
        "period_open": "from {start}, renewing contract {source}",
        "delivery_date": "Delivery date", "valid_until": "Valid until", "ship_date": "Ship date",
        "currency": "Currency",
        "seller": "Seller", "buyer": "Buyer", "shipper": "Shipper", "consignee": "Consignee",
        "name": "Name", "address": "Address", "phone": "Phone", "tax_id": "Tax ID", "bank_account": "Bank account",
        "contact_person": "Contact", "email": "Email", "delivery_address": "Delivery address",
        "col.no": "No.", "col.code": "Code", "col.name": "Description", "col.unit": "Unit", "col.quantity": "Qty",
        "col.unit_price": "Unit price", "col.discount": "Discount", "col.amount": "Amount",
        "col.tax_rate": "Tax rate", "col.tax": "Tax",
        "col.seq": "No.", "col.label": "Instalment", "col.due_date": "Due date", "col.status": "Status",
        "subtotal": "Subtotal", "tax_total": "Tax", "total": "Total", "total_in_words": "Amount in words",
        "schedule": "Payment schedule", "delivery_terms": "Delivery and payment terms",
        "payment_terms": "Payment terms", "terms": "Terms and conditions", "notes": "Notes",
        "signature": "Authorized signature:", "seal": "Seal:", "date": "Date:",
        "shipped_by": "Shipped by (signature):", "received_by": "Received by (signature):",
        "page": "Page {page} of {total}",
        "status.open": "Open", "status.pending": "Pending", "status.due": "Due", "status.paid": "Paid", "status.overdue": "Overdue",
        "status.partially_paid": "Partially paid", "status.partial": "Partially paid",
        "status.cancelled": "Cancelled", "status.written_off": "Written off",
        "colon": ": ",
    },
}

# Glyphs the chosen font must have: printable ASCII plus every character of the Chinese labels.
_REQUIRED_CHARS = frozenset(map(ord, "".join(chr(c) for c in range(0x21, 0x7F)) + DASH + "…" + "".join(
    LABELS["zh"].values()))) - {ord(" ")}


# --- font ------------------------------------------------------------------------------------------------------

class FontUnavailable(RuntimeError):
    """No usable CJK TrueType font was found (or CRM_PDF_FONT points at an unusable one)."""


_font_lock = threading.Lock()
_font: TTFont | None = None
_font_file: str | None = None
_styles: dict[str, ParagraphStyle] | None = None
_fallback: TTFont | None = None
_main_cmap: dict = {}
_fallback_cmap: dict = {}


def font_path() -> str:
    """The font file in use (registering it on first call)."""
    _ensure_font()
    return _font_file


def warm_up() -> str:
    """Pay the one-time costs now (say, when a worker starts) instead of in the first request: register the
    font (about 0.2 s) and run one small render. Returns the font file in use."""
    render_delivery_note({"number": "-", "language": "zh-CN", "lines": [{"name": "预热 warm-up"}]})
    return _font_file


def _ensure_font() -> TTFont:
    font = _font
    if font is not None:
        return font
    with _font_lock:
        if _font is None:
            _load_font()
        return _font


def _load_font() -> None:
    """Find, check and register the font, then build the styles. Called once, under _font_lock."""
    global _font, _font_file, _styles
    override = os.environ.get(FONT_ENV, "").strip()
    candidates = (override,) if override else FONT_CANDIDATES
    problems = []
    for path in candidates:
        if not os.path.isfile(path):
            problems.append(f"{path}: not found")
            continue
        try:
            # subfontIndex only matters for a .ttc collection (0 = WenQuanYi Micro Hei); a .ttf ignores it.
            # asciiReadable=False: subsets hold only the characters a document uses (fewer glyphs to embed).
            font = TTFont(FONT_NAME, path, subfontIndex=0, asciiReadable=False)
        except Exception as exc:  # a damaged file, a CFF-based .otf ReportLab cannot embed, ...
            problems.append(f"{path}: {exc}")
            continue
        missing = sorted(_REQUIRED_CHARS - font.face.charToGlyph.keys())
        if missing:
            sample = "".join(chr(c) for c in missing[:12])
            problems.append(f"{path}: lacks {len(missing)} required glyphs such as {sample!r}")
            continue
        _serialize_subsetting(font)
        pdfmetrics.registerFont(font)
        _load_fallback(path, font)
        # ASCII85 on top of Flate only served 7-bit channels; pure-Python A85 costs milliseconds per page and
        # makes streams 25% larger. Process-wide, and harmless to any other ReportLab output in the process.
        rl_config.useA85 = 0
        _fast_flate()
        _styles = _make_styles()
        _font_file = path
        _font = font  # last: other threads read _font without the lock
        return
    raise FontUnavailable("no usable CJK TrueType font (" + "; ".join(problems) + "). Install fonts-wqy-microhei "
                          f"or point {FONT_ENV} at a TrueType font with CJK and Latin glyphs.")


def _load_fallback(main_path: str, main: TTFont) -> None:
    """The second font, for characters the first lacks; optional (without it they print as MISSING_GLYPH)."""
    global _fallback, _main_cmap, _fallback_cmap
    _main_cmap = main.face.charToGlyph
    for path in FALLBACK_CANDIDATES:
        if path == main_path or not os.path.isfile(path):
            continue
        try:
            fallback = TTFont(FALLBACK_NAME, path, asciiReadable=False)
        except Exception:
            continue
        _serialize_subsetting(fallback)
        pdfmetrics.registerFont(fallback)
        _fallback, _fallback_cmap = fallback, fallback.face.charToGlyph
        return


def _drawable(text: str) -> str:
    """The text with every character no font here has replaced by MISSING_GLYPH."""
    if text.isascii():
        return text
    return "".join(ch if (c := ord(ch)) in _main_cmap or c in _fallback_cmap or ch in "\n " else MISSING_GLYPH
                   for ch in text)


def _runs(text: str) -> list[tuple[TTFont, str]]:
    """The text as (font, part) runs: the main font wherever it has the glyph, the fallback elsewhere."""
    if text.isascii() or not _fallback_cmap or all(ord(ch) in _main_cmap for ch in text):
        return [(_font, text)]
    runs: list[tuple[TTFont, str]] = []
    for ch in text:
        font = _font if ord(ch) in _main_cmap or ord(ch) not in _fallback_cmap else _fallback
        if runs and runs[-1][0] is font:
            runs[-1] = (font, runs[-1][1] + ch)
        else:
            runs.append((font, ch))
    return runs


def _fast_flate() -> None:
    """Every stream (pages and the font subset) deflated at level 1 instead of zlib's default 6.

    zlib was a fifth of a contract's render; level 1 takes about 1.1 ms off a 12 ms render for a file 6 %
    larger (34.3 → 36.2 KB). ReportLab offers no level setting: its one shared Flate filter object is
    given a level-1 encode, process-wide like ``useA85``. Output stays deterministic.
    """
    pdfdoc.PDFZCompress.encode = lambda data: zlib.compress(data.encode("utf8") if isinstance(data, str) else data, 1)


def _serialize_subsetting(font: TTFont) -> None:
    """ReportLab's subsetter reads the shared font file through a cursor on the face: one thread at a time.

    It also slices the whole glyf table (3.5 MB for WenQuanYi) out of the file for every subset; keep that
    slice instead (bytes are immutable, so sharing it is safe).
    """
    face = font.face
    make_subset = face.makeSubset
    get_table = face.get_table
    glyf = get_table("glyf")
    face.get_table = lambda tag: glyf if tag == "glyf" else get_table(tag)
    lock = threading.Lock()

    def locked_make_subset(subset):
        with lock:
            return make_subset(subset)

    face.makeSubset = locked_make_subset


def _make_styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("crm-base", fontName=FONT_NAME, fontSize=9, leading=12.5, wordWrap="CJK")

    def style(name, **kw):
        return ParagraphStyle(f"crm-{name}", parent=base, **kw)

    return {
        "body": base,
        "company": style("company", fontSize=15, leading=19, spaceAfter=2),
        "company_detail": style("company_detail", fontSize=8, leading=11, textColor=colors.HexColor("#444444")),
        "title": style("title", fontSize=18, leading=24, alignment=TA_CENTER, spaceBefore=8, spaceAfter=8),
        "heading": style("heading", fontSize=10.5, leading=14, spaceBefore=10, spaceAfter=4),
        "words": style("words", fontSize=9.5, leading=13, spaceBefore=4),
        "para": style("para", alignment=TA_LEFT, spaceAfter=2),
    }


@functools.lru_cache(maxsize=8192)
def _sw(text: str, size: float) -> float:
    """Width of text in the document font; cached, as cell values repeat (units, rates, prices, labels)."""
    return sum(font.stringWidth(part, size) for font, part in _runs(text))


# --- values ----------------------------------------------------------------------------------------------------

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _text(value) -> str:
    """A display string: None or blank becomes a dash; control characters go; line ends become \\n."""
    if value is None:
        return DASH
    text = value if isinstance(value, str) else str(value)
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")).strip()
    return _drawable(text) or DASH


def _clip(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _markup(value, limit: int = MAX_FIELD_CHARS) -> str:
    """User text made safe for a Paragraph: escaped, so any markup in it prints literally."""
    text = _clip(_text(value), limit)
    return "".join(escape(part) if font is _font else f'<font name="{FALLBACK_NAME}">{escape(part)}</font>'
                   for font, part in _runs(text)).replace("\n", "<br/>")


def _decimal(value) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _money(value) -> str:
    """1234.5 -> 1,234.50 (at least two places, more if given)."""
    number = _decimal(value)
    if number is None:
        return _text(value)
    places = min(max(2, -number.as_tuple().exponent), 6)
    return f"{number:,.{places}f}"


def _qty(value) -> str:
    """10.000 -> 10, 2.500 -> 2.5, 12000 -> 12,000."""
    number = _decimal(value)
    if number is None:
        return _text(value)
    number = number.quantize(Decimal(1)) if number == number.to_integral_value() else number.normalize()
    return f"{number:,f}"


def _percent(value) -> str:
    """A rate as a fraction (0.13, as the API sends it) -> 13%; a number above 1 is taken as percent already."""
    number = _decimal(value)
    if number is None:
        return _text(value)
    if abs(number) <= 1:
        number *= 100
    number = number.quantize(Decimal(1)) if number == number.to_integral_value() else number.normalize()
    return f"{number:f}%"


def _discount(value, lang: str) -> str:
    """A discount as the reader counts it. In Chinese as 折, the tenths paid (0.05 off -> 9.5折): "5%" under 折扣
    reads to many as 5折, half price. No discount is a dash there, since 0折 would read as free."""
    number = _decimal(value)
    if lang != "zh" or number is None or not 0 <= number <= 1:
        return _percent(value)
    if number == 0:
        return DASH
    if number == 1:
        return "免费"
    paid = ((1 - number) * 10).normalize()
    return f"{paid:f}折"


def _date(value) -> str:
    """The calendar date of an ISO date, or the company's date of a timestamp (sent in UTC: a contract confirmed
    at 07:30 in Shanghai, 23:30 UTC the day before, is dated the day it was confirmed)."""
    text = _text(value)
    match = _DATE.match(text)
    if match and len(text) > 10 and text[10] in "T ":
        try:
            return business_date(datetime.fromisoformat(text.replace("Z", "+00:00"))).isoformat()
        except ValueError:
            pass
    return match.group(0) if match else text


def _address(value) -> str:
    if isinstance(value, dict):
        parts = [_text(v) for v in value.values() if v not in (None, "")]
        return " ".join(p for p in parts if p != DASH) or DASH
    return _text(value)


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return [item if isinstance(item, dict) else {} for item in value] if isinstance(value, (list, tuple)) else []


# --- plain-text wrapping for table cells -----------------------------------------------------------------------

# A "word" is a run of characters that are neither spaces nor CJK (so Latin words stay whole); every CJK
# character is a break opportunity of its own.
_NUMBER = re.compile(r"-?[\d,]+(\.\d+)?%?")
_TOKEN = re.compile(r"[^\s\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]+\s*|\s+|.", re.S)
_NO_LINE_START = frozenset("，。、；：！？）」』】》〉”’,.;:!?)%")


def _wrap(text: str, width: float, size: float = TABLE_SIZE, max_lines: int = MAX_CELL_LINES) -> str:
    """Break a plain string into lines no wider than width (CJK anywhere, Latin at spaces), joined by \\n."""
    lines: list[str] = []
    for para in text.split("\n"):
        if _sw(para, size) <= width:
            lines.append(para)
            continue
        cur, cur_w = "", 0.0
        for tok in _TOKEN.findall(para):
            tok_w = _sw(tok, size)
            if cur_w + _sw(tok.rstrip(), size) <= width:
                cur, cur_w = cur + tok, cur_w + tok_w
                continue
            if not cur.strip() and tok.isspace():
                continue
            if tok in _NO_LINE_START and cur:  # hang closing punctuation rather than start a line with it
                cur, cur_w = cur + tok, cur_w + tok_w
                continue
            if cur.strip():
                lines.append(cur.rstrip())
            cur, cur_w = "", 0.0
            if tok.isspace():
                continue
            if _sw(tok.rstrip(), size) <= width:
                cur, cur_w = tok, tok_w
                continue
            pieces = [p for p in re.split(r"(?<=,)", tok.rstrip()) if p] if _NUMBER.fullmatch(tok.rstrip()) else []
            if pieces and all(_sw(p, size) <= width for p in pieces):  # a number too wide: break after commas
                for piece in pieces:
                    if cur and cur_w + _sw(piece, size) > width:
                        lines.append(cur)
                        cur, cur_w = "", 0.0
                    cur, cur_w = cur + piece, cur_w + _sw(piece, size)
                continue
            for ch in tok:  # a word wider than the cell: break it anywhere
                ch_w = _sw(ch, size)
                if cur and cur_w + ch_w > width:
                    lines.append(cur)
                    cur, cur_w = "", 0.0
                cur, cur_w = cur + ch, cur_w + ch_w
        if cur.strip() or not lines:
            lines.append(cur.rstrip())
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:-1] + "…"
    return "\n".join(lines)


class _Grid(Table):
    """A Table that draws its plain-string cells and its rules with less overhead; it looks the same.

    ReportLab's Table draws every string cell as a text object of its own (BT, font, Tm, Tj, ET) and formats
    every coordinate through the pure-Python fp_str: for a 40-line contract that was two thirds of the
    rendering time. Here the cells of one drawn part are queued (positions computed exactly as
    Table._drawCell does) and written into a single text object, and rule segments are written directly.
    Splitting, repeated header rows, spans, backgrounds and line styles remain Table's own. It touches
    PDFTextObject._code/_formatText and Canvas._code: reportlab is pinned (5.1.0) and the tests cover it.
    """

    def draw(self):
        canv = self.canv
        self._queued = []
        emit = canv._code.append

        def line(x1, y1, x2, y2):  # Canvas.line, without fp_str
            emit("n %.2f %.2f m %.2f %.2f l S" % (x1, y1, x2, y2))

        canv.line = line
        try:
            super().draw()
        finally:
            del canv.line
        queued, self._queued = self._queued, None
        if not queued:
            return
        canv.saveState()
        text = canv.beginText()
        code = text._code
        # Encoded runs per (font, string), kept for the whole document: a font's subset codes never change
        # within one document, and cell values repeat (units, rates, prices, the header on every page).
        runs = canv.__dict__.setdefault("_crm_runs", {})
        doc = canv._doc
        cur_font = cur_color = cur_subset = None
        for font, size, color, x, y, line_text in queued:
            if (font, size) != cur_font:
                text.setFont(font, size)
                cur_font, cur_subset = (font, size), None
            if color != cur_color:
                text.setFillColor(color)
                cur_color = color
            code.append("1 0 0 1 %.2f %.2f Tm" % (x, y))
            if font != FONT_NAME:
                code.append(text._formatText(line_text))
                continue
            encoded = runs.get(line_text)
            if encoded is None:
                encoded = runs[line_text] = [
                    (run_font.getSubsetInternalName(subset, doc), f"({canv._escape(chunk)}) Tj")
                    for run_font, part in _runs(line_text) for subset, chunk in run_font.splitString(part, doc)]
            for subset, op in encoded:
                if subset != cur_subset:
                    code.append(f"{subset} {size:g} Tf")
                    cur_subset = subset
                code.append(op)
        canv.drawText(text)
        canv.restoreState()

    def _drawCell(self, cellval, cellstyle, pos, size):
        if (not isinstance(cellval, str) or self._queued is None or cellstyle.href or cellstyle.destination
                or cellstyle.direction or cellstyle.shaping):
            return super()._drawCell(cellval, cellstyle, pos, size)
        if not cellval:
            return
        colpos, rowpos = pos
        colwidth, rowheight = size
        lines = cellval.split("\n")
        leading, fontsize, valign = cellstyle.leading, cellstyle.fontsize, cellstyle.valign
        if valign == "TOP":
            y = rowpos + rowheight - cellstyle.topPadding - fontsize
        elif valign == "MIDDLE":
            y = rowpos + (cellstyle.bottomPadding + rowheight - cellstyle.topPadding + len(lines) * leading) / 2.0 \
                - fontsize
        else:
            y = rowpos + cellstyle.bottomPadding + len(lines) * leading - fontsize
        just, font, color = cellstyle.alignment, cellstyle.fontname, cellstyle.color
        queue = self._queued.append
        for line in lines:
            if line:
                if just == "LEFT":
                    x = colpos + cellstyle.leftPadding
                else:
                    width = _sw(line, fontsize) if font == FONT_NAME else pdfmetrics.stringWidth(line, font, fontsize)
                    if just == "RIGHT":
                        x = colpos + colwidth - cellstyle.rightPadding - width
                    else:
                        x = colpos + (colwidth + cellstyle.leftPadding - cellstyle.rightPadding - width) / 2.0
                queue((font, fontsize, color, x, y, line))
            y -= leading


def _cells(row, widths) -> list[str]:
    return [_wrap(value, width - 2 * CELL_PAD) for value, width in zip(row, widths)]


# Table ops that do not touch cell styles; any other op in `extra` makes _table give each cell its own style.
_NON_CELL_OPS = frozenset({"GRID", "BOX", "OUTLINE", "INNERGRID", "LINEABOVE", "LINEBELOW", "LINEBEFORE",
                           "LINEAFTER", "BACKGROUND", "ROWBACKGROUNDS", "COLBACKGROUNDS", "SPAN"})
_ALIGNS = {"L": "LEFT", "R": "RIGHT", "C": "CENTER"}
_cell_styles: dict[tuple[str, str], CellStyle] = {}


def _cell_style(alignment: str) -> CellStyle:
    """A shared cell style: font, padding, middle vertical alignment and the given horizontal one."""
    style = _cell_styles.get(alignment)
    if style is None:
        style = CellStyle(f"crm-{alignment}")
        style.fontname, style.fontsize, style.leading = FONT_NAME, TABLE_SIZE, TABLE_LEADING
        style.leftPadding = style.rightPadding = CELL_PAD
        style.topPadding, style.bottomPadding = 2, 3
        style.alignment, style.valign = alignment, "MIDDLE"
        style = _cell_styles.setdefault(alignment, style)
    return style


def _table(rows, fractions, align: str | None = None, *, header=True, extra=(), repeat=True, h_align="LEFT"):
    """A grid of plain-string cells; column widths as fractions of the content width, align one letter (L, R, C)
    per column for the body (header cells are centred).

    Cell styles are handed to Table ready-made (shared, never mutated) instead of through per-cell TableStyle
    commands, which Table applies cell by cell: a quarter of a long table's layout time.
    """
    widths = [f * CONTENT_W for f in fractions]
    data = [_cells(row, widths) for row in rows]
    body = [_cell_style(_ALIGNS[a]) for a in (align or "L" * len(widths))]
    styles = [body] * len(data)
    cmds = [("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#888888"))]
    if header:
        styles[0] = [_cell_style("CENTER")] * len(widths)
        cmds.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E8E8E8")))
    cmds += list(extra)
    cell_cmds = [cmd for cmd in cmds if cmd[0] not in _NON_CELL_OPS]
    if cell_cmds:
        styles = _styled_cells(styles, cell_cmds)
        cmds = [cmd for cmd in cmds if cmd[0] in _NON_CELL_OPS]
    return _Grid(data, colWidths=widths, style=TableStyle(cmds), cellStyles=styles,
                 repeatRows=1 if (header and repeat) else 0, hAlign=h_align)


_styled_grids: dict[str, list[list[CellStyle]]] = {}


def _styled_cells(styles: list[list[CellStyle]], cell_cmds: list) -> list[list[CellStyle]]:
    """The cell styles with commands such as FONTSIZE or VALIGN applied, worked out once per table shape.

    Table applies a cell command by changing the cell's style in place, so each table needed its own copy of
    every cell's style: 44 copies, 0.8 ms of a contract's render. The styled grid depends only on the shared
    base styles and the commands, so it is built once (by a throwaway Table) and shared, like the base styles;
    the tables that use it get only the commands that leave cell styles alone.
    """
    key = repr((cell_cmds, [[id(style) for style in row] for row in styles]))
    grid = _styled_grids.get(key)
    if grid is None:
        grid = [[CellStyle(style.name, style) for style in row] for row in styles]
        Table([[""] * len(styles[0])] * len(styles), cellStyles=grid, style=TableStyle(cell_cmds))
        if len(_styled_grids) < 256:  # a handful of table shapes in practice; never a leak
            _styled_grids[key] = grid  # a race builds the same grid twice; either copy is right
    return grid


# --- page decoration: footer, running header, "page x of y" ----------------------------------------------------

class _NumberedCanvas(Canvas):
    """Defers every page until save(), when the page count is known (the ReportLab "NumberedCanvas" recipe)."""

    def __init__(self, *args, decorate=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._decorate = decorate
        self._page_states: list[dict] = []

    def showPage(self):
        self._page_states.append(dict(self.__dict__))
        self._startPage()

    def save(self):
        total = len(self._page_states)
        for number, state in enumerate(self._page_states, 1):
            self.__dict__.update(state)
            if self._decorate is not None:
                self._decorate(self, number, total)
            Canvas.showPage(self)
        Canvas.save(self)


class _Decoration:
    def __init__(self, labels: dict, footer: str, running_left: str, running_right: str):
        width = PAGE_W - 2 * MARGIN_X
        self.page_label = labels["page"]
        # The spaces of "第 1 页 / 共 2 页" are narrow beside CJK glyphs; text extraction (pdftotext, copy and
        # paste) drops them unless they are a little wider.
        self.page_word_space = 2 if any(ord(ch) > 0x2E80 for ch in self.page_label) else 0
        footer_lines = [] if footer == DASH else _wrap(footer, width, 7.5, max_lines=2).split("\n")
        self.footer_lines = footer_lines
        self.running_left = _wrap(running_left, width * 0.6, 7.5, max_lines=1)
        self.running_right = _wrap(running_right, width * 0.38, 7.5, max_lines=1)

    def __call__(self, canv: Canvas, page: int, total: int) -> None:
        canv.saveState()
        canv.setFillColor(colors.HexColor("#555555"))
        canv.setStrokeColor(colors.HexColor("#AAAAAA"))
        canv.setLineWidth(0.5)
        canv.setFont(FONT_NAME, 7.5)
        if page > 1:
            y = PAGE_H - 12 * mm
            _draw(canv, MARGIN_X, y, self.running_left, 7.5)
            _draw(canv, PAGE_W - MARGIN_X, y, self.running_right, 7.5, "right")
            canv.line(MARGIN_X, y - 2.5, PAGE_W - MARGIN_X, y - 2.5)
        y = 15 * mm
        if self.footer_lines:
            canv.line(MARGIN_X, y + 9.5, PAGE_W - MARGIN_X, y + 9.5)
        for line in self.footer_lines:
            _draw(canv, PAGE_W / 2, y, line, 7.5, "centre")
            y -= 9.5
        canv.setFont(FONT_NAME, 8)
        canv.drawCentredString(PAGE_W / 2, 8 * mm, self.page_label.format(page=page, total=total),
                               wordSpace=self.page_word_space)
        canv.restoreState()


def _draw(canv: Canvas, x: float, y: float, text: str, size: float, align: str = "left") -> None:
    """canv.drawString (or its right or centred form) for text that may need the fallback font."""
    runs = _runs(text)
    if len(runs) == 1:
        {"left": canv.drawString, "right": canv.drawRightString, "centre": canv.drawCentredString}[align](x, y, text)
        return
    width = _sw(text, size)
    x -= width if align == "right" else width / 2 if align == "centre" else 0
    out = canv.beginText(x, y)
    for font, part in runs:
        out.setFont(font.fontName, size)
        out.textOut(part)
    canv.drawText(out)
    canv.setFont(FONT_NAME, size)


# --- building blocks -------------------------------------------------------------------------------------------

class _Ctx:
    def __init__(self, kind: str, doc: dict):
        if not isinstance(doc, dict):
            raise TypeError(f"{kind} document must be a dict, not {type(doc).__name__}")
        _ensure_font()
        self.kind = kind
        self.doc = doc
        language = str(doc.get("language") or "").strip().lower().replace("_", "-")
        self.lang = "zh" if language in ("zh-cn", "zh", "zh-hans", "zh-hans-cn") else "en"
        self.L = LABELS[self.lang]
        self.S = _styles
        self.company = _dict(doc.get("company"))
        self.customer = _dict(doc.get("customer"))
        self.currency = _text(doc.get("currency")) if doc.get("currency") else ""

    def p(self, markup: str, style: str = "para") -> Paragraph:
        """A Paragraph of markup that is already safe (labels joined with _markup output)."""
        return Paragraph(markup, self.S[style])

    def heading(self, key: str) -> list:
        """A section heading that never ends a page: CondPageBreak rather than keepWithNext, which would lay the
        heading and what follows it out twice."""
        return [CondPageBreak(HEADING_KEEP), self.p(escape(self.L[key]), "heading")]

    def labelled(self, key: str, value_markup: str) -> Paragraph:
        return self.p(f"{escape(self.L[key])}{escape(self.L['colon'])}{value_markup}")

    def title(self) -> str:
        return self.L[f"title.{self.kind}"]


def _header(ctx: _Ctx) -> list:
    c = ctx.company
    details = [
        ("address", c.get("address")), ("phone", c.get("phone")),
        ("tax_id", c.get("tax_id")), ("bank_account", c.get("bank_account")),
    ]
    sep = "&nbsp;&nbsp;&nbsp;&nbsp;"
    line1 = sep.join(f"{escape(ctx.L[k])}{escape(ctx.L['colon'])}{_markup(v)}" for k, v in details[:2])
    line2 = sep.join(f"{escape(ctx.L[k])}{escape(ctx.L['colon'])}{_markup(v)}" for k, v in details[2:])
    return [
        ctx.p(_markup(c.get("name"), 300), "company"),
        ctx.p(line1, "company_detail"),
        ctx.p(line2, "company_detail"),
        Spacer(1, 3),
        HRFlowable(width="100%", thickness=1, color=colors.HexColor("#333333"), spaceBefore=2, spaceAfter=2),
        ctx.p(escape(ctx.title()), "title"),
    ]


def _meta(ctx: _Ctx, pairs: list[tuple[str, str]]) -> Table:
    """Key/value pairs two to a row, in a borderless table."""
    rows = []
    for i in range(0, len(pairs), 2):
        row = []
        for key, value in pairs[i:i + 2]:
            row += [ctx.L[key] + ctx.L["colon"].strip(), value]
        rows.append(row + ["", ""] * (2 - len(pairs[i:i + 2])))
    return _table(rows, (0.16, 0.34, 0.16, 0.34), header=False,
                  extra=[("GRID", (0, 0), (-1, -1), 0, colors.white), ("LINEBELOW", (0, -1), (-1, -1), 0.5,
                                                                         colors.HexColor("#AAAAAA"))])


def _parties(ctx: _Ctx, left_key: str, left: list, right_key: str, right: list) -> Table:
    """Two side-by-side party blocks; each side a list of (label key, display text)."""
    rows = [[ctx.L[left_key], "", ctx.L[right_key], ""]]
    for i in range(max(len(left), len(right))):
        row = []
        for side in (left, right):
            if i < len(side):
                key, value = side[i]
                row += [ctx.L[key], _clip(value)]
            else:
                row += ["", ""]
        rows.append(row)
    return _table(rows, (0.12, 0.38, 0.12, 0.38), repeat=False, extra=[
        ("SPAN", (0, 0), (1, 0)), ("SPAN", (2, 0), (3, 0)), ("ALIGN", (0, 0), (-1, 0), "LEFT"),
        ("FONTSIZE", (0, 0), (-1, 0), 9), ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ])


def _seller(ctx: _Ctx) -> list:
    c = ctx.company
    return [("name", _text(c.get("name"))), ("address", _address(c.get("address"))), ("phone", _text(c.get("phone"))),
            ("tax_id", _text(c.get("tax_id"))), ("bank_account", _text(c.get("bank_account")))]


def _buyer(ctx: _Ctx) -> list:
    c = ctx.customer
    return [("name", _text(c.get("name"))), ("address", _address(c.get("address"))),
            ("contact_person", _text(c.get("contact_person"))), ("phone", _text(c.get("phone"))),
            ("email", _text(c.get("email")))]


# code, name, unit, quantity, unit price, discount, amount, tax rate, tax
_LINE_FRACTIONS = (0.10, 0.23, 0.06, 0.09, 0.12, 0.09, 0.13, 0.07, 0.11)


def _lines_table(ctx: _Ctx) -> Table:
    L = ctx.L
    cur = f" ({ctx.currency})" if ctx.currency else ""
    rows = [[L["col.code"], L["col.name"], L["col.unit"], L["col.quantity"], L["col.unit_price"],
             L["col.discount"], L["col.amount"] + cur, L["col.tax_rate"], L["col.tax"]]]
    for line in _list(ctx.doc.get("lines")):
        rows.append([
            _text(line.get("product_code")), _text(line.get("name")), _text(line.get("unit")),
            _qty(line.get("quantity")), _money(line.get("unit_price")), _discount(line.get("discount"), ctx.lang),
            _money(line.get("amount")), _percent(line.get("tax_rate")), _money(line.get("tax_amount")),
        ])
    if len(rows) == 1:
        rows.append([DASH] * len(rows[0]))
    return _table(rows, _fit_numbers(rows[1:], _LINE_FRACTIONS, numbers=range(3, 9), give=1), "LLLRRRRRR")


def _fit_numbers(body: list[list[str]], fractions: tuple, numbers, give: int, keep: float = 0.10,
                 narrowest: float = 0.05) -> tuple:
    """Column fractions widened so each number column holds its widest value on one line. The room comes from
    column `give` (the product name, which wraps anywhere) down to `keep`, then from number columns wider than
    their values need (down to `narrowest`, room for a two-character header). A number cut in two reads as
    another number (12,345.67 over 8), so numbers wrap only when all that is not enough, and then at a comma."""
    fractions = list(fractions)
    need = {col: (max(_sw(row[col], TABLE_SIZE) for row in body) + 2 * CELL_PAD + 1) / CONTENT_W for col in numbers}
    donors = [give] + [col for col in numbers if need[col] < fractions[col]]
    floor = {give: keep, **{col: max(need[col], narrowest) for col in numbers}}
    for col in numbers:
        for donor in donors:
            short = need[col] - fractions[col]
            if short <= 0:
                break
            extra = min(short, fractions[donor] - floor[donor])
            if extra > 0:
                fractions[col] += extra
                fractions[donor] -= extra
    return tuple(fractions)


def _totals(ctx: _Ctx) -> list:
    L, d = ctx.L, ctx.doc
    cur = f" ({ctx.currency})" if ctx.currency else ""
    rows = [[L["subtotal"], _money(d.get("subtotal"))], [L["tax_total"], _money(d.get("tax_total"))],
            [L["total"] + cur, _money(d.get("total"))]]
    table = _table(rows, (0.2, 0.25), "LR", header=False, h_align="RIGHT",
                   extra=[("FONTSIZE", (0, -1), (-1, -1), 9.5), ("LEADING", (0, -1), (-1, -1), 12),
                          ("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#E8E8E8"))])
    words = ctx.p(f"{escape(L['total_in_words'])}{escape(L['colon'])}{_markup(d.get('total_in_words'), 300)}",
                  "words")
    return [Spacer(1, 4), table, words]


def _schedule(ctx: _Ctx, installments: list, with_status: bool) -> Table:
    L = ctx.L
    cur = f" ({ctx.currency})" if ctx.currency else ""
    header = [L["col.seq"], L["col.label"], L["col.amount"] + cur, L["col.due_date"]]
    fractions = (0.1, 0.45, 0.25, 0.2)
    if with_status:
        header.append(L["col.status"])
        fractions = (0.08, 0.4, 0.2, 0.16, 0.16)
    rows = [header]
    for item in installments:
        row = [_text(item.get("seq")), _text(item.get("label")), _money(item.get("amount")),
               _date(item.get("due_date"))]
        if with_status:
            status = _text(item.get("status"))
            row.append(L.get(f"status.{status.lower()}", status))
        rows.append(row)
    if len(rows) == 1:
        rows.append([DASH] * len(header))
    return _table(rows, fractions, "CLRCC" if with_status else "CLRC")


def _section(ctx: _Ctx, key: str, value) -> list:
    if value in (None, "") or _text(value) == DASH:
        return []
    return ctx.heading(key) + [ctx.p(_markup(value, 20000))]


def _signatures(ctx: _Ctx, left_key: str, left_name, right_key: str, right_name, sign_key: str = "signature",
                right_sign_key: str | None = None) -> list:
    L = ctx.L
    rows = [
        [L[left_key], L[right_key]],
        [_clip(_text(left_name), 200), _clip(_text(right_name), 200)],
        [L[sign_key], L[right_sign_key or sign_key]],
        [L["seal"], L["seal"]],
        [L["date"], L["date"]],
    ]
    table = _table(rows, (0.5, 0.5), header=False, extra=[
        ("GRID", (0, 0), (-1, -1), 0, colors.white), ("BOX", (0, 0), (0, -1), 0.5, colors.HexColor("#888888")),
        ("BOX", (1, 0), (1, -1), 0.5, colors.HexColor("#888888")), ("FONTSIZE", (0, 0), (-1, 0), 9.5),
        ("LEADING", (0, 0), (-1, 0), 12), ("VALIGN", (0, 3), (-1, 3), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 5), ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
        ("BOTTOMPADDING", (0, 2), (-1, 2), 12), ("BOTTOMPADDING", (0, 3), (-1, 3), 48),
    ])
    # Kept on one page with a CondPageBreak of its measured height (cheaper than KeepTogether).
    return [CondPageBreak(table.wrap(CONTENT_W, PAGE_H)[1] + 16), Spacer(1, 14), table]


def _build(ctx: _Ctx, story: list, number) -> bytes:
    buf = BytesIO()
    company_name = _text(ctx.company.get("name"))
    number = _text(number)
    doc = SimpleDocTemplate(
        buf, pagesize=A4, leftMargin=MARGIN_X, rightMargin=MARGIN_X, topMargin=MARGIN_TOP,
        bottomMargin=MARGIN_BOTTOM, invariant=1, initialFontName=FONT_NAME,
        lang="zh-CN" if ctx.lang == "zh" else "en",
        title=f"{ctx.title()} {number}", author=company_name if company_name != DASH else "",
        subject=ctx.title(), creator="CRM documents",
    )
    decoration = _Decoration(ctx.L, _text(ctx.company.get("footer")), company_name, f"{ctx.title()}  {number}")

    def canvasmaker(*args, **kwargs):
        return _NumberedCanvas(*args, decorate=decoration, **kwargs)

    doc.build(story, canvasmaker=canvasmaker)
    return buf.getvalue()


# --- the four documents ----------------------------------------------------------------------------------------

def _sales_document(kind: str, doc: dict) -> bytes:
    ctx = _Ctx(kind, doc)
    d = ctx.doc
    meta = [(f"number.{kind}", _text(d.get("number"))), ("created_at", _date(d.get("created_at")))]
    if kind == "quote":
        meta.append(("valid_until", _date(d.get("valid_until"))))
    else:
        meta.append(("confirmed_at", _date(d.get("confirmed_at"))))
    meta += [("delivery_date", _date(d.get("delivery_date"))), ("currency", _text(d.get("currency")))]
    story = _header(ctx) + [
        _meta(ctx, meta), Spacer(1, 8),
        _parties(ctx, "seller", _seller(ctx), "buyer", _buyer(ctx)), Spacer(1, 10),
        _lines_table(ctx),
    ]
    story += _totals(ctx)
    installments = _list(d.get("installments"))
    if installments:
        story += ctx.heading("schedule") + [_schedule(ctx, installments, with_status=False)]
    story += ctx.heading("delivery_terms") + _period(ctx, d.get("period")) + [
        ctx.labelled("delivery_date", _markup(_date(d.get("delivery_date")))),
        ctx.labelled("payment_terms", _markup(d.get("payment_terms"), 5000)),
        ctx.labelled("currency", _markup(d.get("currency"))),
    ]
    if kind == "quote":
        story.append(ctx.labelled("valid_until", _markup(_date(d.get("valid_until")))))
    story += _section(ctx, "terms", ctx.company.get("terms"))
    story += _section(ctx, "notes", d.get("notes"))
    story += _signatures(ctx, "seller", ctx.company.get("name"), "buyer", ctx.customer.get("name"))
    return _build(ctx, story, d.get("number"))


def _period(ctx: _Ctx, period) -> list:
    """The period a recurring contract covers, for a contract a schedule generated; nothing for any other."""
    period = _dict(period)
    if not period.get("from"):
        return []
    key = "period_text" if period.get("until") else "period_open"
    text = ctx.L[key].format(start=_date(period.get("from")), until=_date(period.get("until")),
                             source=_text(period.get("source_number")))
    return [ctx.labelled("period", _markup(text))]


def render_contract(doc: dict) -> bytes:
    """销售合同 / Sales Contract."""
    return _sales_document("contract", doc)


def render_quote(doc: dict) -> bytes:
    """报价单 / Quotation: a contract's shape plus valid_until."""
    return _sales_document("quote", doc)


def render_delivery_note(doc: dict) -> bytes:
    """发货单 / Delivery Note."""
    ctx = _Ctx("delivery_note", doc)
    d, L = ctx.doc, ctx.L
    meta = [("number.delivery_note", _text(d.get("number"))), ("contract_number", _text(d.get("contract_number"))),
            ("ship_date", _date(d.get("ship_date")))]
    consignee = _buyer(ctx)
    consignee.insert(2, ("delivery_address", _address(d.get("address"))))
    rows = [[L["col.no"], L["col.code"], L["col.name"], L["col.unit"], L["col.quantity"]]]
    for i, line in enumerate(_list(d.get("lines")), 1):
        rows.append([str(i), _text(line.get("product_code")), _text(line.get("name")), _text(line.get("unit")),
                     _qty(line.get("quantity"))])
    if len(rows) == 1:
        rows.append([DASH] * 5)
    lines = _table(rows, (0.07, 0.2, 0.47, 0.1, 0.16), "CLLLR")
    story = _header(ctx) + [
        _meta(ctx, meta), Spacer(1, 8),
        _parties(ctx, "shipper", _seller(ctx)[:3], "consignee", consignee), Spacer(1, 10),
        lines,
    ]
    story += _section(ctx, "notes", d.get("notes"))
    story += _signatures(ctx, "shipper", ctx.company.get("name"), "consignee", ctx.customer.get("name"),
                         sign_key="shipped_by", right_sign_key="received_by")
    return _build(ctx, story, d.get("number"))


def render_receivables_plan(doc: dict) -> bytes:
    """应收款计划 / Receivables Plan."""
    ctx = _Ctx("receivables_plan", doc)
    d, L = ctx.doc, ctx.L
    meta = [("contract_number", _text(d.get("contract_number"))), ("currency", _text(d.get("currency")))]
    cur = f" ({ctx.currency})" if ctx.currency else ""
    total = _table([[L["total"] + cur, _money(d.get("total"))]], (0.2, 0.25), "LR", header=False, h_align="RIGHT",
                   extra=[("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#E8E8E8"))])
    story = _header(ctx) + [
        _meta(ctx, meta), Spacer(1, 8),
        _parties(ctx, "seller", _seller(ctx)[:3], "buyer", _buyer(ctx)), Spacer(1, 10),
        _schedule(ctx, _list(d.get("installments")), with_status=True), Spacer(1, 4), total,
    ]
    story += _section(ctx, "notes", d.get("notes"))
    return _build(ctx, story, d.get("contract_number"))


_RENDERERS = {
    "contract": render_contract,
    "quote": render_quote,
    "delivery_note": render_delivery_note,
    "receivables_plan": render_receivables_plan,
}


def render(kind: str, doc: dict) -> bytes:
    """Render any of KINDS."""
    try:
        renderer = _RENDERERS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown document kind {kind!r}; expected one of {', '.join(KINDS)}") from None
    return renderer(doc)
