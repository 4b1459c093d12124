"""A recurring schedule whose source contract is cancelled after it was made generates nothing more: the next
scheduler run pauses it with the reason, and resume refuses while the source stays cancelled."""
from __future__ import annotations

import pytest

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

    run = api.post(RUN, json={"as_of": "2031-04-15"}).json
    assert run["generated"] == [] and contracts_total(api) == before
    assert sorted(f["schedule_id"] for f in run["failed"]) == sorted([from_draft["id"], from_confirmed["id"]])
    assert all("cancelled" in f["error"] for f in run["failed"])
    for schedule, source in ((from_draft, draft), (from_confirmed, confirmed)):
        now = api.get(f"{SCHEDULES}/{schedule['id']}").json
        assert now["status"] == "paused", now
        assert source["number"] in now["last_error"] and "cancelled" in now["last_error"]
        assert [r["run_on"] for r in now["runs"]] == ["2031-01-31", "2031-02-28"]  # nothing more
        # The salesperson is told once, on the source's timeline (and by the recurring.failed event).
        assert timeline_types(api, source["id"]).count("recurring.failed") == 1

        refused = api.post(f"{SCHEDULES}/{schedule['id']}/resume")
        assert refused.status_code == 409 and "source_contract_id" in refused.json["error"]["fields"], refused
        assert api.get(f"{SCHEDULES}/{schedule['id']}").json["status"] == "paused"

    # Paused, they are no longer due: later runs neither generate nor report them again.
    later = api.post(RUN, json={"as_of": "2031-08-15"}).json
    assert (later["generated"], later["failed"]) == ([], [])
    assert contracts_total(api) == before
    assert timeline_types(api, confirmed["id"]).count("recurring.failed") == 1

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
    # Resume of a schedule not paused yet tells the caller too, rather than answer as if it would run.
    assert api.post(f"{SCHEDULES}/{schedule['id']}/resume").status_code == 409
    before = contracts_total(api)
    run = api.post(RUN, json={"as_of": "2031-03-15"}).json
    assert run["generated"] == [] and [f["schedule_id"] for f in run["failed"]] == [schedule["id"]]
    now = api.get(f"{SCHEDULES}/{schedule['id']}").json
    assert (now["status"], now["runs"]) == ("paused", []) and "cancelled" in now["last_error"]
    assert contracts_total(api) == before
