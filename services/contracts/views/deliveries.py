"""Delivery notes: create from a contract, read, ship."""
from __future__ import annotations

from flask import Blueprint, current_app
from sqlalchemy import select

from crmkit.errors import NotFound
from crmkit.web.auth import caller
from crmkit.web.idempotency import idempotent
from crmkit.web.pagination import fetch_page, page, page_args
from crmkit.web.requests import load
from services.contracts import deliveries
from services.contracts.access import contract_for, require_reader
from services.contracts.fulfilment_models import DeliveryNote
from services.contracts.fulfilment_schemas import DeliveryNoteIn, DeliveryNoteOut
from services.contracts.models import Contract

bp = Blueprint("deliveries", __name__, url_prefix="/api/v1")
out = DeliveryNoteOut()


def _db():
    return current_app.extensions["crm_db"]


def dump(note: DeliveryNote, contract: Contract) -> dict:
    return out.dump({**{c: getattr(note, c) for c in ("id", "number", "contract_id", "status", "ship_date", "address",
                                                      "lines", "created_by", "created_at", "shipped_at")},
                     "contract_number": contract.number, "customer_id": contract.customer_id})


def _writer():
    who = caller()
    require_reader(who)
    who.require("sales", "manager", "admin")
    return who


@bp.post("/contracts/<contract_id>/delivery-notes")
@idempotent
def create_note(contract_id):
    who = _writer()
    data = load(DeliveryNoteIn(), required=False)
    with _db().session() as session:
        # The row lock makes "contracted − delivered − open notes" hold against concurrent notes.
        contract = contract_for(session, who, contract_id, lock=True)
        note = deliveries.create(session, contract, lines=data.get("lines"), ship_date=data.get("ship_date"),
                                 address=data.get("address"), created_by=who.id)
        return dump(note, contract), 201


@bp.get("/contracts/<contract_id>/delivery-notes")
def list_notes(contract_id):
    require_reader(caller())
    limit, offset = page_args()
    with _db().session() as session:
        contract = contract_for(session, caller(), contract_id)
        query = select(DeliveryNote).where(DeliveryNote.contract_id == contract.id)
        rows, total = fetch_page(session, query, (DeliveryNote.created_at, DeliveryNote.number), limit, offset)
        return page([dump(n, contract) for n in rows], total)


def _note(session, note_id: str, lock: bool = False) -> tuple[DeliveryNote, Contract]:
    """The note and its contract, 404 unless the caller sees the contract; locks contract then note."""
    contract_id = session.execute(select(DeliveryNote.contract_id).where(DeliveryNote.id == note_id)).scalar()
    if contract_id is None:
        raise NotFound("No such delivery note.")
    try:
        contract = contract_for(session, caller(), contract_id, lock=lock)
    except NotFound:
        raise NotFound("No such delivery note.")
    query = select(DeliveryNote).where(DeliveryNote.id == note_id)
    note = session.execute(query.with_for_update() if lock else query).scalar_one()
    return note, contract


@bp.get("/delivery-notes/<note_id>")
def get_note(note_id):
    require_reader(caller())
    with _db().session() as session:
        note, contract = _note(session, note_id)
        return dump(note, contract)


@bp.post("/delivery-notes/<note_id>/ship")
def ship_note(note_id):
    _writer()
    with _db().session() as session:
        note, contract = _note(session, note_id, lock=True)
        deliveries.ship(session, contract, note)
        return dump(note, contract)
