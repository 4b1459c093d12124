"""Schemathesis against the gateway's own /api/openapi.json, in-process, as a salesperson (and as an admin for
what only admins and managers may do).

Every operation of the document is fuzzed with valid and invalid input; every answer must be below 500, every
4xx must be the JSON error shape, and every answer must match the document (status, content type, schema).
`make test` runs a few examples per operation; `make fuzz` runs 500 (FUZZ_EXAMPLES=… to change).
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta

import hypothesis.strategies as st
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from services.contracts.openapi import EXAMPLE_CONTRACT_ID, EXAMPLE_CUSTOMER_ID, EXAMPLE_PRODUCT_CODE


@schemathesis.check
def json_error_shape(ctx, response, case):
    """Every 4xx is {"error": {"code": str, "message": str, "fields"?: {name: [...]}}}."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.status_code} without a JSON body: {response.content[:200]!r}")
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str), \
        f"{response.status_code} not in the error shape: {body!r}"[:500]
    assert isinstance(error.get("fields", {}), dict), f"error.fields is not an object: {body!r}"[:500]
    return True


ADMIN_TAGS = ("accounts", "settings", "products", "admin", "documents")
CHECKS = [not_a_server_error, json_error_shape, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def calls() -> Counter:
    return Counter()


@pytest.fixture(scope="module")
def api_schema(fuzz_system, fuzz_examples, fuzz_summary, calls):
    system, seeded = fuzz_system
    config = schemathesis.Config.from_dict({
        "suppress-health-check": ["all"],
        "generation": {"max-examples": fuzz_examples, "mode": "all", "database": "none",
                       # the short run in `make test` is the same every time; `make fuzz` explores
                       "deterministic": fuzz_examples <= 50},
        # The coverage phase's boundary cases are many per operation: worth it in the long run only.
        "phases": {"coverage": {"enabled": fuzz_examples > 50}},
    })
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", system.app, config=config)

    def known_ids(context) -> dict:
        path = context.operation.path if context.operation else ""
        overrides = next((v for suffix, v in seeded["ids_for"].items() if path.endswith(suffix)), {})
        return {**seeded["ids"], **overrides}

    def with_known_ids(value, ids: dict) -> st.SearchStrategy:
        """A field or parameter naming a record may get the id of one that exists (generated ones never do)."""
        if isinstance(value, dict):
            return st.fixed_dictionaries({
                name: st.sampled_from([*ids[name], item]) if name in ids and isinstance(item, str)
                else with_known_ids(item, ids) for name, item in value.items()})
        if isinstance(value, list) and value and len(value) <= 20:
            return st.tuples(*(with_known_ids(item, ids) for item in value)).map(list)
        return st.just(value)

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        return with_known_ids(path_parameters, known_ids(context))

    @schema.hook
    def flatmap_query(context, query):
        return with_known_ids(query, known_ids(context))

    @schema.hook
    def flatmap_body(context, body):
        return with_known_ids(body, known_ids(context))

    @schema.hook
    def after_call(context, case, response):
        # Probes of undocumented methods (OPTIONS, TRACE…) on an operation's path are counted apart.
        label = case.operation.label if case.method.upper() == case.operation.method.upper() else "probe"
        calls[(label, response.status_code // 100)] += 1

    yield schema
    _report(schema, calls, fuzz_summary, fuzz_examples)


def _report(schema, calls: Counter, summary: list[str], examples: int) -> None:
    """Requests per operation and status class, and a failure for any operation that was never called."""
    labels = sorted(op.ok().label for op in schema.get_all_operations() if isinstance(op, Ok))
    by_class = Counter()
    for (_, status_class), count in calls.items():
        by_class[status_class] += count
    probes = sum(count for (label, _), count in calls.items() if label == "probe")
    summary.append(f"{len(labels)} operations, up to {examples} generated examples each, "
                   f"{sum(calls.values())} requests ({probes} of them undocumented methods): "
                   + ", ".join(f"{k}xx {v}" for k, v in sorted(by_class.items())))
    for label in labels:
        counts = [f"{k}xx {calls[(label, k)]}" for k in (2, 4, 5) if calls[(label, k)]]
        summary.append(f"  {label}: {', '.join(counts) or 'never called'}")
    never = [label for label in labels if not any(calls[(label, k)] for k in (1, 2, 3, 4, 5))]
    assert not never, f"operations the fuzzer never called: {never}"


@pytest.fixture(scope="module")
def sales_headers(fuzz_system):
    return {"Authorization": f"Bearer {fuzz_system[1]['token']}"}


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_api(case, sales_headers, example_ids):
    if isinstance(case.body, (dict, list)):
        case.body = _swap(case.body, example_ids)
    if case.operation.path.endswith("/recurring-contracts") and isinstance(case.body, dict) \
            and "start_date" in case.body:
        case.body = {**case.body, "start_date": _within_a_month(case.body["start_date"])}
    case.call_and_validate(headers=sales_headers, checks=CHECKS)


@schema.include(tag=list(ADMIN_TAGS)).parametrize()
def test_admin_api(case, fuzz_system, example_ids):
    """What a salesperson may not do (users, settings, catalogue, operators, documents), fuzzed as an admin."""
    if isinstance(case.body, (dict, list)):
        case.body = _swap(case.body, example_ids)
    if case.operation.path.endswith("/scheduler/run") and isinstance(case.body, dict) and "as_of" in case.body:
        case.body = {**case.body, "as_of": _within_a_month(case.body["as_of"])}
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_system[0].api.token}"}, checks=CHECKS)


@pytest.fixture(scope="module")
def example_ids(fuzz_system) -> dict:
    """The ids in the document's request examples → records of this run, so the examples can succeed."""
    ids = fuzz_system[1]["ids"]
    return {EXAMPLE_CUSTOMER_ID: ids["customer_id"][0], EXAMPLE_CONTRACT_ID: ids["contract_id"][0],
            EXAMPLE_PRODUCT_CODE: ids["code"][0]}


def _within_a_month(value):
    """A valid date moved to within a month of today. A schedule starting years back, or a scheduler run years
    ahead, makes every schedule catch up 100 periods per run: correct, but thousands of contracts per request,
    which would turn the fuzz run into a throughput test of the scheduler."""
    try:
        day = date.fromisoformat(value)
    except (TypeError, ValueError):
        return value
    today = date.today()
    return min(max(day, today - timedelta(days=31)), today + timedelta(days=31)).isoformat()


def _swap(value, mapping: dict):
    if isinstance(value, dict):
        return {k: _swap(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, mapping) for v in value]
    return mapping.get(value, value) if isinstance(value, str) else value
