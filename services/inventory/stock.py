"""Stock operations inside one transaction: reserve, release, ship, receive; each writes the ledger."""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from decimal import Decimal

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from crmkit.errors import NotFound, ValidationFailed
from crmkit.fields import qty_str
from crmkit.messaging.outbox import emit
from crmkit.timeutil import utcnow
from services.inventory.models import Product, Reservation, StockMove, SupplyRequest
from services.inventory.rules import ZERO, allocate_arrivals, reservable

SOURCE = "inventory"


def lock_product(session: Session, code: str) -> Product:
    product = session.execute(select(Product).where(Product.code == code).with_for_update()).scalar_one_or_none()
    if product is None:
        raise NotFound(f"No product with code {code}.", {"code": ["Unknown product code."]})
    return product


def available(product: Product) -> Decimal:
    return product.on_hand - product.reserved


def receive(session: Session, code: str, delta: Decimal, reason: str, user_id: str | None) -> Product:
    """Goods received (delta > 0) or adjusted; arrivals go first to contracts waiting on a shortage."""
    product = lock_product(session, code)
    if product.on_hand + delta < product.reserved:
        floor = qty_str(product.reserved - product.on_hand)  # the smallest delta allowed (0 or less)
        if product.reserved > 0:
            raise ValidationFailed(
                f"Stock cannot drop below what is reserved for contracts ({qty_str(product.reserved)} of "
                f"{qty_str(product.on_hand)} on hand).", {"delta": [f"At least {floor}."]})
        raise ValidationFailed(f"Stock cannot go below zero ({qty_str(product.on_hand)} on hand).",
                               {"delta": [f"At least {floor}."]})
    product.on_hand += delta
    session.add(StockMove(product_code=code, kind="received" if delta > 0 else "adjusted", quantity=delta,
                          reason=reason, created_by=user_id))
    if delta > 0:
        _serve_waiting(session, product)
    return product


def _serve_waiting(session: Session, product: Product) -> None:
    waiting = session.execute(
        select(Reservation).where(Reservation.product_code == product.code, Reservation.status == "active",
                                  Reservation.reserved < Reservation.requested)
        .order_by(Reservation.confirmed_seq, Reservation.id)).scalars().all()
    grants = allocate_arrivals(available(product), [(r, r.requested - r.reserved) for r in waiting])
    by_contract: dict[str, list] = {}
    for reservation, quantity in grants:
        reservation.reserved += quantity
        product.reserved += quantity
        session.add(StockMove(product_code=product.code, kind="reserved", quantity=quantity,
                              reason="arrival for waiting contract", contract_id=reservation.contract_id))
        by_contract.setdefault(reservation.contract_id, []).append(reservation)
    for contract_id, reservations in by_contract.items():
        all_lines = session.execute(select(Reservation).where(Reservation.contract_id == contract_id)).scalars().all()
        complete = all(r.reserved >= r.requested for r in all_lines)
        emit(session, SOURCE, "stock.allocated", {
            "contract_id": contract_id, "contract_number": reservations[0].contract_number,
            "product_code": product.code, "complete": complete,
            "lines": [_line(r, product.name, product.unit) for r in reservations]}, correlation_id=contract_id)
        if complete:
            _reserved_at_last(session, contract_id, reservations[0].contract_number, all_lines)


def _reserved_at_last(session: Session, contract_id: str, number: str, all_lines: list[Reservation]) -> None:
    """The shortage is over: the stock.reserved a confirmation with enough stock emits, marked `after_shortage`."""
    # A consumer waiting for stock.reserved (SPEC's event list has no stock.allocated) learns it this way.
    codes = sorted({r.product_code for r in all_lines})
    described = {row.code: (row.name, row.unit) for row in session.execute(_DESCRIBE_PRODUCTS, {"codes": codes})}
    emit(session, SOURCE, "stock.reserved", {
        "contract_id": contract_id, "number": number, "after_shortage": True,
        "lines": [_line(r, *described.get(r.product_code, (None, None)))
                  for r in sorted(all_lines, key=lambda r: r.line_no)]}, correlation_id=contract_id)


def _line(r: Reservation, name: str | None = None, unit: str | None = None) -> dict:
    """A line as stock events report it; name and unit are the catalogue's, so departments read what it is."""
    return {"line_no": r.line_no, "product_code": r.product_code, "name": name, "unit": unit,
            "requested": qty_str(r.requested), "reserved": qty_str(r.reserved),
            "missing": qty_str(r.requested - r.reserved)}


