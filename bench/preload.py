"""Preload history before measuring: N contracts with lines, deliveries and receivables across 500 customers.

Written straight into each service's database through the services' own models and crmkit.db.Database
(bulk INSERTs in the right schema), not over HTTP: 100,000 contracts take seconds, not hours. The rows
look like what the system itself writes: confirmed and delivered contracts with their timelines, stock
reservations and ledger moves (and the product counters that match them), rendered documents, sent
emails, department messages, published outbox rows and handled inbox ids.
"""
from __future__ import annotations

import json
import random
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import JSON, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from crmkit.db import Database
from crmkit.settings import Settings

CENT = Decimal("0.01")


def _db(settings: Settings, tables) -> Database:
    return Database(settings.database_url, settings.db_schema, tables=tables)


_loaded: list[tuple[Database, object]] = []


def _settle(log=print) -> None:
    """Leave the tables just filled as those of a database in service: planner statistics, the visibility map
    and hint bits set (VACUUM ANALYZE), and the pages written out (CHECKPOINT).

    Otherwise the measured minute pays for the preload itself: its first reads dirty every page they touch,
    and the checkpoint that the preload's WAL (half a gigabyte for 100,000 contracts) sets off runs during the
    load. Seen before this: POST /contracts p99 54 ms at 100,000 contracts against 26 ms at 10,000, with
    every stage's maximum around 300 ms at the same moment.
    """
    for db, table in _loaded:
        target = f'"{db.schema}"."{table.name}"' if db.schema else f'"{table.name}"'
        if db.is_sqlite:
            with db.engine.connect() as conn:
                conn.execute(text(f"ANALYZE {target}"))
                conn.commit()
            continue
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # VACUUM runs outside
            conn.execute(text(f"VACUUM (ANALYZE) {target}"))
    postgres = next((db for db, _ in _loaded if not db.is_sqlite), None)
    if postgres is not None:
        with postgres.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            try:
                conn.execute(text("CHECKPOINT"))
            except DBAPIError as exc:  # not a superuser: the load will share the disk with that checkpoint
                log(f"preload: no CHECKPOINT after loading ({exc.orig or exc})".splitlines()[0])
    for db in {id(db): db for db, _ in _loaded}.values():
        db.dispose()
    _loaded.clear()


def _bulk(db: Database, table, rows: list[dict]) -> int:
    """Insert rows into a service's table: COPY on PostgreSQL, multi-row INSERTs elsewhere."""
    if not rows:
        return 0
    _loaded.append((db, table))
    if not db.is_sqlite:
        try:
            return _copy(db, table, rows)
        except Exception as exc:  # a model changed under us (a new NOT NULL column…): the slower, general way
            print(f"[bench] COPY into {table.name} failed ({type(exc).__name__}: {exc}); inserting instead",
                  file=sys.stderr)
    # SQLAlchemy's "insertmanyvalues": an executemany with RETURNING goes out as multi-row INSERTs of a
    # thousand rows each from one compiled template, not as a statement per row.
    key = list(table.primary_key.columns)[0]
    with db.session() as session:
        for start in range(0, len(rows), 20000):
            session.execute(insert(table).returning(key), rows[start:start + 20000]).all()
    return len(rows)


