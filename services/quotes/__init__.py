"""Quotes: offers to a customer, their lines and states, converted into contracts by the gateway."""


def spec():
    from crmkit.service import ServiceSpec
    from services.quotes.app import build_app
    from services.quotes.handlers import HANDLERS
    from services.quotes.models import TABLES
    return ServiceSpec(name="quotes", tables=TABLES, build_app=build_app, handlers=HANDLERS)
