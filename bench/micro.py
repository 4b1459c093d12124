"""Micro-benchmarks: ms per 2-page Chinese contract PDF, and outbox relay events/s to RabbitMQ."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench import infra
from bench.seed import COMPANY


def contract_doc(lines: int) -> dict:
    """A contract as the documents service receives it (the contract.confirmed payload)."""
    items = []
    for i in range(lines):
        qty = 10 + i * 3
        price = f"{12 + i % 40}.50"
        amount = f"{qty * (12 + i % 40) + qty * 0.5:.2f}"
        items.append({"line_no": i + 1, "product_code": f"BN-{i + 1:04d}", "name": f"六角螺栓 M{8 + i % 10} 镀锌 8.8 级",
                      "unit": "件", "quantity": str(qty), "unit_price": price, "discount": "0", "tax_rate": "0.13",
                      "amount": amount, "tax_amount": f"{float(amount) * 0.13:.2f}"})
    return {"number": "HT-2026-000123", "version": 1, "language": "zh-CN", "currency": "CNY",
            "company": {**COMPANY, "terms": "1. 质量标准：按国家标准 GB/T 5782 执行。\n2. 交货地点：买方仓库。",
                        "footer": "宁波恒达五金有限公司 · 销售部"},
            "customer": {"name": "杭州明远机械有限公司", "address": "浙江省杭州市余杭区文一西路 969 号",
                         "contact_person": "王经理", "email": "buyer@example.cn", "phone": "0571-8888 1234"},
            "lines": items, "subtotal": "12345.60", "tax_total": "1604.93", "total": "13950.53",
            "total_in_words": "人民币壹万叁仟玖佰伍拾元伍角叁分", "delivery_date": "2026-12-31",
            "payment_terms": "签约后 30 天内付清全款", "created_at": "2026-11-26T08:00:00Z",
            "confirmed_at": "2026-11-26T08:05:00Z"}


def cpu_calibration() -> dict:
    """CPU ms for a fixed pure-Python loop: compares runs on a busy machine with runs on a quiet one."""
    best = None
    for _ in range(3):
        start = time.process_time()
        total = 0
        for i in range(3_000_000):
            total += i
        spent = time.process_time() - start
        best = spent if best is None else min(best, spent)
    return {"python_loop_3m_cpu_ms": round(best * 1000, 1)}


def _pages(pdf: bytes) -> int:
    import re
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))


def pdf_benchmark(runs: int = 50) -> dict:
    """Median ms per 2-page Chinese contract, after warm-up, with the embedded CJK font."""
    try:
        from services.documents.render import render
    except ImportError as exc:
        return {"pdf_ms": None, "pdf_note": f"renderer not available: {exc}"}
    try:
        lines = 12
        pdf = render("contract", contract_doc(lines))
        while _pages(pdf) < 2 and lines < 200:
            lines += 4
            pdf = render("contract", contract_doc(lines))
        doc = contract_doc(lines)
        for _ in range(3):
            render("contract", doc)
        times, cpu = [], []
        for _ in range(runs):
            start, cpu_start = time.perf_counter(), time.process_time()
            pdf = render("contract", doc)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
    except Exception as exc:  # a renderer still being built: report, don't fail the run
        return {"pdf_ms": None, "pdf_note": f"render failed: {type(exc).__name__}: {exc}"[:300]}
    times.sort()
    # CPU time too: on a shared, busy machine a render is preempted and its wall time says more about the
    # neighbours than about the renderer.
    return {"pdf_ms": round(statistics.median(times) * 1000, 1), "pdf_cpu_ms": round(statistics.median(cpu) * 1000, 1),
            "pdf_p95_ms": round(times[int(0.95 * len(times)) - 1] * 1000, 1),
            "pdf_pages": _pages(pdf), "pdf_lines": lines, "pdf_bytes": len(pdf), "pdf_runs": runs,
            "pdf_font_embedded": b"/FontFile2" in pdf}


def relay_benchmark(amqp_url: str | None, rows: int = 5000, database_url: str | None = None,
                    relay_class=None) -> dict:
    """Events/s of crmkit's Relay publishing `rows` pre-inserted outbox rows to a fresh vhost."""
    if not amqp_url or not infra.rabbitmq_reachable(amqp_url):
        return {"relay_events_per_s": None, "relay_note": "RabbitMQ not reachable"}
    from sqlalchemy import insert

    from crmkit.db import Database
    from crmkit.messaging import topology
    from crmkit.messaging.envelope import Envelope
    from crmkit.messaging.outbox import Relay
    from crmkit.models import KIT_TABLES, OutboxMessage
    from crmkit.settings import Settings

    vhost_url, vhost = infra.make_vhost(amqp_url, "crm_bench_relay")
    pg_name = None
    tmp = tempfile.TemporaryDirectory(prefix="crm-bench-relay-")
    try:
        if database_url:
            url, pg_name = infra.make_pg_database(database_url, "crm_bench_relay")
            db_kind = "PostgreSQL"
        else:
            url, db_kind = f"sqlite:///{Path(tmp.name) / 'relay.sqlite'}", "SQLite"
        env = {"AMQP_URL": vhost_url, "CRM_VAR_DIR": tmp.name, "CRM_SECRET_KEY": "x",
               "DATABASE_URL" if database_url else "CONTRACTS_DATABASE_URL": url}
        settings = Settings.from_env("contracts", env)
        db = Database(settings.database_url, settings.db_schema, tables=KIT_TABLES)
        db.create_all()
        body = contract_doc(5)
        with db.session() as session:
            values = []
            for i in range(rows):
                envelope = Envelope(type="contract.confirmed", source="contracts", data=body,
                                    correlation_id=f"bench-{i}")
                values.append({"id": envelope.id, "exchange": topology.EVENTS.name,
                               "routing_key": envelope.type, "body": envelope.to_json(), "published": False,
                               "attempts": 0})
            session.execute(insert(OutboxMessage), values)
        relay = (relay_class or Relay)(db, settings)
        relay.publish_batch()  # connect and declare outside the timing; publishes the first batch
        start, cpu_start = time.perf_counter(), time.process_time()
        published = 0
        while True:
            count = relay.publish_batch()
            if not count:
                break
            published += count
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        relay._reset()
        db.dispose()
        return {"relay_events_per_s": round(published / elapsed, 1) if elapsed else None,
                "relay_events": published, "relay_cpu_us_per_event": round(cpu / published * 1e6, 1),
                "relay_database": db_kind, "relay_batch_size": relay.batch_size,
                "relay_message_bytes": len(values[0]["body"].encode())}
    finally:
        infra.drop_vhost(vhost)
        if pg_name:
            infra.drop_pg_database(database_url, pg_name)
        tmp.cleanup()
