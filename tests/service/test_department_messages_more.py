"""Department messages made from the events the other services really emit, on SQLite and PostgreSQL.

Contracts and inventory run their operations on their own databases; the events they leave in their outboxes
are handed to the consuming service's handlers as its worker would, and what notifications puts on
crm.departments is read back from its outbox.
"""
from __future__ import annotations

import json
import threading
from datetime import date
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit.db import Database
from crmkit.messaging.envelope import Envelope
from crmkit.models import KIT_TABLES, OutboxMessage
from crmkit.settings import Settings
from services.contracts import deliveries, lifecycle, receivables, scheduler
from services.contracts.fulfilment_models import TABLES as FULFILMENT_TABLES
from services.contracts.fulfilment_models import Receivable
from services.contracts.handlers import HANDLERS as CONTRACT_HANDLERS
from services.contracts.models import TABLES as CONTRACT_TABLES
from services.contracts.models import Contract, Customer, SettingsRow, TimelineEntry, User
from services.contracts.settings_store import merged_settings
from services.inventory.handlers import HANDLERS as INVENTORY_HANDLERS
from services.inventory.models import TABLES as INVENTORY_TABLES
from services.documents.handlers import HANDLERS as DOCUMENT_HANDLERS
from services.documents.handlers import make_context as documents_context
from services.documents.models import TABLES as DOCUMENT_TABLES
from services.inventory import stock as inventory_stock
from services.inventory.models import Product, SupplyRequest
from services.notifications.handlers import HANDLERS as NOTIFICATION_HANDLERS
from services.notifications.models import TABLES as NOTIFICATION_TABLES
from support.handlers import run_handler

SETTINGS = merged_settings({"company": {"name": "恒达五金", "language": "zh-CN"}})
PRODUCTS = {"BOLT-M8": {"code": "BOLT-M8", "name": "六角螺栓 M8", "unit": "件", "unit_price": "12.50",
                        "tax_rate": "0.13"}}
DELIVERY_DATE = date(2026, 12, 20)


def service_db(db_url: str, tmp_path, name: str, tables: list) -> Database:
    """One service's database: its own SQLite file, or its own schema of the test's PostgreSQL database."""
    if db_url.startswith("sqlite"):
        database = Database(f"sqlite:///{tmp_path / f'{name}.sqlite'}", tables=KIT_TABLES + tables)
    else:
        database = Database(db_url, schema=name, tables=KIT_TABLES + tables)
    database.create_all()
    return database


@pytest.fixture
def contracts_db(db_url, tmp_path):
    database = service_db(db_url, tmp_path, "contracts", CONTRACT_TABLES + FULFILMENT_TABLES)
    with database.session() as session:
        session.add(User(id="u-1", username="alice", password_hash="x", role="sales", email="alice@example.cn"))
        session.flush()
        session.add(Customer(id="c-1", name="杭州明远机械有限公司", email="buyer@example.cn", owner="u-1"))
    yield database
    database.dispose()


@pytest.fixture
def inventory_db(db_url, tmp_path):
    database = service_db(db_url, tmp_path, "inventory", INVENTORY_TABLES)
    with database.session() as session:
        session.add(Product(code="BOLT-M8", name="六角螺栓 M8", unit="件", unit_price=D("12.50"), tax_rate=D("0.13"),
                            on_hand=D(1), reserved=D(0)))
    yield database
    database.dispose()


@pytest.fixture
def notifications_db(db_url, tmp_path):
    database = service_db(db_url, tmp_path, "notifications", NOTIFICATION_TABLES)
    yield database
    database.dispose()


# --- captured messages -----------------------------------------------------------------------------------------

def events(db: Database, type_: str) -> list[Envelope]:
    """The events of one type a service has emitted, in order, as its relay would publish them."""
    with db.session() as session:
        bodies = session.execute(select(OutboxMessage.body).where(OutboxMessage.exchange == "crm.events",
                                                                  OutboxMessage.routing_key == type_)
                                 .order_by(OutboxMessage.seq)).scalars().all()
    return [Envelope.from_dict(json.loads(body)) for body in bodies]


