"""Migrations: a database made by the previous revision, with data in it, upgrades to head and keeps the data."""
from __future__ import annotations

import json
import threading
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import JSON, Boolean, Date, DateTime, Numeric, bindparam, inspect, select, text

from crmkit import migrations
from crmkit.db import Database
from crmkit.service import open_database
from crmkit.settings import SERVICES, Settings

PREVIOUS = "0001"  # contracts before delivery notes, receivables, recurring schedules, email requests, dead letters
LATER_TABLES = {"delivery_notes", "delivery_lines", "receivables", "payments", "recurring_schedules",
                "recurring_runs", "email_requests", "dead_letters"}
SIGNED = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request, tmp_path):
    """The environment of one service start: SQLite files under var/, or one PostgreSQL database, a schema each."""
    env = {"CRM_VAR_DIR": str(tmp_path / "var"), "CRM_SECRET_KEY": "test-secret", "CRM_ADMIN_USER": "admin",
           "CRM_ADMIN_PASSWORD": "admin-secret-1"}
    if request.param == "postgresql":
        env["DATABASE_URL"] = request.getfixturevalue("pg_url")
    return env


@pytest.fixture
def contracts():
    return migrations.load_spec("contracts")


def prefix(settings: Settings) -> str:
    """Plain SQL knows nothing of schema_translate_map: name the service's schema outright."""
    return f'"{settings.db_schema}".' if settings.db_schema else ""


def sql_insert(conn, settings: Settings, table: str, **row):
    """INSERT in plain SQL, the values bound as an older release of the service would have written them."""
    kinds = {datetime: DateTime(timezone=True), date: Date(), Decimal: Numeric(18, 3), bool: Boolean(),
             dict: JSON(), list: JSON()}
    params = [bindparam(name, type_=kinds[type(value)]) for name, value in row.items() if type(value) in kinds]
    columns = ", ".join(f'"{name}"' for name in row)
    values = ", ".join(f":{name}" for name in row)
    conn.execute(text(f"INSERT INTO {prefix(settings)}{table} ({columns}) VALUES ({values})").bindparams(*params), row)


def tables_of(settings: Settings, schema: str | None = None) -> set[str]:
    db = Database(settings.database_url)
    try:
        return set(inspect(db.engine).get_table_names(schema=schema or settings.db_schema))
    finally:
        db.dispose()


def write_history(settings: Settings):
    """What a salesperson's first weeks leave in the contracts database at revision 0001."""
    db = Database(settings.database_url, settings.db_schema)
    try:
        with db.engine.begin() as conn:
            sql_insert(conn, settings, "users", id="u-admin", username="admin", password_hash="x", role="admin",
                       active=True, failed_logins=0, created_at=SIGNED)
            sql_insert(conn, settings, "users", id="u-li", username="li.na", password_hash="pbkdf2$x", role="sales",
                       email="li.na@example.cn", active=True, failed_logins=2, created_at=SIGNED)
            sql_insert(conn, settings, "company_settings", key="company", updated_at=SIGNED,
                       value={"company": {"name": "宁波甬江机电有限公司", "language": "zh-CN"},
                              "shortage_policy": "warn_sales"})
            sql_insert(conn, settings, "customers", id="c-1", name="杭州临安五金 (O'Brien & Co.)", kind="distributor",
                       email="buyer@lin-an.example.cn", address="浙江省杭州市临安区 88 号", contact_person="王经理",
                       language="zh-CN", owner="u-li", created_at=SIGNED, updated_at=SIGNED)
            sql_insert(conn, settings, "contracts", id="k-1", number="HT-2026-000001", version=1, customer_id="c-1",
                       customer_snapshot={"name": "杭州临安五金 (O'Brien & Co.)", "address": "浙江省杭州市临安区 88 号",
                                          "contact_person": "王经理"},
                       status="confirmed", currency="CNY", subtotal=Decimal("2000.00"), tax_total=Decimal("260.00"),
                       total=Decimal("2260.00"), delivery_date=date(2026, 4, 1), payment_terms="30% 预付，70% 发货后",
                       notify_departments=["warehouse"], send_to_customer=True, stock_status="reserved",
                       warnings=[], owner_id="u-li", created_by="u-li", created_at=SIGNED, confirmed_at=SIGNED,
                       confirmed_seq=1)
            sql_insert(conn, settings, "contract_lines", contract_id="k-1", line_no=1, product_code="M-100",
                       name="三相异步电机 5.5kW", unit="台", quantity=Decimal("4.000"), unit_price=Decimal("500.00"),
                       discount=Decimal("0.0000"), tax_rate=Decimal("0.1300"), amount=Decimal("2000.00"),
                       tax_amount=Decimal("260.00"), reserved=Decimal("4.000"), delivered=Decimal("0.000"))
            sql_insert(conn, settings, "timeline", contract_id="k-1", event_id="e-1", at=SIGNED,
                       type="stock.reserved", summary="Stock reserved for 1 line")
            sql_insert(conn, settings, "outbox", id="o-1", exchange="crm.events", routing_key="contract.confirmed",
                       body=json.dumps({"id": "o-1"}), created_at=SIGNED, published=False, attempts=0)
            sql_insert(conn, settings, "inbox", consumer="contracts.timeline", message_id="e-1",
                       type="stock.reserved", handled_at=SIGNED)
            sql_insert(conn, settings, "sequences", name="HT-2026", value=1)
    finally:
        db.dispose()


