"""Quotes: offers to a customer, their lines and states, converted into contracts by the gateway."""


def spec():
    from crmkit.service import ServiceSpec
    from services.quotes.app import build_app
    return ServiceSpec(name="quotes", tables=[], build_app=build_app, handlers={})
