"""Contracts, the gateway: users, customers, settings, contracts, deliveries, receivables, recurring schedules."""


def spec():
    from crmkit.service import ServiceSpec
    from crmkit.messaging.topology import DEAD_QUEUE
    from services.contracts.app import build_app
    from services.contracts.dead_letters import TABLES as DEAD_LETTER_TABLES
    from services.contracts.dead_letters import record as record_dead_letter
    from services.contracts.fulfilment_models import TABLES as FULFILMENT_TABLES
    from services.contracts.handlers import HANDLERS
    from services.contracts.models import TABLES
    from services.contracts.scheduler import scheduler_loop
    from services.contracts.users import ensure_admin
    return ServiceSpec(name="contracts", tables=TABLES + FULFILMENT_TABLES + DEAD_LETTER_TABLES,
                       build_app=build_app, handlers=HANDLERS, on_start=ensure_admin, loops=[scheduler_loop],
                       # Every service's dead letters land in the gateway's database: admins list and replay them.
                       raw_consumers={DEAD_QUEUE.name: record_dead_letter})
