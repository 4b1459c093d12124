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
    for chunk in _url_sized(codes):
        reply = client.get("/api/v1/products", token=token, params={"codes": ",".join(chunk), "limit": 200})
        if reply.status != 200:
            raise Unavailable(f"The catalogue answered {reply.status}.")
        for item in reply.json()["items"]:
            found[item["code"]] = item
    return found


# The codes go in the query string, and a web server refuses a request line past about 4 KiB (gunicorn: 4094
# bytes): 200 codes of 64 characters would be 13 KiB. Each code counts with its separator written as %2C.
MAX_CODES, MAX_QUERY_CHARS = 200, 3000


def _url_sized(codes: list[str]):
    """The codes in chunks of at most MAX_CODES whose query stays under MAX_QUERY_CHARS."""
    chunk, size = [], 0
    for code in codes:
        if chunk and (len(chunk) == MAX_CODES or size + len(code) + 3 > MAX_QUERY_CHARS):
            yield chunk
            chunk, size = [], 0
        chunk.append(code)
        size += len(code) + 3
    if chunk:
        yield chunk


def availability(settings, token: str, codes) -> dict[str, Decimal] | None:
    """code -> available quantity, or None when inventory cannot be asked right now."""
    try:
        return {code: Decimal(p["available"]) for code, p in fetch_products(settings, token, codes).items()}
    except Unavailable:
        return None
