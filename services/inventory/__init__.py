"""Inventory: the product catalogue, stock on hand and reserved, production and procurement requests."""


def spec():
    from crmkit.service import ServiceSpec
    from services.inventory.app import build_app
    from services.inventory.handlers import HANDLERS
    from services.inventory.models import TABLES
    return ServiceSpec(name="inventory", tables=TABLES, build_app=build_app, handlers=HANDLERS)