def _copy(db: Database, table, rows: list[dict]) -> int:
    """COPY … FROM STDIN into the table of the model, in the service's schema, with the model's defaults."""
    given = list(rows[0])
    defaults = {}
    for column in table.columns:
        if column.name in given or column.default is None:
            continue
        if column.default.is_scalar:
            defaults[column.name] = lambda arg=column.default.arg: arg
        elif column.default.is_callable:
            defaults[column.name] = lambda arg=column.default.arg: arg(None)
    names = given + list(defaults)
    as_json = {n for n in names if isinstance(table.c[n].type, JSON)}
    target = f'"{db.schema}"."{table.name}"' if db.schema else f'"{table.name}"'
    columns = ", ".join(f'"{n}"' for n in names)
    with db.session() as session:
        cursor = session.connection().connection.driver_connection.cursor()
        with cursor.copy(f"COPY {target} ({columns}) FROM STDIN") as copy:
            for row in rows:
                values = [row.get(n) for n in given] + [make() for make in defaults.values()]
                copy.write_row([json.dumps(v, ensure_ascii=False) if n in as_json and v is not None else v
                                for n, v in zip(names, values)])
    return len(rows)


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def preload(system, seed, contracts: int, customers: int = 500, log=print) -> dict:
    """Insert the history; returns what was inserted per table and how long it took."""
    from services.contracts import models as cm
    started = time.perf_counter()
    rng = random.Random(20261126)
    settings = {name: system.database(name) for name in ("contracts", "inventory", "documents", "notifications")}
    done: dict[str, int | str] = {}
    year = datetime.now(timezone.utc).year - 1  # last year's numbers: no clash with this year's sequence
    base_day = datetime(year, 1, 1, 8, 0, tzinfo=timezone.utc)

    contracts_db = _db(settings["contracts"], [])
    products = _products(system, seed)

    # customers, spread over the bench's salespeople
    owners = seed.sales_ids
    customer_rows = []
    for i in range(customers):
        customer_rows.append({"id": str(uuid.uuid4()), "name": f"历史客户 {i + 1:04d} 有限公司", "kind": "company",
                              "email": f"history{i + 1}@customer.example.cn", "phone": f"0574-{i:04d} 0000",
                              "address": f"浙江省宁波市鄞州区 {i + 1} 号", "contact_person": "李经理",
                              "language": "zh-CN" if i % 5 else "en", "owner": owners[i % len(owners)]})
    done["customers"] = _bulk(contracts_db, cm.Customer.__table__, customer_rows)

    contract_rows, line_rows, timeline_rows, outbox_rows = [], [], [], []
    notes, note_lines, receivable_rows, payment_rows = [], [], [], []
    reservation_rows, move_rows, inbox_rows, document_rows, email_rows, department_rows = [], [], [], [], [], []
    reserved_by_product: dict[str, Decimal] = {}
    statuses = ["confirmed"] * 40 + ["partially_delivered"] * 15 + ["delivered"] * 20 + ["completed"] * 15 + \
        ["cancelled"] * 5 + ["draft"] * 5
    codes = list(products)
    for n in range(contracts):
        customer = customer_rows[n % customers]
        contract_id = str(uuid.uuid4())
        number = f"HT-{year}-{n + 1:06d}"
        created = base_day + timedelta(minutes=(n * 525600 // max(contracts, 1)) % 525000)
        status = statuses[rng.randrange(len(statuses))]
        confirmed = status != "draft"
        lines, subtotal, tax_total = [], Decimal(0), Decimal(0)
        for line_no, code in enumerate(rng.sample(codes, 5), 1):
            product = products[code]
            qty = Decimal(rng.randint(1, 40))
            amount = _money(qty * product["unit_price"])
            tax = _money(amount * product["tax_rate"])
            subtotal += amount
            tax_total += tax
            delivered = qty if status in ("delivered", "completed") else (
                (qty // 2) if status == "partially_delivered" else Decimal(0))
            reserved = qty if confirmed and status != "cancelled" else Decimal(0)
            lines.append({"contract_id": contract_id, "line_no": line_no, "product_code": code,
                          "name": product["name"], "unit": product["unit"], "quantity": qty,
                          "unit_price": product["unit_price"], "discount": Decimal(0),
                          "tax_rate": product["tax_rate"], "amount": amount, "tax_amount": tax,
                          "reserved": reserved, "delivered": delivered})
        line_rows += lines
        snapshot = {k: customer[k] for k in ("name", "address", "contact_person", "email", "phone", "language")}
        contract_rows.append({
            "id": contract_id, "number": number, "version": 1, "customer_id": customer["id"],
            "customer_snapshot": snapshot, "status": status, "currency": "CNY", "subtotal": subtotal,
            "tax_total": tax_total, "total": subtotal + tax_total, "payment_terms": "签约后 30 天内付清全款",
            "delivery_date": (created + timedelta(days=30)).date(), "notify_departments": ["warehouse"],
            "send_to_customer": True, "stock_status": "released" if status == "cancelled" else (
                "reserved" if confirmed else "pending"), "warnings": [], "owner_id": customer["owner"],
            "created_by": customer["owner"], "created_at": created,
            "confirmed_at": created + timedelta(minutes=5) if confirmed else None,
            "confirmed_seq": n + 1 if confirmed else None,
            "cancelled_at": created + timedelta(days=2) if status == "cancelled" else None,
            "document_id": str(uuid.uuid4()) if confirmed else None})
        events = [("contract.created", f"Contract {number} created")]
        if confirmed:
            events += [("contract.confirmed", f"Contract {number} confirmed"),
                       ("stock.reserved", "Stock reserved for every line"),
                       ("document.rendered", "Contract PDF rendered (34000 bytes)"),
                       ("email.sent", f"Email sent to {customer['email']}"),
                       ("department.notified", "Department warehouse notified")]
        for k, (kind, summary) in enumerate(events):
            event_id = str(uuid.uuid4())
            timeline_rows.append({"contract_id": contract_id, "event_id": event_id,
                                  "at": created + timedelta(seconds=k), "type": kind, "summary": summary})
            if kind.startswith("contract."):
                outbox_rows.append({"id": event_id, "exchange": "crm.events", "routing_key": kind,
                                    "body": "{}", "created_at": created, "published": True,
                                    "published_at": created, "attempts": 0})
            if kind == "contract.confirmed":
                inbox_rows.append({"consumer": "inventory", "message_id": event_id, "type": kind,
                                   "handled_at": created})
        if not confirmed:
            continue
        for line in lines:
            held = Decimal(0) if status == "cancelled" else line["quantity"]
            reservation_rows.append({"contract_id": contract_id, "contract_number": number,
                                     "line_no": line["line_no"], "product_code": line["product_code"],
                                     "requested": line["quantity"], "reserved": held, "shipped": line["delivered"],
                                     "status": "released" if status == "cancelled" else "active",
                                     "confirmed_seq": n + 1, "delivery_date": contract_rows[-1]["delivery_date"]})
            move_rows.append({"product_code": line["product_code"], "kind": "reserved", "quantity": line["quantity"],
                              "reason": "contract confirmed", "contract_id": contract_id, "created_at": created})
            if line["delivered"]:
                move_rows.append({"product_code": line["product_code"], "kind": "shipped",
                                  "quantity": -line["delivered"], "reason": f"delivery FH-{year}-{n + 1:06d}",
                                  "contract_id": contract_id, "created_at": created + timedelta(days=3)})
            if status != "cancelled":
                reserved_by_product[line["product_code"]] = reserved_by_product.get(
                    line["product_code"], Decimal(0)) + held - line["delivered"]
        document_rows.append({"id": contract_rows[-1]["document_id"], "kind": "contract", "owner_id": contract_id,
                              "number": number, "language": customer["language"], "sha256": uuid.uuid4().hex * 2,
                              "size": 34000, "filename": f"{number}.pdf", "version": 1, "created_at": created,
                              "rendered_at": created})
        email_rows.append({"id": str(uuid.uuid4()), "request_key": f"contract:{contract_id}", "status": "sent",
                           "attempts": 1, "next_attempt_at": created, "to": [customer["email"]], "cc": [],
                           "subject": f"销售合同 {number}", "body": "附件为销售合同，请查收。", "kind": "contract",
                           "number": number, "contract_id": contract_id, "document_owner_id": contract_id,
                           "document_id": contract_rows[-1]["document_id"], "customer_name": customer["name"],
                           "owner_id": customer["owner"], "message_id": f"<{uuid.uuid4()}@bench>",
                           "created_at": created, "sent_at": created + timedelta(seconds=2)})
        department_rows.append({"id": str(uuid.uuid4()), "dedupe_key": f"{uuid.uuid4()}:warehouse",
                                "department": "warehouse", "type": "contract.confirmed", "reason": "contract_confirmed",
                                "contract": {"id": contract_id, "number": number, "customer_name": customer["name"]},
                                "lines": [], "text": f"合同 {number} 已确认，请备货。", "occurred_at": created,
                                "acked_at": created + timedelta(hours=1)})
        if status in ("partially_delivered", "delivered", "completed"):
            note_id = str(uuid.uuid4())
            notes.append({"id": note_id, "number": f"FH-{year}-{n + 1:06d}", "contract_id": contract_id,
                          "status": "shipped", "ship_date": (created + timedelta(days=3)).date(),
                          "address": customer["address"], "created_by": customer["owner"], "created_at": created,
                          "shipped_at": created + timedelta(days=3)})
            note_lines += [{"delivery_note_id": note_id, "line_no": l["line_no"], "product_code": l["product_code"],
                            "name": l["name"], "unit": l["unit"], "quantity": l["delivered"]} for l in lines]
        total = subtotal + tax_total
        first = _money(total * Decimal("0.3"))
        for seq, (label, amount, days) in enumerate((("预付款", first, 0), ("尾款", total - first, 30)), 1):
            receivable_id = str(uuid.uuid4())
            due = (created + timedelta(days=days)).date()
            paid = amount if status == "completed" or (seq == 1 and status != "cancelled") else Decimal(0)
            receivable_rows.append({"id": receivable_id, "contract_id": contract_id, "seq": seq, "label": label,
                                    "amount": amount, "due_date": due, "due_event": "signing", "due_days": days,
                                    "paid_amount": paid, "status": "paid" if paid == amount else (
                                        "overdue" if due < date.today() else "open"),
                                    "paid_at": created + timedelta(days=days) if paid else None,
                                    "created_at": created})
            if paid:
                payment_rows.append({"id": str(uuid.uuid4()), "receivable_id": receivable_id, "amount": paid,
                                     "paid_on": due, "reference": f"银行转账 {n + 1}-{seq}",
                                     "created_by": customer["owner"], "created_at": created + timedelta(days=days)})

    done["contracts"] = _bulk(contracts_db, cm.Contract.__table__, contract_rows)
    done["contract_lines"] = _bulk(contracts_db, cm.ContractLine.__table__, line_rows)
    done["timeline"] = _bulk(contracts_db, cm.TimelineEntry.__table__, timeline_rows)
    from crmkit.models import InboxMessage, OutboxMessage
    done["contracts outbox (published)"] = _bulk(contracts_db, OutboxMessage.__table__, outbox_rows)
    _optional(done, "delivery notes, receivables", lambda: _fulfilment(contracts_db, notes, note_lines,
                                                                       receivable_rows, payment_rows, done))

    from services.inventory import models as im
    inventory_db = _db(settings["inventory"], [])
    done["reservations"] = _bulk(inventory_db, im.Reservation.__table__, reservation_rows)
    done["stock_moves"] = _bulk(inventory_db, im.StockMove.__table__, move_rows)
    done["inventory inbox"] = _bulk(inventory_db, InboxMessage.__table__, inbox_rows)
    with inventory_db.session() as session:
        for code, quantity in reserved_by_product.items():
            session.execute(update(im.Product).where(im.Product.code == code)
                            .values(reserved=im.Product.reserved + quantity))

    def documents():
        from services.documents import models as dm
        done["documents"] = _bulk(_db(settings["documents"], []), dm.Document.__table__, document_rows)

    def notifications():
        from services.notifications import models as nm
        db = _db(settings["notifications"], [])
        done["emails (sent)"] = _bulk(db, nm.Email.__table__, email_rows)
        done["department messages"] = _bulk(db, nm.DepartmentMessage.__table__, department_rows)

    _optional(done, "documents", documents)
    _optional(done, "notifications", notifications)
    _settle(log)
    for db in (contracts_db, inventory_db):
        db.dispose()
    seconds = time.perf_counter() - started
    log(f"preloaded {contracts:,} contracts across {customers} customers in {seconds:.1f}s")
    return {"contracts": contracts, "customers": customers, "seconds": round(seconds, 1), "rows": done}


def _optional(done: dict, what: str, fn) -> None:
    """Tables still being built by other work: load them when their models fit, say so when they don't."""
    try:
        fn()
    except Exception as exc:
        done[f"{what} (skipped)"] = f"{type(exc).__name__}: {exc}"[:300]


def _fulfilment(db, notes, note_lines, receivables, payments, done):
    from services.contracts import fulfilment_models as fm
    done["delivery_notes"] = _bulk(db, fm.DeliveryNote.__table__, notes)
    done["delivery_lines"] = _bulk(db, fm.DeliveryLine.__table__, note_lines)
    done["receivables"] = _bulk(db, fm.Receivable.__table__, receivables)
    done["payments"] = _bulk(db, fm.Payment.__table__, payments)


def _products(system, seed) -> dict[str, dict]:
    from services.inventory.models import Product
    db = _db(system.database("inventory"), [])
    with db.session() as session:
        rows = session.execute(select(Product).where(Product.code.in_(seed.products))).scalars().all()
        products = {p.code: {"name": p.name, "unit": p.unit, "unit_price": p.unit_price, "tax_rate": p.tax_rate}
                    for p in rows}
    db.dispose()
    return products