def department_messages(db: Database, department: str | None = None) -> list[dict]:
    """What notifications put on crm.departments (routing key = department), in order."""
    query = select(OutboxMessage).where(OutboxMessage.exchange == "crm.departments").order_by(OutboxMessage.seq)
    with db.session() as session:
        rows = session.execute(query).scalars().all()
    return [json.loads(row.body) for row in rows if department in (None, row.routing_key)]


def notify(db: Database, envelope: Envelope) -> bool:
    return run_handler(db, NOTIFICATION_HANDLERS, envelope, SimpleNamespace(settings=None))


def stock(db: Database, envelope: Envelope) -> bool:
    return run_handler(db, INVENTORY_HANDLERS, envelope)


def record(db: Database, envelope: Envelope) -> bool:
    """The gateway's handler of an event: stock status, document id, timeline."""
    return run_handler(db, CONTRACT_HANDLERS, envelope)


def timeline(db: Database, contract_id: str) -> list[tuple[str, str]]:
    with db.session() as session:
        return [tuple(row) for row in session.execute(
            select(TimelineEntry.type, TimelineEntry.summary).where(TimelineEntry.contract_id == contract_id)
            .order_by(TimelineEntry.at, TimelineEntry.id))]


def stock_state(db: Database, contract_id: str):
    with db.session() as session:
        row = session.get(Contract, contract_id)
        return row.stock_status, row.warnings, [line.reserved for line in row.lines]


# --- contracts' side -------------------------------------------------------------------------------------------

def confirmed_contract(db: Database, notify_departments=("warehouse", "finance"), delivery_date=DELIVERY_DATE,
                       settings=SETTINGS):
    with db.session() as session:
        customer = session.get(Customer, "c-1")
        lines = lifecycle.build_lines([{"product_code": "BOLT-M8", "quantity": D("4")}], PRODUCTS)
        contract = lifecycle.create(session, customer=customer, lines=lines, created_by="u-1",
                                    delivery_date=delivery_date, notify_departments=list(notify_departments),
                                    settings=settings)
        lifecycle.confirm(session, contract, customer, session.get(User, "u-1"), settings=settings)
        return contract.id


def held(contract: Contract) -> Contract:
    """The contract as inventory's stock.reserved leaves it: every line held (delivery notes take only that)."""
    for line in contract.lines:
        line.reserved = line.quantity
    contract.stock_status = "reserved"
    return contract


def ship_everything(db: Database, contract_id: str) -> None:
    with db.session() as session:
        contract = held(session.get(Contract, contract_id))
        note = deliveries.create(session, contract, lines=None, ship_date=None, address=None, created_by="u-1")
        deliveries.ship(session, contract, note)


def plan(db: Database, contract_id: str, due_date: date = date(2026, 1, 10)) -> None:
    with db.session() as session:
        contract = session.get(Contract, contract_id)
        receivables.plan(session, contract, [{"label": "定金", "percent": D("30"), "due_date": due_date},
                                             {"label": "尾款", "percent": D("70"), "due_date": date(2031, 1, 10)}])


def pay_first(db: Database, contract_id: str) -> None:
    with db.session() as session:
        contract = session.get(Contract, contract_id)
        first = session.execute(select(Receivable).where(Receivable.contract_id == contract_id,
                                                         Receivable.seq == 1)).scalar_one()
        receivables.pay(session, contract, first, amount=first.amount, paid_on=None, reference="TT-1",
                        created_by="u-1")


# --- 1. the contract's delivery date on every department message -----------------------------------------------

@pytest.mark.parametrize("event_type", ["delivery.shipped", "receivables.planned", "receivable.overdue",
                                        "receivable.paid"])
def test_each_department_message_of_a_contract_carries_its_delivery_date(contracts_db, notifications_db,
                                                                         event_type):
    contract_id = confirmed_contract(contracts_db)
    if event_type == "delivery.shipped":
        ship_everything(contracts_db, contract_id)
    else:
        plan(contracts_db, contract_id)
    if event_type == "receivable.overdue":
        scheduler.run_due(contracts_db, None, date(2026, 2, 1))
    if event_type == "receivable.paid":
        pay_first(contracts_db, contract_id)
    [event] = events(contracts_db, event_type)
    assert event.data["delivery_date"] == "2026-12-20"

    assert notify(notifications_db, event)
    posted = department_messages(notifications_db)
    assert posted, event_type
    for message in posted:
        assert message["contract"] == {"id": contract_id, "number": event.data["contract_number"],
                                       "customer_name": "杭州明远机械有限公司", "delivery_date": "2026-12-20"}
        assert message["type"] == event_type


