"""GET/PUT /settings: the company, shortage policy and defaults; only admins write."""
from __future__ import annotations

from flask import Blueprint, current_app

from crmkit.web.auth import caller
from crmkit.web.requests import load
from services.contracts.schemas import SettingsSchema
from services.contracts.settings_store import load_settings, update_settings

bp = Blueprint("settings", __name__, url_prefix="/api/v1/settings")
schema = SettingsSchema()


@bp.get("")
def get_settings():
    with current_app.extensions["crm_db"].session() as session:
        return schema.dump(load_settings(session))


@bp.put("")
def put_settings():
    caller().require("admin")
    data = load(schema)  # only the keys the body has: the others keep their values
    with current_app.extensions["crm_db"].session() as session:
        return schema.dump(update_settings(session, schema.dump(data)))
