"""Reads of the inventory's catalogue (names, prices, tax, availability), used by the gateway and quotes."""
from __future__ import annotations

from decimal import Decimal

from crmkit.errors import Unavailable
from crmkit.web.client import ServiceClient


def fetch_products(settings, token: str, codes) -> dict[str, dict]:
    """code -> product (SPEC shape) for the codes that exist; raises Unavailable when inventory is down."""
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