def test_a_contract_without_a_delivery_date_still_says_so(contracts_db, notifications_db):
    contract_id = confirmed_contract(contracts_db, delivery_date=None)
    ship_everything(contracts_db, contract_id)
    [event] = events(contracts_db, "delivery.shipped")
    assert "delivery_date" in event.data and event.data["delivery_date"] is None
    assert notify(notifications_db, event)
    [message] = department_messages(notifications_db, "warehouse")
    assert message["contract"]["delivery_date"] is None


def test_the_warehouse_is_told_of_a_shipment_in_the_companys_language(contracts_db, notifications_db):
    from services.contracts.settings_store import update_settings
    with contracts_db.session() as session:
        update_settings(session, {"company": {"language": "en"}})
    contract_id = confirmed_contract(contracts_db)
    ship_everything(contracts_db, contract_id)
    [shipped] = events(contracts_db, "delivery.shipped")
    assert notify(notifications_db, shipped)
    [message] = department_messages(notifications_db, "warehouse")
    assert message["text"].startswith("Delivery note ") and "shipped" in message["text"], message  # was Chinese
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in message["text"].replace("杭州明远机械有限公司", ""))


# --- 2. a receivables plan reaches finance and the salesperson -------------------------------------------------

def test_a_receivables_plan_reaches_finance_and_the_salesperson_once(contracts_db, notifications_db):
    contract_id = confirmed_contract(contracts_db)
    plan(contracts_db, contract_id)
    [event] = events(contracts_db, "receivables.planned")
    assert notify(notifications_db, event)
    assert notify(notifications_db, event)  # a redelivered copy posts nothing twice
    posted = department_messages(notifications_db)
    assert [(m["department"], m.get("recipient_id")) for m in posted] == [("finance", None), ("sales", "u-1")]
    finance, sales = posted
    assert finance["text"] == sales["text"] == ("合同 HT-{0}（杭州明远机械有限公司）的收款计划已制定：共 2 期，合计 CNY {1}。"
                                                .format(event.data["number"][3:], format(D(event.data["total"]), ",.2f")))
    assert sales["lines"] == finance["lines"] and [l["label"] for l in sales["lines"]] == ["定金", "尾款"]
    assert [e.data["department"] for e in events(notifications_db, "department.notified")] == ["finance", "sales"]


def test_a_replaced_plan_says_it_replaces_the_earlier_one(contracts_db, notifications_db):
    contract_id = confirmed_contract(contracts_db)
    plan(contracts_db, contract_id)
    plan(contracts_db, contract_id, due_date=date(2026, 2, 10))
    first, second = events(contracts_db, "receivables.planned")
    assert notify(notifications_db, first) and notify(notifications_db, second)
    texts = [m["text"] for m in department_messages(notifications_db, "finance")]
    assert "收款计划已制定" in texts[0] and "收款计划已更改" in texts[1] and "此前的计划及其到期提醒作废" in texts[1]
    assert [m["reason"] for m in department_messages(notifications_db, "finance")] == ["receivables_planned"] * 2


def test_finance_hears_of_the_money_received_when_a_paid_contract_is_cancelled(contracts_db, notifications_db):
    contract_id = confirmed_contract(contracts_db)
    [confirmed] = events(contracts_db, "contract.confirmed")
    assert notify(notifications_db, confirmed)  # warehouse and finance told of it
    plan(contracts_db, contract_id)
    pay_first(contracts_db, contract_id)
    with contracts_db.session() as session:
        contract = session.get(Contract, contract_id)
        lifecycle.cancel(session, contract, received=receivables.received(session, contract_id))
    [cancelled] = events(contracts_db, "contract.cancelled")
    paid = receivable_amounts(contracts_db, contract_id)[0]
    assert cancelled.data["received"] == str(paid)
    assert notify(notifications_db, cancelled)
    [finance] = [m for m in department_messages(notifications_db, "finance") if m["reason"] == "contract_cancelled"]
    assert f"客户已付 CNY {paid:,.2f}，请按约定办理退款或抵扣" in finance["text"], finance["text"]
    [warehouse] = [m for m in department_messages(notifications_db, "warehouse")
                   if m["reason"] == "contract_cancelled"]
    assert "已付" not in warehouse["text"]  # the money is finance's business


