"""Synchronous reads of other services, made with the caller's token: the catalogue, the customer, the company."""
from __future__ import annotations

from crmkit.errors import Unavailable, ValidationFailed
from crmkit.web.client import ServiceClient


def fetch_customer(settings, token: str, customer_id: str) -> dict:
    """The customer as the gateway shows it to the caller; one the caller may not use names customer_id."""
    reply = ServiceClient(settings, "contracts", timeout=3.0).get(f"/api/v1/customers/{customer_id}", token=token)
    if reply.status in (403, 404):
        raise ValidationFailed("Unknown customer.", {"customer_id": ["Unknown customer."]})
    if reply.status != 200:
        raise Unavailable(f"The customer could not be read ({reply.status}).")
    return reply.json()


def sender_context(settings, token: str, owner_id: str) -> tuple[dict | None, dict]:
    """(company settings, the salesperson) for a quote's document and email; what cannot be read is left out."""
    client = ServiceClient(settings, "contracts", timeout=3.0)
    company, owner = None, {"id": owner_id}
    try:
        reply = client.get("/api/v1/settings", token=token)
        if reply.status == 200:
            company = (reply.json() or {}).get("company")
        reply = client.get("/api/v1/users/me", token=token)
        me = reply.json() if reply.status == 200 else None
        # Only the caller's own record is readable by every role: the owner's details when they send it.
        if me and me.get("id") == owner_id:
            owner = {"id": owner_id, "username": me.get("username"), "email": me.get("email")}
    except Unavailable:
        pass  # the event still carries the quote itself; documents and notifications fall back on their defaults
    return company, owner
