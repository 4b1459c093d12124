"""A recurring schedule whose source contract is cancelled after it was made generates nothing more: the
cancellation pauses it, saying why, and resume refuses while the source stays cancelled. A scheduler run that was
generating a period at that moment pauses it itself."""
from __future__ import annotations

import pytest
import sqlalchemy

SCHEDULES = "/api/v1/recurring-contracts"
RUN = "/api/v1/admin/scheduler/run"


def contracts_total(api) -> int:
    return api.get("/api/v1/contracts", params={"limit": 1}).json["total"]


def timeline_types(api, contract_id) -> list[str]:
    return [e["type"] for e in api.get(f"/api/v1/contracts/{contract_id}/timeline", params={"limit": 200})
            .json["items"]]


def schedule_of(api, source_id: str) -> dict:
    made = api.post(SCHEDULES, json={"source_contract_id": source_id, "interval": "monthly",
                                     "start_date": "2031-01-31"})
    assert made.status_code == 201, made
    return made.json


def test_a_schedule_stops_and_is_paused_once_its_source_is_cancelled(embedded):
    stops_and_pauses(embedded.api)


@pytest.mark.e2e
def test_the_same_on_rabbitmq_and_postgresql(cluster):
    # The source is read FOR SHARE there, so a cancel and a period being generated do not cross.
    stops_and_pauses(cluster.api)


def stops_and_pauses(api):
    api.product("BOX", stock=50, price="5.00")
    customer = api.customer()
    # A draft source is a template: it generates (the periods' contracts have their own lifecycle).
    draft = api.contract(customer["id"], [("BOX", 1)])
    confirmed = api.contract(customer["id"], [("BOX", 2)], confirm=True)
    from_draft, from_confirmed = schedule_of(api, draft["id"]), schedule_of(api, confirmed["id"])
    first = api.post(RUN, json={"as_of": "2031-02-15"}).json
    assert sorted((g["schedule_id"], g["run_on"]) for g in first["generated"]) == sorted(
        (s["id"], day) for s in (from_draft, from_confirmed) for day in ("2031-01-31", "2031-02-28"))

    for source in (draft, confirmed):
        cancelled = api.post(f"/api/v1/contracts/{source['id']}/cancel")
        assert cancelled.status_code == 200, cancelled
    before = contracts_total(api)

    # Paused by the cancellation itself: the schedule says so at once, not at the next run.
    for schedule, source in ((from_draft, draft), (from_confirmed, confirmed)):
        now = api.get(f"{SCHEDULES}/{schedule['id']}").json
        assert now["status"] == "paused", now
        assert source["number"] in now["last_error"] and "cancelled" in now["last_error"]
        assert [r["run_on"] for r in now["runs"]] == ["2031-01-31", "2031-02-28"]
        assert timeline_types(api, source["id"]).count("recurring.paused") == 1

        refused = api.post(f"{SCHEDULES}/{schedule['id']}/resume")
        assert refused.status_code == 409 and "source_contract_id" in refused.json["error"]["fields"], refused
        assert api.get(f"{SCHEDULES}/{schedule['id']}").json["status"] == "paused"

    # Paused, they are not due: later runs neither generate them nor report them as failures (the salesperson
    # cancelled the contract; nothing failed).
    for as_of in ("2031-04-15", "2031-08-15"):
        run = api.post(RUN, json={"as_of": as_of}).json
        assert (run["generated"], run["failed"]) == ([], [])
    assert contracts_total(api) == before
    for source in (draft, confirmed):
        assert "recurring.failed" not in timeline_types(api, source["id"])

    # A new schedule on the cancelled contract was and stays refused at once.
    again = api.post(SCHEDULES, json={"source_contract_id": confirmed["id"], "interval": "monthly",
                                      "start_date": "2031-09-01"})
    assert again.status_code == 422 and "source_contract_id" in again.json["error"]["fields"]


def test_a_schedule_whose_source_is_cancelled_before_its_first_run_generates_nothing(embedded):
    api = embedded.api
    api.product("BOX", stock=5, price="5.00")
    source = api.contract(api.customer()["id"], [("BOX", 1)])
    schedule = schedule_of(api, source["id"])
    assert api.post(f"/api/v1/contracts/{source['id']}/cancel").status_code == 200
    now = api.get(f"{SCHEDULES}/{schedule['id']}").json
    assert (now["status"], now["runs"]) == ("paused", []) and "cancelled" in now["last_error"]
    assert api.post(f"{SCHEDULES}/{schedule['id']}/resume").status_code == 409
    before = contracts_total(api)
    run = api.post(RUN, json={"as_of": "2031-03-15"}).json
    assert (run["generated"], run["failed"]) == ([], [])
    assert contracts_total(api) == before


def test_a_run_that_was_generating_when_the_source_was_cancelled_pauses_the_schedule_itself(embedded):
    """A scheduler run that was generating a period when the source was cancelled (or a cancellation that stopped
    before pausing its schedules) leaves a schedule active on a cancelled source. The next run finds the source
    cancelled, generates nothing and pauses the schedule, once."""
    api = embedded.api
    api.product("BOX", stock=5, price="5.00")
    source = api.contract(api.customer()["id"], [("BOX", 1)])
    schedule = schedule_of(api, source["id"])
    assert api.post(f"/api/v1/contracts/{source['id']}/cancel").status_code == 200
    # What such a schedule looks like: still active on a cancelled source.
    engine = sqlalchemy.create_engine(f"sqlite:///{embedded.var / 'contracts.sqlite'}")
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE recurring_schedules SET status = 'active', paused_on = NULL, "
                                     "last_error = NULL WHERE id = :id"), {"id": schedule["id"]})
    engine.dispose()
    before = contracts_total(api)

    run = api.post(RUN, json={"as_of": "2031-03-15"}).json
    assert run["generated"] == [] and [f["schedule_id"] for f in run["failed"]] == [schedule["id"]]
    assert "cancelled" in run["failed"][0]["error"]
    now = api.get(f"{SCHEDULES}/{schedule['id']}").json
    assert (now["status"], now["runs"]) == ("paused", []) and source["number"] in now["last_error"]
    assert contracts_total(api) == before
    assert timeline_types(api, source["id"]).count("recurring.failed") == 1
    assert api.post(RUN, json={"as_of": "2031-06-15"}).json["failed"] == []