def receivable_amounts(db, contract_id) -> list:
    with db.session() as session:
        return session.execute(select(Receivable.amount).where(Receivable.contract_id == contract_id)
                               .order_by(Receivable.seq)).scalars().all()


# --- 3. short lines name the product and its unit --------------------------------------------------------------

def test_a_production_request_names_the_product_and_its_unit(contracts_db, inventory_db, notifications_db):
    contract_id = confirmed_contract(contracts_db, notify_departments=())
    [confirmed] = events(contracts_db, "contract.confirmed")
    assert stock(inventory_db, confirmed)
    [shortage] = events(inventory_db, "stock.shortage")
    assert shortage.data["lines"] == [{"line_no": 1, "product_code": "BOLT-M8", "name": "六角螺栓 M8", "unit": "件",
                                       "requested": "4", "reserved": "1", "missing": "3"}]
    [request] = events(inventory_db, "production.requested")
    assert (request.data["product_name"], request.data["unit"], request.data["quantity"]) == ("六角螺栓 M8", "件", "3")

    assert not notify(notifications_db, shortage)  # notify_production: the request does the work
    assert notify(notifications_db, request)
    [message] = department_messages(notifications_db, "production")
    assert message["lines"] == [{"product_code": "BOLT-M8", "name": "六角螺栓 M8", "unit": "件", "quantity": "3"}]
    assert message["text"] == (f"合同 {confirmed.data['number']}（杭州明远机械有限公司）缺货：六角螺栓 M8 × 3 件，"
                               "交货日期 2026-12-20，请安排生产。")
    assert message["contract"]["id"] == contract_id


def test_the_salespersons_shortage_warning_names_the_product_and_its_unit(contracts_db, inventory_db,
                                                                           notifications_db):
    english = merged_settings({"company": {"name": "Hengda", "language": "en"}, "shortage_policy": "warn_sales"})
    confirmed_contract(contracts_db, notify_departments=(), settings=english)
    [confirmed] = events(contracts_db, "contract.confirmed")
    assert stock(inventory_db, confirmed)
    assert events(inventory_db, "production.requested") == []
    [shortage] = events(inventory_db, "stock.shortage")
    assert notify(notifications_db, shortage)
    [warning] = department_messages(notifications_db, "sales")
    assert warning["recipient_id"] == "u-1"
    assert [(l["name"], l["unit"], l["quantity"]) for l in warning["lines"]] == [("六角螺栓 M8", "件", "3")]
    assert warning["text"] == (f"Contract {confirmed.data['number']} (杭州明远机械有限公司) is short of stock: "
                               "六角螺栓 M8 × 3 件; please agree the delivery with the customer.")


# --- 5. arrivals that complete a short contract's reservation say stock.reserved ------------------------------

def short_contract(contracts_db, inventory_db) -> str:
    contract_id = confirmed_contract(contracts_db, notify_departments=())
    [confirmed] = events(contracts_db, "contract.confirmed")
    assert stock(inventory_db, confirmed)
    return contract_id


def receive(inventory_db, quantity: str) -> None:
    with inventory_db.session() as session:
        inventory_stock.receive(session, "BOLT-M8", D(quantity), "goods received", "u-store")


