"""The fuzz run's options and its system: the embedded services, a salesperson and records whose ids exist."""
from __future__ import annotations

import pytest

from support.infra import EmbeddedSystem, SmtpCatcher

DEFAULT_EXAMPLES = 5  # per operation in `make test` (about 400 requests); `make fuzz` asks for 500


def pytest_addoption(parser):
    parser.addoption("--fuzz-examples", type=int, default=DEFAULT_EXAMPLES,
                     help=f"examples per API operation in the fuzz run (default {DEFAULT_EXAMPLES})")


_SUMMARY: list[str] = []


@pytest.fixture(scope="session")
def fuzz_summary() -> list[str]:
    """Lines the run adds to pytest's terminal summary (what was called, how it answered)."""
    return _SUMMARY


def pytest_terminal_summary(terminalreporter):
    if _SUMMARY:
        terminalreporter.section("fuzz")
        for line in _SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def fuzz_examples(request) -> int:
    # The option is only registered when this folder is on the command line; `make test` gets the default.
    return request.config.getoption("--fuzz-examples", default=DEFAULT_EXAMPLES)


@pytest.fixture(scope="module")
def fuzz_system(tmp_path_factory):
    """Every service in this process, without worker threads: the run checks HTTP answers, and events would
    only add PDF rendering to the load (a PDF route then answers 202, which is documented)."""
    smtp = SmtpCatcher(tmp_path_factory.mktemp("fuzz-mail")).start()
    system = EmbeddedSystem(tmp_path_factory.mktemp("fuzz"), smtp, workers=False).start()
    try:
        yield system, seed(system.api, system.var)
    finally:
        system.stop()
        smtp.stop()


def hold_stock(var, contract_id: str) -> None:
    """What inventory's stock.reserved would tell the contract, written as its handler does (no workers run
    here): a delivery note takes only what is held for the contract."""
    import sqlalchemy
    engine = sqlalchemy.create_engine(f"sqlite:///{var / 'contracts.sqlite'}")
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE contract_lines SET reserved = quantity WHERE contract_id = :id"),
                     {"id": contract_id})
        conn.execute(sqlalchemy.text("UPDATE contracts SET stock_status = 'reserved' WHERE id = :id"),
                     {"id": contract_id})
    engine.dispose()


def seed(admin, var) -> dict:
    """A salesperson and one record of every kind, so generated requests also reach existing ids."""
    admin.product("FZ-BOLT", stock=1000, price="12.50")
    admin.product("FZ-NUT", stock=5, price="0.80")
    sales = admin.user("fuzz-sales", role="sales", department="sales")
    customer = sales.customer(name="Fuzz Customer Ltd", language="en", email="buyer@example.com")
    draft = sales.contract(customer["id"], [("FZ-BOLT", 3), ("FZ-NUT", 2)])
    spare = sales.contract(customer["id"], [("FZ-NUT", 1)])  # the only one the run may cancel
    # New lines for a draft replace the old ones (once a 500: the new rows clashed with the old line numbers).
    changed = sales.patch(f"/api/v1/contracts/{draft['id']}", json={"lines": [
        {"product_code": "FZ-NUT", "quantity": "2"}, {"product_code": "FZ-BOLT", "quantity": "3"}]})
    assert changed.status_code == 200 and [l["product_code"] for l in changed.json["lines"]] == ["FZ-NUT", "FZ-BOLT"]
    confirmed = sales.contract(customer["id"], [("FZ-BOLT", 10)], confirm=True)
    hold_stock(var, confirmed["id"])

    def created(response) -> dict:
        assert response.status_code in (200, 201, 202), response
        return response.json

    note = created(sales.post(f"/api/v1/contracts/{confirmed['id']}/delivery-notes",
                              json={"lines": [{"product_code": "FZ-BOLT", "quantity": "4"}]}))
    plan = created(sales.post(f"/api/v1/contracts/{confirmed['id']}/receivables-plan", json={"installments": [
        {"label": "deposit", "percent": "30", "due_days_after": {"event": "signing", "days": 0}},
        {"label": "balance", "percent": "70", "due_date": "2030-01-31"}]}))
    schedule = created(sales.post("/api/v1/recurring-contracts", json={
        "source_contract_id": confirmed["id"], "interval": "monthly", "start_date": "2030-01-01"}))
    email = created(sales.post(f"/api/v1/contracts/{confirmed['id']}/send", json={}))
    quote, accepted = (created(sales.post("/api/v1/quotes", json={
        "customer_id": customer["id"], "lines": [{"product_code": "FZ-NUT", "quantity": "1"}]})) for _ in range(2))
    created(sales.post(f"/api/v1/quotes/{accepted['id']}/send"))
    created(sales.post(f"/api/v1/quotes/{accepted['id']}/accept"))
    return {
        "token": sales.token,
        "ids": {
            "customer_id": [customer["id"]],
            "contract_id": [confirmed["id"], draft["id"]],
            "source_contract_id": [confirmed["id"]],
            "code": ["FZ-BOLT", "FZ-NUT"],
            "product_code": ["FZ-BOLT", "FZ-NUT"],
            "quote_id": [quote["id"], accepted["id"]],
            "note_id": [note["id"]],
            "receivable_id": [r["id"] for r in plan["items"]],
            "schedule_id": [schedule["id"]],
            "email_id": [email["email_id"]],
            "name": ["sales", "production"],
        },
        # Ending actions get records of their own, so the rest of the run still finds live ones.
        "ids_for": {"/cancel": {"contract_id": [spare["id"]]}, "/reject": {"quote_id": [quote["id"]]}},
    }


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request):
    """schemathesis 4.32 relabels the running test through `Node._nodeid`, which pytest 9.2 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