def test_a_database_at_the_previous_revision_upgrades_to_head_with_its_data_intact(env, contracts):
    settings = Settings.from_env("contracts", env)
    migrations.upgrade(contracts, settings, revision=PREVIOUS)
    assert migrations.current(contracts, settings) == PREVIOUS
    assert not tables_of(settings) & LATER_TABLES
    write_history(settings)

    db = open_database(contracts, settings)  # what every web and worker process does on start
    try:
        assert migrations.current(contracts, settings) == migrations.head(contracts) == "0008"
        assert LATER_TABLES <= tables_of(settings)
        from crmkit.models import OutboxMessage, Sequence
        from services.contracts import deliveries, receivables
        from services.contracts.dead_letters import DeadLetter, record
        from services.contracts.models import Contract, ContractLine, Customer, User
        with db.session() as session:
            users = {u.username: u for u in session.execute(select(User)).scalars()}
            assert set(users) == {"admin", "li.na"}  # the admin was there: on_start made no second one
            assert users["li.na"].failed_logins == 2 and users["li.na"].email == "li.na@example.cn"
            assert users["li.na"].token_generation == 0  # her tokens issued before the upgrade stay valid
            customer = session.get(Customer, "c-1")
            assert customer.name == "杭州临安五金 (O'Brien & Co.)" and customer.contact_person == "王经理"
            contract = session.get(Contract, "k-1")
            assert (contract.number, contract.status, contract.total) == ("HT-2026-000001", "confirmed",
                                                                        Decimal("2260.00"))
            assert contract.customer_snapshot["contact_person"] == "王经理"
            assert contract.notify_departments == ["warehouse"] and contract.delivery_date == date(2026, 4, 1)
            assert contract.payment_terms == "30% 预付，70% 发货后"
            assert contract.confirmed_at.replace(tzinfo=None) == SIGNED.replace(tzinfo=None)  # SQLite keeps no zone
            [line] = contract.lines
            assert (line.quantity, line.unit_price, line.tax_rate) == (Decimal("4"), Decimal("500"), Decimal("0.13"))
            line.unit_price = Decimal("0.0125")  # 0008: a price to a fraction of a cent now fits (PostgreSQL
            # enforces a column's scale; SQLite would have kept it anyway)
            outbox = session.execute(select(OutboxMessage)).scalar_one()
            assert (outbox.id, outbox.published) == ("o-1", False)
            assert session.get(Sequence, "HT-2026").value == 1

            # The tables 0002 added work for the contract 0001 left behind, through the service's own code.
            note = deliveries.create(session, contract, lines=None, ship_date=date(2026, 4, 1), address=None,
                                     created_by="u-li")
            assert note.address == "浙江省杭州市临安区 88 号" and [l.quantity for l in note.lines] == [Decimal(4)]
            plan = receivables.plan(session, contract, [{"label": "预付款", "percent": Decimal(30)},
                                                        {"label": "尾款", "percent": Decimal(70)}])
            assert [r.amount for r in plan] == [Decimal("678.00"), Decimal("1582.00")]
            record(json.dumps({"id": "dead-1", "type": "contract.confirmed"}).encode(),
                   {"x-original-queue": "crm.inventory.stock", "x-error": "boom"}, {}, session)
        with db.session() as session:
            assert session.execute(select(DeadLetter.message_id)).scalar_one() == "dead-1"
            if settings.database_url.startswith("postgresql"):
                assert session.execute(select(ContractLine.unit_price)).scalar_one() == Decimal("0.0125")
            assert session.execute(select(OutboxMessage.routing_key).order_by(OutboxMessage.seq)).scalars().all() \
                == ["contract.confirmed", "delivery.created", "receivables.planned"]
    finally:
        db.dispose()


@pytest.mark.parametrize("service", SERVICES)
def test_models_and_head_migrations_agree_sqlite(tmp_path, service):
    # A model changed without a revision fails here: `python -m crmkit.migrations <service> revision --autogenerate`.
    settings = Settings.from_env(service, {"CRM_VAR_DIR": str(tmp_path), "CRM_SECRET_KEY": "x"})
    spec = migrations.load_spec(service)
    migrations.upgrade(spec, settings)
    assert migrations.differences(spec, settings) == []