def reserve_contract(session: Session, data: dict, correlation_id: str) -> None:
    """Reserve what is free for each line of a confirmed contract; the rest is a shortage."""
    contract_id = data["contract_id"]
    if session.execute(_ANY_RESERVATION, {"cid": contract_id}).first():
        return  # reserved under an earlier copy of this event (or an earlier confirmation)
    lines = sorted(data["lines"], key=lambda line: (line["product_code"], line["line_no"]))  # lock order
    # One locking read for all the contract's products, in code order (the order every locker uses), then
    # one statement each for the counters, the ledger and the reservations: plain Core, because the unit of
    # work's bookkeeping for these fifteen rows cost more than writing them.
    codes = sorted({line["product_code"] for line in lines})
    products = session.execute(_LOCK_PRODUCTS, {"codes": codes}).all()
    free = {row.code: available(row) for row in products}
    # The catalogue's name and unit; a code it does not know keeps the contract line's own.
    described = {line["product_code"]: (line.get("name"), line.get("unit")) for line in lines}
    described.update({row.code: (row.name, row.unit) for row in products})
    replenished_by = {row.code: row.replenished_by for row in products}
    now = utcnow()
    reservations, held, moves = [], {}, []
    for line in lines:
        code, requested = line["product_code"], Decimal(str(line["quantity"]))
        reserved = ZERO
        if code in free:
            reserved, _ = reservable(requested, free[code])
            free[code] -= reserved
            if reserved > ZERO:
                held[code] = held.get(code, ZERO) + reserved
                moves.append({"product_code": code, "kind": "reserved", "quantity": reserved,
                              "reason": "contract confirmed", "contract_id": contract_id, "created_at": now})
        reservations.append(_Held(contract_id=contract_id, contract_number=data.get("number", ""),
                                  line_no=line["line_no"], product_code=code, requested=requested, reserved=reserved,
                                  confirmed_seq=int(data.get("confirmed_seq") or 0)))
    if held:
        session.execute(_ADD_RESERVED, [{"b_code": code, "b_qty": qty} for code, qty in held.items()])
        session.execute(_INSERT_MOVES, moves)
    # An unknown product holds nothing and gets no reservation row; the events still report its line short.
    rows = [asdict(r) for r in reservations if r.product_code in free]
    if rows:
        session.execute(_INSERT_RESERVATIONS, rows)
    reservations.sort(key=lambda r: r.line_no)
    short = [r for r in reservations if r.reserved < r.requested]
    payload = {"contract_id": contract_id, "number": data.get("number"), "owner_id": data.get("owner_id"),
               "lines": [_line(r, *described[r.product_code]) for r in reservations]}
    if not short:
        emit(session, SOURCE, "stock.reserved", payload, correlation_id=correlation_id)
        return
    policy = data.get("shortage_policy") or "notify_production"
    customer_name = data.get("customer_name") or (data.get("customer") or {}).get("name")
    # Who is asked for the missing goods: bought-in ones of procurement, made ones (and unknown codes) of production.
    asked = sorted({replenished_by.get(r.product_code) or "production" for r in short}) \
        if policy == "notify_production" else []
    emit(session, SOURCE, "stock.shortage", dict(payload, policy=policy, customer_name=customer_name, asked=asked,
                                                   delivery_date=data.get("delivery_date"),
                                                   language=data.get("company_language")),
         correlation_id=correlation_id)
    if policy == "notify_production":
        for r in short:
            name, unit = described[r.product_code]
            department = replenished_by.get(r.product_code) or "production"
            request_id = str(uuid.uuid4())
            session.add(SupplyRequest(id=request_id, department=department, contract_id=contract_id,
                                      product_code=r.product_code, quantity=r.requested - r.reserved))
            emit(session, SOURCE, f"{department}.requested", {
                "request_id": request_id, "contract_id": contract_id, "number": data.get("number"),
                "customer_name": customer_name, "delivery_date": data.get("delivery_date"),
                "product_code": r.product_code, "product_name": name, "name": name, "unit": unit,
                "quantity": qty_str(r.requested - r.reserved),
                "owner_id": data.get("owner_id"), "language": data.get("company_language"),
            }, correlation_id=correlation_id)


def _released_before_reserved(session: Session, data: dict) -> None:
    """The cancellation is handled before the confirmation (the two are handled in parallel, in any order).

    Its lines are written as reservations already released, so the confirmation's reserve_contract, which does
    nothing for a contract that has reservations, holds nothing for a cancelled contract. If that confirmation is
    being handled at this moment, one of the two inserts fails on uq_reservation_line and is retried: a retried
    release then finds the reservations to release, a retried reserve finds these rows.
    """
    contract_id = data["contract_id"]
    if session.execute(_ANY_RESERVATION, {"cid": contract_id}).first():
        return  # released by an earlier copy of this cancellation
    known = set(session.execute(_KNOWN_CODES, {"codes": sorted({l["product_code"] for l in data["lines"]})})
                .scalars())
    rows = [{"contract_id": contract_id, "contract_number": data.get("number") or "", "line_no": int(l["line_no"]),
             "product_code": l["product_code"], "requested": Decimal(str(l["quantity"])), "reserved": ZERO,
             "shipped": ZERO, "status": "released", "confirmed_seq": 0}
            for l in data["lines"] if l["product_code"] in known]  # an unknown product is never held anyway
    if rows:
        session.execute(_INSERT_RESERVATIONS, rows)


