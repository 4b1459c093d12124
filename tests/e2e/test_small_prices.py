"""Unit prices to a fraction of a cent (a screw at 0.0125): priced, stored, listed, quoted and printed as typed,
with every amount still in cents."""
from __future__ import annotations

import re

import pytest

from support.infra import wait_for
from support.pdf import pdf_text


def fields_of(response) -> dict:
    return response.json["error"]["fields"]


def run_small_prices(api):
    screw = api.product("SCREW-M3", stock=100000, price="0.0125", name="十字盘头螺钉 M3×8", unit="只")
    assert screw["unit_price"] == "0.0125"
    assert api.get("/api/v1/products/SCREW-M3").json["unit_price"] == "0.0125"
    # Two decimals stay two: nothing a client already reads changes its text.
    assert api.product("NUT-M8", stock=100, price="3.5")["unit_price"] == "3.50"
    bad = api.post("/api/v1/products", json={"code": "WASHER", "name": "垫圈", "unit": "只", "unit_price": "0.00125",
                                             "tax_rate": "0.13"})
    assert bad.status_code == 422 and "unit_price" in fields_of(bad), bad
    changed = api.patch("/api/v1/products/NUT-M8", json={"unit_price": "3.475"})
    assert changed.status_code == 200 and changed.json["unit_price"] == "3.475", changed

    customer = api.customer(name="温州精密五金厂")
    contract = api.post("/api/v1/contracts", json={"customer_id": customer["id"], "lines": [
        {"product_code": "SCREW-M3", "quantity": "20000"},                          # 250.00
        {"product_code": "NUT-M8", "quantity": "3"},                               # 10.425 -> 10.43
        {"product_code": "SCREW-M3", "quantity": "333", "unit_price": "0.0333"},   # 11.0889 -> 11.09
    ]})
    assert contract.status_code == 201, contract
    lines = contract.json["lines"]
    assert [(l["unit_price"], l["amount"]) for l in lines] == [
        ("0.0125", "250.00"), ("3.475", "10.43"), ("0.0333", "11.09")]
    assert (contract.json["subtotal"], contract.json["tax_total"], contract.json["total"]) == (
        "271.52", "35.30", "306.82")  # tax per line on the rounded amount: 32.50 + 1.36 + 1.44
    too_fine = api.post("/api/v1/contracts", json={"customer_id": customer["id"], "lines": [
        {"product_code": "SCREW-M3", "quantity": "1", "unit_price": "0.01255"}]})
    assert too_fine.status_code == 422 and "lines.0.unit_price" in fields_of(too_fine), too_fine

    quote = api.post("/api/v1/quotes", json={"customer_id": customer["id"], "lines": [
        {"product_code": "SCREW-M3", "quantity": "1000"}]})
    assert quote.status_code == 201, quote
    assert (quote.json["lines"][0]["unit_price"], quote.json["lines"][0]["amount"]) == ("0.0125", "12.50")

    # The signed PDF prints the price as agreed, not rounded to cents.
    assert api.post(f"/api/v1/contracts/{contract.json['id']}/confirm").status_code == 200
    path = f"/api/v1/contracts/{contract.json['id']}/pdf"
    pdf = wait_for(lambda: (r := api.get(path)).status_code == 200 and r, timeout=60, message="the contract PDF")
    text = re.sub(r"\s+", "", pdf_text(pdf.content))
    for printed in ("0.0125", "3.475", "0.0333", "250.00", "10.43", "11.09", "306.82"):
        assert printed in text, (printed, text)
    again = api.get(f"/api/v1/contracts/{contract.json['id']}").json
    assert [l["unit_price"] for l in again["lines"]] == ["0.0125", "3.475", "0.0333"]


def test_small_prices_embedded(embedded):
    run_small_prices(embedded.api)


@pytest.mark.e2e
def test_small_prices_on_rabbitmq_and_postgresql(cluster):
    run_small_prices(cluster.api)