def test_arrivals_completing_a_short_contract_emit_stock_reserved_beside_stock_allocated(contracts_db, inventory_db):
    contract_id = short_contract(contracts_db, inventory_db)
    [shortage] = events(inventory_db, "stock.shortage")
    assert record(contracts_db, shortage)
    assert stock_state(contracts_db, contract_id)[0] == "short"

    receive(inventory_db, "2")  # 3 of 4: still short, no stock.reserved yet
    [partial] = events(inventory_db, "stock.allocated")
    assert partial.data["complete"] is False and events(inventory_db, "stock.reserved") == []
    receive(inventory_db, "5")
    allocated = events(inventory_db, "stock.allocated")[1]
    [reserved] = events(inventory_db, "stock.reserved")
    assert allocated.data["complete"] is True and allocated.data["lines"][0]["reserved"] == "4"
    assert reserved.data == {"contract_id": contract_id, "number": shortage.data["number"], "after_shortage": True,
                             "lines": [{"line_no": 1, "product_code": "BOLT-M8", "name": "六角螺栓 M8", "unit": "件",
                                        "requested": "4", "reserved": "4", "missing": "0"}]}

    for event in (partial, allocated, reserved, reserved):  # the last one a redelivered copy
        assert record(contracts_db, event)
    assert stock_state(contracts_db, contract_id) == ("reserved", [], [D(4)])
    assert [entry for entry in timeline(contracts_db, contract_id) if entry[0] == "stock.reserved"] == [
        ("stock.reserved", "Stock reserved for every line: arrived stock resolved the shortage")]


@pytest.mark.parametrize("order", ["reserved_first", "allocated_first"])
def test_a_shortage_handled_after_its_resolution_does_not_make_the_contract_short_again(contracts_db, inventory_db,
                                                                                       order):
    """The gateway's handlers run on several threads: the three stock events may be recorded in any order."""
    contract_id = short_contract(contracts_db, inventory_db)
    receive(inventory_db, "3")
    [shortage], [allocated], [reserved] = (events(inventory_db, t) for t in
                                           ("stock.shortage", "stock.allocated", "stock.reserved"))
    later = [reserved, allocated] if order == "reserved_first" else [allocated, reserved]
    for event in later + [shortage]:
        assert record(contracts_db, event)
    assert stock_state(contracts_db, contract_id) == ("reserved", [], [D(4)])
    assert sorted(entry[0] for entry in timeline(contracts_db, contract_id)) == [
        "contract.confirmed", "contract.created", "stock.allocated", "stock.reserved", "stock.shortage"]


def test_stock_events_handled_in_any_order_never_lower_what_the_contract_holds(contracts_db, inventory_db):
    """Each stock event reports a line's total held at its moment. Handled out of order, an older total once
    overwrote a newer one, and delivery notes, which take only what is held, then could not take it all."""
    contract_id = short_contract(contracts_db, inventory_db)
    receive(inventory_db, "1")
    receive(inventory_db, "2")
    [shortage], allocated, [reserved] = (events(inventory_db, t) for t in
                                         ("stock.shortage", "stock.allocated", "stock.reserved"))
    assert [a.data["lines"][0]["reserved"] for a in allocated] == ["2", "4"]
    for event in [reserved, allocated[1], allocated[0], shortage]:  # newest first
        assert record(contracts_db, event)
    assert stock_state(contracts_db, contract_id) == ("reserved", [], [D(4)])


# --- 6. the timeline shows every PDF of the contract -----------------------------------------------------------

@pytest.fixture
def documents(db_url, tmp_path):
    """The documents service's database and worker context (real rendering, PDFs under tmp_path)."""
    database = service_db(db_url, tmp_path, "documents", DOCUMENT_TABLES)
    settings = Settings.from_env("documents", {"CRM_VAR_DIR": str(tmp_path / "var"), "CRM_SECRET_KEY": "test"})
    yield database, documents_context(settings, database)
    database.dispose()


def render(documents, envelope: Envelope) -> list[Envelope]:
    """The documents worker's handling of one event, and the document.rendered it emitted."""
    database, ctx = documents
    before = len(events(database, "document.rendered"))
    assert run_handler(database, DOCUMENT_HANDLERS, envelope, ctx)
    return events(database, "document.rendered")[before:]


