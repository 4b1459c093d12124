"""What to print and what to call it: render jobs from events, filenames, Content-Disposition. No I/O."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import quote

from crmkit.money import amount_in_words
from services.documents.render import KINDS  # the kinds this service renders are part of its rules

# kind -> (Chinese title, English title) used in file names
TITLES = {
    "contract": ("销售合同", "Contract"),
    "quote": ("报价单", "Quotation"),
    "delivery_note": ("发货单", "Delivery-Note"),
    "receivables_plan": ("应收款计划", "Receivables-Plan"),
}

_UNSAFE = re.compile(r"[^A-Za-z0-9._\-]+")
# RFC 5987 attr-char minus the letters and digits quote() keeps anyway.
_ATTR_CHARS = "!#$&+-.^_`|~"


class BadEvent(ValueError):
    """An event that names no document owner: there is nothing to attach a PDF (or a failure) to."""


@dataclass
class Job:
    """One PDF to render: the renderer's input and what document.rendered must carry along."""
    kind: str
    owner_id: str
    number: str
    language: str
    doc: dict
    ids: dict = field(default_factory=dict)  # contract_id / quote_id / delivery_note_id, for consumers' lookups
    context: dict = field(default_factory=dict)  # customer, send_to_customer, owner, language

    @property
    def needs_company(self) -> bool:
        return not isinstance(self.doc.get("company"), dict)


def is_chinese(language) -> bool:
    return str(language or "").strip().lower().replace("_", "-") in ("zh-cn", "zh", "zh-hans", "zh-hans-cn")


def safe_number(number) -> str:
    """A document number as a file-name part: letters, digits, '.', '_' and '-' only (no paths, no quotes)."""
    text = _UNSAFE.sub("-", str(number or "")).strip("-.")[:64]
    return text or "document"


def filename(kind: str, number, language) -> str:
    """销售合同-HT-2026-000001.pdf for zh-CN, Contract-HT-2026-000001.pdf otherwise."""
    zh, en = TITLES[kind]
    return f"{zh if is_chinese(language) else en}-{safe_number(number)}.pdf"


def content_disposition(name: str, kind: str, number) -> str:
    """RFC 6266: an ASCII filename for old clients, and filename* (RFC 5987, UTF-8) for the real name."""
    fallback = filename(kind, number, "en")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe=_ATTR_CHARS)}"


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _str_id(value) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


def language_of(data: dict) -> str:
    return (data.get("language") or _dict(data.get("customer")).get("language")
            or _dict(data.get("company")).get("language") or "zh-CN")


def context_of(data: dict, language: str, send_default: bool) -> dict:
    """What notifications needs to email the PDF without calling back (SPEC §4)."""
    customer = _dict(data.get("customer"))
    owner = _dict(data.get("owner"))
    return {
        "customer": {"name": customer.get("name"), "email": customer.get("email"),
                     "language": customer.get("language") or language},
        "send_to_customer": bool(data.get("send_to_customer", send_default)),
        "owner": {"id": owner.get("id") or data.get("owner_id"), "username": owner.get("username"),
                  "email": owner.get("email")} if owner or data.get("owner_id") else None,
        "language": language,
    }


def _with_words(doc: dict, language: str) -> dict:
    """Quotes may arrive without total_in_words; the printed quote still spells its total."""
    if doc.get("total_in_words") or doc.get("total") in (None, ""):
        return doc
    try:
        words = amount_in_words(Decimal(str(doc["total"])), language, doc.get("currency") or "CNY")
    except (InvalidOperation, ValueError, ArithmeticError):
        return doc
    return {**doc, "total_in_words": words}


def _job(kind: str, owner_id, number, data: dict, ids: dict, send_default: bool) -> Job:
    owner_id = _str_id(owner_id)
    if owner_id is None:
        raise BadEvent(f"a {kind} event without its id")
    language = language_of(data)
    doc = {**data, "language": language, "currency": data.get("currency") or "CNY"}
    return Job(kind=kind, owner_id=owner_id, number=str(number or ""), language=language, doc=doc,
               ids={k: v for k, v in ids.items() if v}, context=context_of(data, language, send_default))


def from_contract_confirmed(data: dict) -> Job:
    contract_id = data.get("contract_id")
    return _job("contract", contract_id, data.get("number"), data, {"contract_id": contract_id}, False)


def from_quote_sent(data: dict) -> Job:
    quote_id = data.get("quote_id") or data.get("id")
    job = _job("quote", quote_id, data.get("number"), data, {"quote_id": quote_id}, True)
    job.doc = _with_words(job.doc, job.language)
    return job


def from_delivery_created(data: dict) -> Job:
    note_id = data.get("delivery_note_id") or data.get("id")
    return _job("delivery_note", note_id, data.get("number"), data,
                {"contract_id": data.get("contract_id"), "delivery_note_id": note_id}, False)


def from_receivables_planned(data: dict) -> Job:
    contract_id = data.get("contract_id")
    number = data.get("contract_number") or data.get("number")
    data = {**data, "contract_number": number}
    return _job("receivables_plan", contract_id, number, data, {"contract_id": contract_id}, False)


def from_request(kind: str, owner_id: str, doc: dict, context: dict) -> Job:
    """document.requested: the requester sends the renderer's input and the context to pass along."""
    language = doc.get("language") or context.get("language") or language_of(doc)
    doc = {**doc, "language": language, "currency": doc.get("currency") or "CNY"}
    if kind in ("contract", "quote"):
        doc = _with_words(doc, language)
    number = doc.get("number") or doc.get("contract_number") or ""
    ids = {k: context.get(k) or doc.get(k) for k in ("contract_id", "quote_id", "delivery_note_id")}
    if kind == "contract":
        ids["contract_id"] = owner_id
    elif kind == "quote":
        ids["quote_id"] = owner_id
    elif kind == "delivery_note":
        ids["delivery_note_id"] = owner_id
    else:
        ids["contract_id"] = ids["contract_id"] or owner_id
    merged = {**doc, **{k: v for k, v in context.items() if k in ("customer", "owner", "send_to_customer")}}
    passed = context_of(merged, language, False)
    return Job(kind=kind, owner_id=owner_id, number=str(number), language=language, doc=doc,
               ids={k: v for k, v in ids.items() if isinstance(v, str) and v}, context=passed)
