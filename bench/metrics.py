"""Prometheus series of the services, scraped before and after the load: handler time, queue wait, publishes."""
from __future__ import annotations

import math

import requests
from prometheus_client.parser import text_string_to_metric_families

Series = dict[tuple[str, tuple], float]  # (sample name, sorted labels) -> value, summed over processes


def scrape(urls: list[str]) -> Series:
    """Every sample of every URL, summed across URLs (scaled workers each hold their own registry)."""
    total: Series = {}
    for url in urls:
        try:
            text = requests.get(url, timeout=10).text
        except requests.RequestException:
            continue
        for family in text_string_to_metric_families(text):
            if not family.name.startswith("crm_"):
                continue
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                total[key] = total.get(key, 0.0) + sample.value
    return total


def diff(before: Series, after: Series) -> Series:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) != 0}


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Estimate a quantile from cumulative histogram buckets [(le, count)], interpolating inside a bucket."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            width = count - prev_count
            return prev_le + (le - prev_le) * ((rank - prev_count) / width if width else 1.0)
        prev_le, prev_count = le, count
    return prev_le


def histograms(delta: Series, name: str) -> dict[tuple[str, str], dict]:
    """(service, type) -> {count, mean_ms, p50_ms, p95_ms} of one histogram's change over the run."""
    groups: dict[tuple[str, str], dict] = {}
    for (sample, labels), value in delta.items():
        labels = dict(labels)
        key = (labels.get("service", "?"), labels.get("type", "?"))
        if sample == f"{name}_count":
            groups.setdefault(key, {"buckets": []})["count"] = value
        elif sample == f"{name}_sum":
            groups.setdefault(key, {"buckets": []})["sum"] = value
        elif sample == f"{name}_bucket":
            groups.setdefault(key, {"buckets": []})["buckets"].append((float(labels["le"]), value))
    out = {}
    for key, g in groups.items():
        count = g.get("count", 0)
        if count <= 0:
            continue
        buckets = sorted(g["buckets"])
        p50, p95 = _quantile(buckets, 0.5), _quantile(buckets, 0.95)
        out[key] = {"count": int(count), "mean_ms": round(g.get("sum", 0.0) / count * 1000, 1),
                    "p50_ms": None if p50 is None else round(p50 * 1000, 1),
                    "p95_ms": None if p95 is None else round(p95 * 1000, 1)}
    return out


def published(delta: Series) -> dict[str, int]:
    """service -> events its relay published during the run."""
    out: dict[str, int] = {}
    for (sample, labels), value in delta.items():
        if sample == "crm_events_published_total":
            service = dict(labels).get("service", "?")
            out[service] = out.get(service, 0) + int(value)
    return out
