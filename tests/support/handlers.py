"""Running one service's event handler on a real database, as its worker would."""
from __future__ import annotations

from crmkit.messaging.consumer import Skip, concerns, handler_session


def run_handler(db, handlers: dict, envelope, ctx=None) -> bool:
    """The envelope's handler in the session its worker gives it (handler_session); False when the worker would
    acknowledge it untouched (an only_if the event does not meet) or the handler skipped it."""
    handler = handlers[envelope.type]
    if not concerns(handler, envelope):
        return False
    try:
        with handler_session(db, handler) as session:
            handler(envelope, session, ctx)
        return True
    except Skip:
        return False
