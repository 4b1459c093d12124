"""The whole RabbitMQ topology as data: who publishes where and who consumes what.

Read this module to learn the saga: each service's queue lists the event types it binds.
"""
from __future__ import annotations

from amqp.exceptions import NotFound
from kombu import Exchange, Queue

EVENTS = Exchange("crm.events", type="topic", durable=True)
DEPARTMENTS = Exchange("crm.departments", type="topic", durable=True)
DEAD = Exchange("crm.dead", type="fanout", durable=True)

EVENT_TYPES = (
    "quote.sent", "quote.accepted", "contract.created", "contract.confirmed", "contract.cancelled",
    "stock.reserved", "stock.shortage", "stock.released", "production.requested", "procurement.requested",
    "document.rendered", "document.failed", "email.sent", "email.failed", "delivery.created",
    "delivery.shipped", "receivables.planned", "receivable.paid", "receivable.overdue",
    "recurring.generated", "department.notified",
    # Additions to the public list: requests one service makes of another.
    "document.requested", "email.requested", "stock.allocated", "recurring.failed",
    # A payment that leaves its installment partly paid (the one that settles it is receivable.paid).
    "payment.recorded",
    # A delivered contract paid in full; a customer handed to another salesperson (its quotes follow).
    "contract.completed", "customer.reassigned",
    # An email not gone after ten minutes, still being retried (its salesperson is told once).
    "email.delayed",
    # A payment entered by mistake, taken back: its installment owes it again.
    "payment.voided",
)

DEPARTMENT_NAMES = ("production", "procurement", "warehouse", "finance", "sales")

# service -> {queue name: event types bound to it}
CONSUMES: dict[str, dict[str, tuple[str, ...]]] = {
    "contracts": {
        "crm.contracts.timeline": (
            "quote.sent", "quote.accepted",
            "stock.reserved", "stock.shortage", "stock.released", "stock.allocated",
            "production.requested", "procurement.requested",
            "document.rendered", "document.failed", "email.sent", "email.delayed", "email.failed",
            "department.notified",
        ),
    },
    "quotes": {
        "crm.quotes.conversions": ("contract.created", "document.rendered", "customer.reassigned"),
    },
    "inventory": {
        "crm.inventory.stock": ("contract.confirmed", "contract.cancelled", "delivery.shipped"),
    },
    "documents": {
        "crm.documents.render": (
            "contract.confirmed", "quote.sent", "delivery.created", "receivables.planned", "document.requested",
        ),
    },
    "notifications": {
        "crm.notifications.outgoing": (
            "contract.confirmed", "contract.cancelled", "document.rendered", "stock.shortage", "production.requested",
            "procurement.requested", "delivery.created", "delivery.shipped", "receivables.planned",
            "receivable.paid", "payment.recorded", "payment.voided", "receivable.overdue", "email.requested",
            "quote.sent",
            "recurring.failed",
        ),
    },
}

DEAD_QUEUE = Queue("crm.dead", exchange=DEAD, routing_key="#", durable=True)


def service_queues(service: str) -> list[Queue]:
    """The durable queues one service consumes from, each with one binding per event type."""
    from kombu import binding
    return [
        Queue(name, exchange=EVENTS, bindings=[binding(EVENTS, routing_key=t) for t in types], durable=True)
        for name, types in CONSUMES.get(service, {}).items()
    ]


def department_queue(name: str) -> Queue:
    return Queue(f"crm.department.{name}", exchange=DEPARTMENTS, routing_key=name, durable=True)


def all_queues() -> list[Queue]:
    queues = [q for service in CONSUMES for q in service_queues(service)]
    queues += [department_queue(d) for d in DEPARTMENT_NAMES]
    queues.append(DEAD_QUEUE)
    return queues


def declare_all(channel) -> None:
    """Declare every exchange, queue and binding; idempotent, done by each process that connects."""
    for exchange in (EVENTS, DEPARTMENTS, DEAD):
        exchange(channel).declare()
    departments = {department_queue(d).name for d in DEPARTMENT_NAMES}
    for queue in all_queues():
        if queue.name in departments:
            _declare_unless_present(channel, queue)
        else:
            queue(channel).declare()


def _declare_unless_present(channel, queue: Queue) -> None:
    """A department queue is its department's as much as ours: one that exists is only bound, whatever its owner
    declared it with (a dead-letter exchange, a length limit). Declared again with our arguments, RabbitMQ would
    refuse it (PRECONDITION_FAILED) and close the channel every relay and worker of the system uses."""
    opener = getattr(channel.connection, "channel", None)
    if opener is None:  # the embedded broker: nobody else declares its queues
        queue(channel).declare()
        return
    probe = opener()  # a passive declare of a missing queue closes its channel: not the one we keep
    try:
        probe.queue_declare(queue.name, passive=True)
        exists = True
    except NotFound:
        exists = False
    finally:
        try:
            probe.close()
        except Exception:  # already closed by the broker
            pass
    bound = queue(channel)
    if exists:
        bound.queue_bind()
    else:
        bound.declare()


def queue_of(name: str) -> Queue:
    for queue in all_queues():
        if queue.name == name:
            return queue
    raise KeyError(name)