def test_models_and_head_migrations_agree_postgresql_one_schema_per_service(tmp_path, pg_url):
    env = {"CRM_VAR_DIR": str(tmp_path), "CRM_SECRET_KEY": "x", "DATABASE_URL": pg_url}
    for service in SERVICES:
        settings = Settings.from_env(service, env)
        spec = migrations.load_spec(service)
        migrations.upgrade(spec, settings)
        assert migrations.differences(spec, settings) == [], service
        assert {t.name for t in migrations.target_metadata(spec).sorted_tables} \
            | {migrations.version_table(service)} == tables_of(settings)
    assert tables_of(settings, schema="public") == set()  # nothing outside the services' own schemas


def test_a_database_made_by_create_all_before_migrations_is_adopted(env, contracts):
    """Made by create_all before 0002's tables existed: the missing ones are created, then it is stamped head."""
    settings = Settings.from_env("contracts", env)
    from crmkit.models import KIT_TABLES
    old_tables = [t for t in KIT_TABLES + contracts.tables if t.name not in {"dead_letters", "email_requests"}]
    legacy = Database(settings.database_url, settings.db_schema, tables=old_tables)
    legacy.create_all()
    with legacy.engine.begin() as conn:
        sql_insert(conn, settings, "users", id="u-li", username="li.na", password_hash="x", role="sales",
                   active=True, failed_logins=0, created_at=SIGNED)
    legacy.dispose()

    migrations.upgrade(contracts, settings)
    assert migrations.current(contracts, settings) == migrations.head(contracts)
    assert {"dead_letters", "email_requests", "users"} <= tables_of(settings)
    assert migrations.differences(contracts, settings) == []
    db = Database(settings.database_url, settings.db_schema)
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text(f"SELECT username FROM {prefix(settings)}users")).scalars().all() == ["li.na"]
    finally:
        db.dispose()


def test_processes_starting_together_migrate_once(env, contracts):
    """Gunicorn workers and worker processes all upgrade on start; the lock lets one work while the rest wait."""
    settings = Settings.from_env("contracts", env)
    errors = []

    def start():
        try:
            migrations.upgrade(contracts, settings)
        except Exception as exc:  # collected: an exception in a thread would not fail the test
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    db = Database(settings.database_url, settings.db_schema)
    try:
        with db.engine.connect() as conn:
            versions = conn.execute(text(f"SELECT version_num FROM {prefix(settings)}alembic_version_contracts"))
            assert versions.scalars().all() == [migrations.head(contracts)]
    finally:
        db.dispose()


def test_the_developer_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRM_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CRM_SECRET_KEY", "x")
    for name in ("DATABASE_URL", "CONTRACTS_DATABASE_URL", "AMQP_URL"):
        monkeypatch.delenv(name, raising=False)
    assert migrations.main(["contracts", "upgrade", PREVIOUS]) == 0
    assert migrations.main(["contracts", "check"]) == 1  # 0002's tables are missing from the database
    assert migrations.main(["contracts", "upgrade"]) == 0
    assert migrations.main(["contracts", "check"]) == 0
    assert migrations.main(["contracts", "current"]) == 0
    versions = migrations.script_location("contracts") / "versions"
    before = sorted(p.name for p in versions.glob("*.py"))
    assert migrations.main(["contracts", "revision", "-m", "nothing changed", "--autogenerate"]) == 0
    assert sorted(p.name for p in versions.glob("*.py")) == before  # the models match head: no empty revision
    out = capsys.readouterr().out
    assert "contracts: at 0008 (head 0008)" in out and "no revision written" in out


def test_dead_letters_kept_before_0006_are_listed_by_their_contract(env, contracts):
    settings = Settings.from_env("contracts", env)
    migrations.upgrade(contracts, settings, revision="0005")
    db = Database(settings.database_url, settings.db_schema)
    try:
        with db.engine.begin() as conn:
            for letter_id, body in (("d-1", json.dumps({"id": "m-1", "data": {"contract_id": "k-7"}})),
                                    ("d-2", json.dumps({"id": "m-2", "data": {"contract_id": 7}})),
                                    ("d-3", "not json \\x00"), ("d-4", json.dumps(["a list"])),
                                    # poison ids, kept escaped by the service (JSON escapes in the stored body)
                                    ("d-5", json.dumps({"data": {"contract_id": "k\x00x"}})),
                                    ("d-6", json.dumps({"data": {"contract_id": "k\ud800x"}}))):
                sql_insert(conn, settings, "dead_letters", id=letter_id, message_id=letter_id, type="x",
                           original_queue="crm.inventory.stock", original_exchange="crm.events", consumer="inventory",
                           error="boom", headers={}, body=body, dead_lettered_at=SIGNED, recorded_at=SIGNED,
                           replay_count=0)
    finally:
        db.dispose()
    migrations.upgrade(contracts, settings)
    db = open_database(contracts, settings)
    try:
        from services.contracts.dead_letters import DeadLetter
        with db.session() as session:
            found = dict(session.execute(select(DeadLetter.id, DeadLetter.contract_id)).all())
        assert found == {"d-1": "k-7", "d-2": None, "d-3": None, "d-4": None, "d-5": "k\\u0000x",
                         "d-6": "k\\ud800x"}
    finally:
        db.dispose()
