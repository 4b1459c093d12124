"""A new contract is written with two prebuilt statements and then used as if loaded: on SQLite and PostgreSQL."""
from __future__ import annotations

from decimal import Decimal as D

import pytest
from sqlalchemy import event, func, select

from crmkit.db import Database
from crmkit.models import KIT_TABLES
from services.contracts import lifecycle
from services.contracts.models import TABLES, Contract, ContractLine, Customer, User
from services.contracts.settings_store import merged_settings

SETTINGS = merged_settings({"default_payment_terms": "Net 30", "default_notify_departments": ["warehouse"]})
PRODUCTS = {code: {"code": code, "name": f"Bolt {code}", "unit": "pc", "unit_price": "12.50", "tax_rate": "0.13"}
            for code in ("B-1", "B-2", "B-3")}


@pytest.fixture
def db(db_url):
    database = Database(db_url, tables=KIT_TABLES + TABLES)
    database.create_all()
    with database.session() as session:
        session.add(User(id="u-1", username="sam", password_hash="x", role="sales", email="sam@example.cn"))
        session.flush()
        session.add(Customer(id="c-1", name="杭州明远机械有限公司", email="buyer@example.cn", owner="u-1"))
    yield database
    database.dispose()


def _lines():
    built = lifecycle.build_lines([{"product_code": code, "quantity": D(n)} for code, n in
                                   (("B-2", "3"), ("B-1", "1.5"), ("B-3", "7"))], PRODUCTS)
    # As a recurring period's copy is built: reserved and delivered left to the columns' defaults.
    for line in built:
        del line.reserved, line.delivered
    return built


def _statements(database):
    seen = []
    event.listen(database.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_a_new_contract_is_usable_without_reading_it_back_and_confirms_with_one_update(db):
    with db.session() as session:
        customer = session.get(Customer, "c-1")
        contract = lifecycle.create(session, customer=customer, lines=_lines(), created_by="u-1", settings=SETTINGS)
        seen = _statements(db)
        # Everything the view and the events read is on the objects: no lazy load, no flush.
        values = [(l.id, l.contract_id, l.line_no, l.product_code, l.reserved, l.delivered, l.discount)
                  for l in contract.lines]
        assert contract.confirmed_at is None and contract.document_id is None and contract.version == 1
        assert seen == []
        lifecycle.confirm(session, contract, customer, session.get(User, "u-1"), settings=SETTINGS)
        session.flush()
        written = [s.split()[0:3] for s in seen]
        # The contract's changes are one UPDATE; its lines are not inserted a second time.
        assert not any(s[:3] == ["INSERT", "INTO", "contract_lines"] for s in written), seen
        assert sum(s[:2] == ["UPDATE", "contracts"] for s in written) == 1, seen
        contract_id = contract.id

    assert [v[2:4] for v in values] == [(1, "B-2"), (2, "B-1"), (3, "B-3")]
    assert all(v[1] == contract_id for v in values) and len({v[0] for v in values}) == 3
    assert all(v[4] == 0 and v[5] == 0 and v[6] == 0 for v in values)
    with db.session() as session:
        stored = session.execute(select(ContractLine).where(ContractLine.contract_id == contract_id)
                                 .order_by(ContractLine.line_no)).scalars().all()
        # Each object got the id of its own row.
        assert [(l.id, l.line_no, l.product_code, l.quantity, l.reserved, l.delivered) for l in stored] == \
            [(v[0], v[2], v[3], q, D(0), D(0)) for v, q in zip(values, (D("3"), D("1.5"), D("7")))]
        row = session.get(Contract, contract_id)
        assert (row.status, row.payment_terms, row.notify_departments, row.total) == \
            ("confirmed", "Net 30", ["warehouse"], D("162.45"))  # 143.75 + 4.88 + 2.44 + 11.38
        assert session.execute(select(func.count()).select_from(ContractLine)).scalar_one() == 3


def test_a_failed_write_leaves_no_contract_and_no_lines(db):
    with pytest.raises(Exception):
        with db.session() as session:
            customer = session.get(Customer, "c-1")
            lifecycle.create(session, customer=customer, lines=_lines(), created_by="u-1", settings=SETTINGS,
                             quote_id="q-1")
            lifecycle.create(session, customer=customer, lines=_lines(), created_by="u-1", settings=SETTINGS,
                             quote_id="q-1")  # the quote's one contract exists already
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(Contract)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(ContractLine)).scalar_one() == 0
