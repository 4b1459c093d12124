"""The gateway's reactions: stock status, document id and a timeline entry for every event of a contract."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, select, update

from crmkit.messaging.consumer import Skip, keyed_by_event, only_if
from services.contracts.lifecycle import add_timeline, add_timeline_if_contract, contract_exists
from services.contracts.models import Contract, ContractLine, TimelineEntry


def _contract_id(envelope) -> str:
    data = envelope.data
    contract_id = data.get("contract_id") or (data.get("owner_id") if data.get("kind") == "contract" else None)
    if not contract_id:
        raise Skip()
    return contract_id


def _contract(envelope, session) -> Contract:
    """The event's contract, locked against the other handlers of the same contract."""
    contract = session.execute(select(Contract).where(Contract.id == _contract_id(envelope))
                               .with_for_update()).scalar()
    if contract is None:
        raise Skip()
    return contract


def _at(envelope) -> datetime:
    return datetime.fromisoformat(envelope.occurred_at.replace("Z", "+00:00"))


def _lines_text(lines, key="missing") -> str:
    return ", ".join(f"{l['product_code']} {l[key]}" for l in lines)


def _set_reserved(contract: Contract, lines: list[dict]) -> None:
    """What inventory holds per line, from a stock event. Only ever raised here (stock_released zeroes it): the
    events each report the total at their moment and may be handled out of order, and this bounds what a
    delivery note can take, so an older, lower total must not win."""
    by_no = {int(l["line_no"]): Decimal(l["reserved"]) for l in lines}
    for line in contract.lines:
        if line.line_no in by_no:
            line.reserved = max(line.reserved or Decimal(0), by_no[line.line_no])


def _write_reserved(session, contract_id: str, lines: list[dict]) -> None:
    """_set_reserved without loading the lines: one batched UPDATE by (contract, line number)."""
    session.execute(_SET_LINE_RESERVED,
                    [{"cid": contract_id, "no": int(l["line_no"]), "qty": Decimal(l["reserved"])} for l in lines])


_LINES = ContractLine.__table__
_SET_LINE_RESERVED = (update(_LINES)  # raised only, as in _set_reserved
                      .where(_LINES.c.contract_id == bindparam("cid"), _LINES.c.line_no == bindparam("no"),
                             _LINES.c.reserved < bindparam("qty"))
                      .values(reserved=bindparam("qty")))


def stock_reserved(envelope, session, ctx):
    # The hot path of every confirmation: the contract is locked and marked by one UPDATE (a released one
    # keeps its status), its lines by one batched UPDATE; nothing is loaded.
    contract_id = _contract_id(envelope)
    marked = session.execute(_MARK_RESERVED, {"cid": contract_id}).first()
    if marked is None:
        if not contract_exists(session, contract_id):
            raise Skip()
    else:
        _write_reserved(session, contract_id, envelope.data["lines"])
    summary = "Stock reserved for every line"
    if envelope.data.get("after_shortage"):
        summary += ": arrived stock resolved the shortage"
    add_timeline(session, contract_id, envelope.id, envelope.type, summary, _at(envelope))


_CONTRACTS = Contract.__table__
_MARK_RESERVED = (update(_CONTRACTS)
                  .where(_CONTRACTS.c.id == bindparam("cid"), _CONTRACTS.c.stock_status != "released")
                  .values(stock_status="reserved", warnings=[]).returning(_CONTRACTS.c.id))
_TIMELINE = TimelineEntry.__table__
_RESERVED_SEEN = (select(_TIMELINE.c.id)
                  .where(_TIMELINE.c.contract_id == bindparam("cid"), _TIMELINE.c.type == "stock.reserved").limit(1))
_SET_DOCUMENT = update(_CONTRACTS).where(_CONTRACTS.c.id == bindparam("cid")).values(document_id=bindparam("doc"))


def stock_shortage(envelope, session, ctx):
    contract = _contract(envelope, session)
    short = [l for l in envelope.data["lines"] if Decimal(l["missing"]) > 0]
    # A stock.reserved of a short contract is always the later news (arrivals resolved it): when its handler
    # ran first, the shortage only joins the timeline.
    resolved = contract.stock_status == "reserved" and _reserved_seen(session, contract.id)
    if contract.stock_status != "released" and not resolved:
        _set_reserved(contract, envelope.data["lines"])
        contract.stock_status = "short"
        contract.warnings = [{"code": "stock_shortage", "product_code": l["product_code"],
                              "requested": l["requested"], "available": l["reserved"]} for l in short]
    policy, asked = envelope.data.get("policy"), envelope.data.get("asked")
    if policy != "notify_production":
        then = "the salesperson has been warned"
    elif isinstance(asked, list) and asked:
        then = f"{' and '.join(map(str, asked))} {'has' if len(asked) == 1 else 'have'} been asked"
    else:  # an event from before `asked` was sent
        then = "production has been asked"
    add_timeline(session, contract.id, envelope.id, envelope.type,
                 f"Stock short ({_lines_text(short)} missing); {then}", _at(envelope))


