"""The quotes service's reactions: a contract made from a quote converts it; a rendered PDF is remembered."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update

from crmkit.messaging.consumer import Skip, only_if
from services.quotes import lifecycle
from services.quotes.models import Quote


def _find(session, quote_id) -> Quote | None:
    if not quote_id:
        return None
    return session.execute(select(Quote).where(Quote.id == str(quote_id)).with_for_update()).scalar_one_or_none()


@only_if(lambda envelope: bool(envelope.data.get("quote_id")))
def contract_created(envelope, session, ctx):
    quote = _find(session, envelope.data.get("quote_id"))
    if quote is None or not lifecycle.record_conversion(quote, envelope.data["contract_id"]):
        raise Skip()


@only_if(lambda envelope: envelope.data.get("kind") == "quote")
def document_rendered(envelope, session, ctx):
    data = envelope.data
    # Which field names the quote is the documents service's choice: accept each spelling it may use.
    for candidate in (data.get("quote_id"), data.get("owner_id"), envelope.correlation_id):
        quote = _find(session, candidate)
        if quote is not None:
            quote.document_id = data.get("document_id")
            return
    raise Skip()


def customer_reassigned(envelope, session, ctx):
    """A customer's quotes follow it to its new salesperson, as its contracts do at the gateway."""
    data = envelope.data
    at = datetime.fromisoformat(envelope.occurred_at.replace("Z", "+00:00"))
    session.execute(update(Quote).where(Quote.customer_id == data["customer_id"],
                                        or_(Quote.owner_since.is_(None), Quote.owner_since < at))
                    .values(owner_id=data["owner_id"], owner_since=at))


HANDLERS = {
    "contract.created": contract_created,
    "document.rendered": document_rendered,
    "customer.reassigned": customer_reassigned,
}
