"""Inventory's reactions to events: reserve on confirm, release on cancel, take out on shipment."""
from services.inventory import stock


def contract_confirmed(envelope, session, ctx):
    stock.reserve_contract(session, envelope.data, envelope.correlation_id or envelope.data["contract_id"])


def contract_cancelled(envelope, session, ctx):
    stock.release_contract(session, envelope.data, envelope.correlation_id)


def delivery_shipped(envelope, session, ctx):
    stock.ship(session, envelope.data, envelope.correlation_id)


HANDLERS = {
    "contract.confirmed": contract_confirmed,
    "contract.cancelled": contract_cancelled,
    "delivery.shipped": delivery_shipped,
}