def test_the_timeline_shows_the_delivery_note_and_receivables_plan_pdfs(contracts_db, documents):
    contract_id = confirmed_contract(contracts_db, notify_departments=())
    with contracts_db.session() as session:
        note = deliveries.create(session, held(session.get(Contract, contract_id)), lines=None, ship_date=None,
                                 address=None, created_by="u-1")
        note_number = note.number
    plan(contracts_db, contract_id)
    rendered = {}
    for type_ in ("contract.confirmed", "delivery.created", "receivables.planned"):
        [event] = events(contracts_db, type_)
        [rendered[type_]] = render(documents, event)
    assert [rendered[t].data["kind"] for t in rendered] == ["contract", "delivery_note", "receivables_plan"]

    for type_ in ("delivery.created", "receivables.planned", "contract.confirmed", "delivery.created"):
        assert record(contracts_db, rendered[type_])  # the last one a redelivered copy
    summaries = [summary for kind, summary in timeline(contracts_db, contract_id) if kind == "document.rendered"]
    sizes = {t: rendered[t].data["size"] for t in rendered}
    assert sorted(summaries) == sorted([
        f"Contract PDF rendered ({sizes['contract.confirmed']} bytes)",
        f"Delivery note {note_number} PDF rendered ({sizes['delivery.created']} bytes)",
        f"Receivables plan PDF rendered ({sizes['receivables.planned']} bytes)"])
    # Only the contract's own PDF is the contract's document.
    with contracts_db.session() as session:
        assert session.get(Contract, contract_id).document_id == rendered["contract.confirmed"].data["document_id"]


def test_a_pdf_of_another_contracts_note_or_of_a_quote_writes_nothing(contracts_db):
    contract_id = confirmed_contract(contracts_db, notify_departments=())
    note = Envelope(type="document.rendered", source="documents", correlation_id="nope",
                    data={"kind": "delivery_note", "owner_id": "d-9", "contract_id": "nope", "number": "DN-9"})
    quote = Envelope(type="document.rendered", source="documents", correlation_id="q-1",
                     data={"kind": "quote", "owner_id": "q-1", "quote_id": "q-1", "number": "BJ-1"})
    odd = Envelope(type="document.rendered", source="documents", correlation_id=contract_id,
                   data={"kind": ["delivery_note"], "owner_id": "d-9", "contract_id": contract_id})
    assert not record(contracts_db, note) and not record(contracts_db, quote) and not record(contracts_db, odd)
    assert [kind for kind, _ in timeline(contracts_db, contract_id)] == ["contract.created", "contract.confirmed"]


# --- 4. a cancelled contract is called off with the departments that were told to act on it -------------------

def cancel(db: Database, contract_id: str) -> Envelope:
    with db.session() as session:
        lifecycle.cancel(session, session.get(Contract, contract_id))
    [cancelled] = events(db, "contract.cancelled")
    return cancelled


def test_cancelling_tells_each_department_that_was_told_to_act_once(contracts_db, inventory_db, notifications_db):
    contract_id = confirmed_contract(contracts_db, notify_departments=("warehouse", "finance"))
    [confirmed] = events(contracts_db, "contract.confirmed")
    assert stock(inventory_db, confirmed)
    [request] = events(inventory_db, "production.requested")
    assert notify(notifications_db, confirmed) and notify(notifications_db, request)
    told = len(department_messages(notifications_db))

    cancelled = cancel(contracts_db, contract_id)
    assert cancelled.data["notify_departments"] == ["warehouse", "finance"]
    assert (cancelled.data["customer_name"], cancelled.data["delivery_date"], cancelled.data["company_language"]) \
        == ("杭州明远机械有限公司", "2026-12-20", "zh-CN")
    assert notify(notifications_db, cancelled)
    assert notify(notifications_db, cancelled)  # a redelivered copy tells nobody twice
    calls = department_messages(notifications_db)[told:]
    assert sorted(m["department"] for m in calls) == ["finance", "production", "warehouse"]
    number = confirmed.data["number"]
    for message in calls:
        assert (message["type"], message["reason"]) == ("contract.cancelled", "contract_cancelled")
        assert message["contract"] == {"id": contract_id, "number": number, "customer_name": "杭州明远机械有限公司",
                                       "delivery_date": "2026-12-20"}
        assert [(l["product_code"], l["name"], l["unit"], l["quantity"]) for l in message["lines"]] == [
            ("BOLT-M8", "六角螺栓 M8", "件", "4")]
    texts = {m["department"]: m["text"] for m in calls}
    assert texts["production"] == f"合同 {number}（杭州明远机械有限公司）已取消（原交货日期 2026-12-20），请停止为其安排的生产。"
    assert texts["warehouse"].endswith("请停止备货与出库。") and texts["finance"].endswith("请停止开票与收款。")
    notified = [e.data for e in events(notifications_db, "department.notified")][told:]
    assert sorted((d["department"], d["reason"]) for d in notified) == [
        ("finance", "contract_cancelled"), ("production", "contract_cancelled"), ("warehouse", "contract_cancelled")]

    # Inventory: the stock goes back and the contract's open production request is off.
    assert stock(inventory_db, cancelled)
    [released] = events(inventory_db, "stock.released")
    assert released.data["cancelled_requests"] == [request.data["request_id"]]
    with inventory_db.session() as session:
        assert session.get(SupplyRequest, request.data["request_id"]).status == "cancelled"


