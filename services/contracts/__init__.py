"""Contracts, the gateway: users, customers, settings, contracts, deliveries, receivables, recurring schedules."""


def spec():
    from crmkit.service import ServiceSpec
    from services.contracts.app import build_app
    from services.contracts.handlers import HANDLERS
    from services.contracts.models import TABLES
    from services.contracts.users import ensure_admin
    return ServiceSpec(name="contracts", tables=TABLES, build_app=build_app, handlers=HANDLERS,
                       on_start=ensure_admin)