_PRODUCTS = Product.__table__
_KNOWN_CODES = select(_PRODUCTS.c.code).where(_PRODUCTS.c.code.in_(bindparam("codes", expanding=True)))
_ADD_RESERVED = (update(_PRODUCTS).where(_PRODUCTS.c.code == bindparam("b_code"))
                 .values(reserved=_PRODUCTS.c.reserved + bindparam("b_qty")))
_LOCK_PRODUCTS = (select(_PRODUCTS.c.code, _PRODUCTS.c.on_hand, _PRODUCTS.c.reserved, _PRODUCTS.c.name,
                         _PRODUCTS.c.unit, _PRODUCTS.c.replenished_by)
                  .where(_PRODUCTS.c.code.in_(bindparam("codes", expanding=True)))
                  .order_by(_PRODUCTS.c.code).with_for_update())
_DESCRIBE_PRODUCTS = (select(_PRODUCTS.c.code, _PRODUCTS.c.name, _PRODUCTS.c.unit)
                      .where(_PRODUCTS.c.code.in_(bindparam("codes", expanding=True))))
_REQUESTS = SupplyRequest.__table__
# A cancelled contract's open production and procurement requests are off too.
_CANCEL_REQUESTS = (update(_REQUESTS).where(_REQUESTS.c.contract_id == bindparam("cid"), _REQUESTS.c.status == "open")
                    .values(status="cancelled").returning(_REQUESTS.c.id))
_ANY_RESERVATION = (select(Reservation.__table__.c.id)
                    .where(Reservation.__table__.c.contract_id == bindparam("cid")).limit(1))
_INSERT_MOVES = StockMove.__table__.insert()
_INSERT_RESERVATIONS = Reservation.__table__.insert()


@dataclass
class _Held:
    """A reservation as written by reserve_contract: what the events report of each line."""
    contract_id: str
    contract_number: str
    line_no: int
    product_code: str
    requested: Decimal
    reserved: Decimal
    confirmed_seq: int


def release_contract(session: Session, data: dict, correlation_id: str) -> None:
    contract_id = data["contract_id"]
    reservations = session.execute(select(Reservation).where(Reservation.contract_id == contract_id,
                                                             Reservation.status == "active")
                                   .order_by(Reservation.product_code)).scalars().all()
    if not reservations and data.get("was_confirmed") and data.get("lines"):
        _released_before_reserved(session, data)
    released = []
    for r in reservations:
        product = lock_product(session, r.product_code)
        held = r.reserved - r.shipped
        if held > ZERO:
            product.reserved -= held
            session.add(StockMove(product_code=r.product_code, kind="released", quantity=held,
                                  reason="contract cancelled", contract_id=contract_id))
        r.status = "released"
        released.append({"line_no": r.line_no, "product_code": r.product_code, "released": qty_str(held)})
    cancelled = sorted(session.execute(_CANCEL_REQUESTS, {"cid": contract_id}).scalars())
    emit(session, SOURCE, "stock.released", {"contract_id": contract_id, "lines": released,
                                             "cancelled_requests": cancelled}, correlation_id=correlation_id)


def ship(session: Session, data: dict, correlation_id: str) -> None:
    """Goods leave the warehouse: on_hand and reserved both drop by what was held for the line."""
    contract_id = data["contract_id"]
    for line in sorted(data["lines"], key=lambda item: item["product_code"]):
        quantity = Decimal(str(line["quantity"]))
        product = lock_product(session, line["product_code"])
        query = select(Reservation).where(
            Reservation.contract_id == contract_id, Reservation.product_code == line["product_code"],
            Reservation.status == "active")
        # The line's own hold when the note names it: two lines of one product keep their holds apart.
        query = query.where(Reservation.line_no == int(line["line_no"])) if line.get("line_no") is not None \
            else query.where(Reservation.shipped < Reservation.requested)
        reservation = session.execute(query.order_by(Reservation.line_no)).scalars().first()
        from_reserved = ZERO
        if reservation is not None:
            from_reserved = min(quantity, reservation.reserved - reservation.shipped)
            reservation.shipped += quantity
            if reservation.reserved < reservation.shipped:
                reservation.reserved = reservation.shipped  # shipped from free stock beyond the hold
        product.reserved -= max(from_reserved, ZERO)
        product.on_hand -= quantity
        session.add(StockMove(product_code=product.code, kind="shipped", quantity=-quantity,
                              reason=f"delivery {data.get('number', '')}".strip(), contract_id=contract_id))