def test_a_department_never_told_about_the_contract_hears_nothing_of_its_cancellation(contracts_db, inventory_db,
                                                                                     notifications_db):
    english = merged_settings({"company": {"name": "Hengda", "language": "en"}})
    contract_id = confirmed_contract(contracts_db, notify_departments=("warehouse",), settings=english)
    [confirmed] = events(contracts_db, "contract.confirmed")
    assert stock(inventory_db, confirmed)
    [request] = events(inventory_db, "production.requested")
    assert notify(notifications_db, confirmed)
    with contracts_db.session() as session:
        session.add(SettingsRow(key="company", value={"company": {"language": "en"}}))  # read by the cancellation
    cancelled = cancel(contracts_db, contract_id)
    assert notify(notifications_db, cancelled)
    # Inventory's production request arrives after the cancellation: production is neither asked nor called off.
    assert notify(notifications_db, request)
    posted = department_messages(notifications_db)
    assert [(m["department"], m["reason"]) for m in posted] == [("warehouse", "contract_confirmed"),
                                                                 ("warehouse", "contract_cancelled")]
    assert posted[1]["text"] == (f"Contract {confirmed.data['number']} (杭州明远机械有限公司) has been cancelled "
                                 "(delivery date: 2026-12-20); please stop preparing and shipping its goods.")


def test_a_draft_cancelled_tells_nobody(contracts_db, notifications_db):
    with contracts_db.session() as session:
        customer = session.get(Customer, "c-1")
        lines = lifecycle.build_lines([{"product_code": "BOLT-M8", "quantity": D("4")}], PRODUCTS)
        draft = lifecycle.create(session, customer=customer, lines=lines, created_by="u-1",
                                 notify_departments=["warehouse"], settings=SETTINGS)
        draft_id = draft.id
    cancelled = cancel(contracts_db, draft_id)
    assert cancelled.data["was_confirmed"] is False
    assert notify(notifications_db, cancelled)
    assert department_messages(notifications_db) == []


def test_a_cancellation_handled_beside_the_confirmation_still_reaches_the_department(contracts_db,
                                                                                     notifications_db):
    """Two handler threads at once: the confirmation's messages are written but not yet committed when the
    cancellation is handled. The cancellation waits for that commit, then calls off what it told."""
    contract_id = confirmed_contract(contracts_db, notify_departments=("warehouse",))
    [confirmed] = events(contracts_db, "contract.confirmed")
    cancelled = cancel(contracts_db, contract_id)
    posted, release = threading.Event(), threading.Event()

    @sa_event.listens_for(Session, "before_commit")
    def hold_the_confirmation(session):
        if threading.current_thread().name == "confirmation":
            posted.set()
            release.wait(30)

    try:
        confirmation = threading.Thread(target=notify, args=(notifications_db, confirmed), name="confirmation")
        confirmation.start()
        assert posted.wait(30)
        cancellation = threading.Thread(target=notify, args=(notifications_db, cancelled), name="cancellation")
        cancellation.start()
        cancellation.join(1.0)
        assert cancellation.is_alive()  # waiting for the confirmation's commit, not deciding without it
        release.set()
        confirmation.join(30)
        cancellation.join(30)
    finally:
        release.set()
        sa_event.remove(Session, "before_commit", hold_the_confirmation)
    assert [(m["department"], m["reason"]) for m in department_messages(notifications_db)] == [
        ("warehouse", "contract_confirmed"), ("warehouse", "contract_cancelled")]
