"""Synchronous reads of other services, made with the caller's token: the catalogue, the customer, the company."""
from __future__ import annotations

from decimal import Decimal

from crmkit.errors import Unavailable, ValidationFailed
from crmkit.web.client import ServiceClient


def fetch_products(settings, token: str, codes) -> dict[str, dict]:
    """code -> product (SPEC shape) for the codes that exist; Unavailable when inventory cannot answer."""
    codes = sorted({c for c in codes if c})
    if not codes:
        return {}
    client = ServiceClient(settings, "inventory", timeout=3.0)
    found = {}
    for start in range(0, len(codes), 200):
        chunk = codes[start:start + 200]
        reply = client.get("/api/v1/products", token=token, params={"codes": ",".join(chunk), "limit": 200})
        if reply.status != 200:
            raise Unavailable(f"The catalogue answered {reply.status}.")
        for item in reply.json()["items"]:
            found[item["code"]] = item
    return found


def availability(settings, token: str, codes) -> dict[str, Decimal] | None:
    """code -> available quantity, or None when inventory cannot be asked right now."""
    try:
        return {code: Decimal(p["available"]) for code, p in fetch_products(settings, token, codes).items()}
    except Unavailable:
        return None


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
