"""Operator actions: run the scheduler as of a date (what the worker's timer does as of today)."""
from __future__ import annotations

from flask import Blueprint, current_app

from crmkit.timeutil import business_date
from crmkit.web.auth import caller
from crmkit.web.requests import load
from services.contracts.fulfilment_schemas import SchedulerRunIn
from services.contracts.scheduler import run_due

bp = Blueprint("admin", __name__, url_prefix="/api/v1/admin")


@bp.post("/scheduler/run")
def run_scheduler():
    caller().require("admin")
    data = load(SchedulerRunIn(), required=False)
    as_of = data.get("as_of") or business_date()
    report = run_due(current_app.extensions["crm_db"], current_app.config["CRM_SETTINGS"], as_of)
    return report.to_dict()