def _reserved_seen(session, contract_id: str) -> bool:
    return session.execute(_RESERVED_SEEN, {"cid": contract_id}).first() is not None


def stock_allocated(envelope, session, ctx):
    contract = _contract(envelope, session)
    _set_reserved(contract, envelope.data["lines"])
    if envelope.data.get("complete") and contract.stock_status == "short":
        contract.stock_status, contract.warnings = "reserved", []
    elif contract.stock_status == "short":
        remaining = {l.product_code for l in contract.lines if l.reserved < l.quantity}
        contract.warnings = [w for w in contract.warnings or [] if w.get("product_code") in remaining]
    add_timeline(session, contract.id, envelope.id, envelope.type,
                 f"Arrived stock reserved for {_lines_text(envelope.data['lines'], 'reserved')}", _at(envelope))


def stock_released(envelope, session, ctx):
    contract = _contract(envelope, session)
    contract.stock_status = "released"
    for line in contract.lines:
        line.reserved = Decimal(0)
    add_timeline(session, contract.id, envelope.id, envelope.type, "Reserved stock released", _at(envelope))


# The contract's other PDFs: they join its timeline (SPEC: every event that touched it), and only the contract's
# own PDF becomes its document_id.
OTHER_DOCUMENTS = {
    "delivery_note": lambda d: f"Delivery note {d.get('number') or ''} PDF rendered ({d.get('size', '?')} bytes)",
    "receivables_plan": lambda d: f"Receivables plan PDF rendered ({d.get('size', '?')} bytes)",
}


@only_if(lambda envelope: envelope.data.get("kind") in ("contract", *OTHER_DOCUMENTS))
def document_rendered(envelope, session, ctx):
    kind = envelope.data.get("kind")
    if kind != "contract":
        if not add_timeline_if_contract(session, _contract_id(envelope), envelope.id, envelope.type,
                                        OTHER_DOCUMENTS[kind](envelope.data), _at(envelope)):
            raise Skip()
        return
    contract_id = _contract_id(envelope)
    if not session.execute(_SET_DOCUMENT, {"cid": contract_id, "doc": envelope.data.get("document_id")}).rowcount:
        raise Skip()
    add_timeline(session, contract_id, envelope.id, envelope.type,
                 f"Contract PDF rendered ({envelope.data.get('size', '?')} bytes)", _at(envelope))


SUMMARIES = {
    "production.requested": lambda d: f"Production asked for {d.get('quantity')} × {d.get('product_code')}",
    "procurement.requested": lambda d: f"Procurement asked for {d.get('quantity')} × {d.get('product_code')}",
    "document.failed": lambda d: f"PDF rendering failed: {d.get('error', '')}"[:500],
    "email.sent": lambda d: f"Email sent to {', '.join(d.get('to') or [])}",
    "email.delayed": lambda d: (f"Email to {', '.join(d.get('to') or [])} not sent yet ({d.get('error', '')}); "
                                f"retried until {d.get('retry_until')}")[:500],
    "email.failed": lambda d: f"Email to {', '.join(d.get('to') or [])} failed: {d.get('error', '')}"[:500],
    "department.notified": lambda d: f"Department {d.get('department')} notified",
    "quote.sent": lambda d: f"Quote {d.get('number')} sent",
    "quote.accepted": lambda d: f"Quote {d.get('number')} accepted",
}


@keyed_by_event  # the entry is unique per (contract, event): a copy adds nothing
def timeline_only(envelope, session, ctx):
    if not add_timeline_if_contract(session, _contract_id(envelope), envelope.id, envelope.type,
                                    SUMMARIES[envelope.type](envelope.data), _at(envelope)):
        raise Skip()  # nothing was written


HANDLERS = {
    "stock.reserved": stock_reserved,
    "stock.shortage": stock_shortage,
    "stock.allocated": stock_allocated,
    "stock.released": stock_released,
    "document.rendered": document_rendered,
    **{event_type: timeline_only for event_type in SUMMARIES},
}
