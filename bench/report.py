"""Turning one run into numbers: percentiles, stage times, the JSON result and its markdown table."""
from __future__ import annotations

import json
from pathlib import Path

from bench import metrics
from crmkit import timing

# The row of the services table for the email senders, whose queue is a table, not a RabbitMQ queue.
EMAIL_ROW = "email (queue wait: due → a sender starts it; handler: PDF fetch + SMTP)"


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100) of unsorted values; None when empty."""
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def spread(values_s: list[float]) -> dict:
    return {"p50_ms": ms(percentile(values_s, 50)), "p95_ms": ms(percentile(values_s, 95)),
            "p99_ms": ms(percentile(values_s, 99)), "max_ms": ms(max(values_s) if values_s else None),
            "n": len(values_s)}


def where_time_went(timed: list[tuple[float, str | None]]) -> dict | None:
    """POST /contracts split by its Server-Timing: mean ms of the whole answer as the client saw it, of the
    handler (`app`), its statements (`db`), its catalogue read (`inventory`), and what was spent outside the
    handler (the client's and gunicorn's side, waiting for a thread or a core), over all answers and over the
    slowest 1 %: whether a slow tail is our code, the database, inventory or a busy host."""
    rows = []
    for seconds, header in timed:
        spent = timing.parse(header)
        if "app" in spent:
            rows.append({"client": seconds * 1000, **spent, "outside_handler": seconds * 1000 - spent["app"]})
    if not rows:
        return None
    rows.sort(key=lambda row: row["client"])
    slowest = rows[-max(1, len(rows) // 100):]
    keys = ("client", "app", "db", "inventory", "outside_handler")

    def mean(group):
        return {k: round(sum(row.get(k, 0.0) for row in group) / len(group), 1) for k in keys} | {"n": len(group)}

    return {"all": mean(rows), "slowest_1_percent": mean(slowest)}


STAGES = (
    ("confirm → stock.reserved", "contract.confirmed", ("stock.reserved", "stock.shortage")),
    ("confirm → document.rendered", "contract.confirmed", ("document.rendered",)),
    ("document.rendered → email accepted by SMTP", "document.rendered", ("@smtp",)),
    ("document.rendered → email.sent", "document.rendered", ("email.sent",)),
    ("confirm → department.notified", "contract.confirmed", ("department.notified",)),
    ("confirm → saga complete", "contract.confirmed", ("@done",)),
)


def per_saga(processes: list[dict], idle: dict | None, seconds: float | None, sagas: int) -> list[dict]:
    """Per component: idle CPU (cores) and the CPU each saga adds on top of it (ms), the scaling signal."""
    if not idle or not seconds or not sagas:
        return []
    idle_rate = {g["process"]: g["cpu_s"] / idle["seconds"] for g in group_processes(idle["processes"])}
    out = []
    for g in group_processes(processes):
        base = idle_rate.get(g["process"], 0.0)
        marginal = max(0.0, g["cpu_s"] - base * seconds) / sagas * 1000
        out.append({"process": g["process"], "idle_cores": round(base, 3),
                    "cpu_ms_per_saga": round(g["cpu_s"] / sagas * 1000, 1),
                    "marginal_ms_per_saga": round(marginal, 1)})
    out.sort(key=lambda c: -c["marginal_ms_per_saga"])
    return out


def stage_times(sagas) -> dict[str, dict]:
    out = {}
    for name, start, ends in STAGES:
        values = []
        for saga in sagas:
            if saga.done_at is None or start not in saga.events:
                continue
            end = None
            for key in ends:
                end = {"@smtp": saga.smtp_at, "@done": saga.done_at}.get(key) if key.startswith("@") \
                    else saga.events.get(key)
                if end is not None:
                    break
            if end is not None:
                values.append(end - saga.events[start])
        if values:
            out[name] = spread(values)
    return out


def _error_counts(failures) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in failures:
        key = f"{f.what}: {' '.join(f.detail.split())[:120]}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def build(run, *, mode: str, system, config: dict, micro: dict, metrics_delta, processes: list[dict],
          preload: dict | None, started_iso: str, machine: dict | None = None, idle: dict | None = None,
          measured_seconds: float | None = None) -> dict:
    sagas = list(run.sagas.values())
    complete = [s for s in sagas if s.done_at is not None]
    first = min((s.created_at for s in sagas), default=run.started)
    last = max((s.done_at for s in complete), default=run.load_ended)
    window = max(last - first, 1e-9)
    errors = len(run.failures)
    published = metrics.published(metrics_delta)
    services = []
    # Events: waiting in their queue, then handled. Emails: waiting for a free sender, then delivered (the PDF
    # fetch and the SMTP exchange); a long wait there is where another notifications worker pays.
    for wait_name, handler_name, what in (("crm_queue_wait_seconds", "crm_handler_seconds", None),
                                          ("crm_email_wait_seconds", "crm_email_send_seconds", EMAIL_ROW)):
        wait = metrics.histograms(metrics_delta, wait_name)
        handler = metrics.histograms(metrics_delta, handler_name)
        for key in sorted(set(handler) | set(wait)):
            services.append({"service": key[0], "event": what or key[1],
                             "handled": (handler.get(key) or wait.get(key))["count"],
                             "queue_wait_mean_ms": (wait.get(key) or {}).get("mean_ms"),
                             "queue_wait_p95_ms": (wait.get(key) or {}).get("p95_ms"),
                             "handler_mean_ms": (handler.get(key) or {}).get("mean_ms"),
                             "handler_p95_ms": (handler.get(key) or {}).get("p95_ms")})
    components = per_saga(processes, idle, measured_seconds, len(complete))
    post = spread(run.post_s)
    post_split = where_time_went([(s.post_s, s.post_server_timing) for s in sagas])
    confirm = spread(run.confirm_s)
    saga = spread([s.latency_s for s in complete])
    cpu_total = sum(p["cpu_s"] for p in processes if not p["process"].startswith("load generator"))
    cpu_everything = sum(p["cpu_s"] for p in processes)
    machine = dict(machine or {})
    if machine:
        # CPU the machine spent on anything else during the run: other people's work on a shared box.
        machine["other_cpu_s"] = round(max(0.0, machine["busy_cpu_s"] - cpu_everything), 1)
        machine["share_of_machine_for_others"] = round(machine["other_cpu_s"] / machine["capacity_cpu_s"], 2) \
            if machine.get("capacity_cpu_s") else None
    result = {
        "mode": mode,
        "sagas": len(complete),
        "errors": errors,
        "sagas_per_s": round(len(complete) / window, 2),
        "post_contracts_p50_ms": post["p50_ms"], "post_contracts_p95_ms": post["p95_ms"],
        "post_contracts_p99_ms": post["p99_ms"],
        "confirm_p50_ms": confirm["p50_ms"], "confirm_p95_ms": confirm["p95_ms"], "confirm_p99_ms": confirm["p99_ms"],
        "saga_p50_ms": saga["p50_ms"], "saga_p95_ms": saga["p95_ms"], "saga_p99_ms": saga["p99_ms"],
        "saga_max_ms": saga["max_ms"],
        "pdf_ms": micro.get("pdf_ms"),
        "relay_events_per_s": micro.get("relay_events_per_s"),
        "messages_published_per_saga": round(sum(published.values()) / len(complete), 2) if complete else None,
        "messages_published": published,
        "saga_definition": "stock reserved/short + document.rendered + email.sent + every department.notified "
                           "+ email accepted by the SMTP server" if run.saga_kind == "full"
        else "stock-only: stock.reserved/stock.shortage (documents/notifications not available)",
        "saga_kind": run.saga_kind,
        "started_at": started_iso,
        "contracts_confirmed": len(sagas),
        "confirmed_per_s": round(len(sagas) / max(run.load_ended - run.started, 1e-9), 2),
        "load_seconds": round(run.load_ended - run.started, 1),
        "window_seconds": round(window, 1),
        "offered_rate": run.offered_rate, "late_starts": run.late_starts,
        "timeline_reads": run.timeline_reads,
        "timeline_reads_per_saga": round(run.timeline_reads / len(sagas), 2) if sagas else None,
        "emails_accepted_unmatched": run.smtp_unmatched,
        "stages": stage_times(complete),
        "services": services,
        "processes": processes,
        "cpu_s_total": round(cpu_total, 1),
        "cpu_ms_per_saga": round(cpu_total / len(complete) * 1000, 1) if complete else None,
        # Everything on the box that the run needs (system, broker, database, SMTP, load generator): the
        # sagas/s two cores could carry if nothing else ran, a ceiling that a busy machine cannot show.
        "cpu_ms_per_saga_with_bench": round(cpu_everything / len(complete) * 1000, 1) if complete else None,
        "cpu_bound_ceiling_sagas_per_s": None,
        "cpu_per_saga_in_pdf_renders": None,
        "cpu_per_saga_in_speed_checks": None,
        "machine": machine,
        "cpu_per_saga_by_component": components,
        "marginal_cpu_ms_per_saga": round(sum(c["marginal_ms_per_saga"] for c in components), 1)
        if components else None,
        "idle_cpu_cores": round(sum(c["idle_cores"] for c in components), 3) if components else None,
        "post_contracts": post, "confirm": confirm, "saga": saga,
        "post_contracts_server_timing": post_split,
        "micro": micro,
        "preload": preload,
        "system": system.description,
        "config": config,
        "error_details": [{"what": f.what, "detail": f.detail} for f in run.failures[:50]],
        "error_counts": _error_counts(run.failures),
    }
    if result["marginal_cpu_ms_per_saga"]:
        # What two otherwise idle cores could carry: what is left after the idle cost, over the cost per saga.
        spare = max(0.0, 2.0 - result["idle_cpu_cores"])
        result["cpu_bound_ceiling_sagas_per_s"] = round(spare * 1000 / result["marginal_cpu_ms_per_saga"], 1)
        # The same cost counted in units timed on this host before and after the load, so that runs on hosts of
        # different speed compare: PDF renders, and CPU-speed checks, which no change to the code moves (a faster
        # renderer shrinks the PDF unit).
        marginal = result["marginal_cpu_ms_per_saga"]
        result["cpu_per_saga_in_pdf_renders"] = _in_units(marginal, micro, "pdf_cpu_ms", 2)
        result["cpu_per_saga_in_speed_checks"] = _in_units(marginal, micro, "python_loop_3m_cpu_ms", 3)
    return result


def _in_units(cpu_ms: float, micro: dict, key: str, digits: int) -> float | None:
    """cpu_ms over the mean of the unit's timings before (`key`) and after (`key_after`) the load."""
    timings = [micro[k] for k in (key, f"{key}_after") if micro.get(k)]
    return round(cpu_ms / (sum(timings) / len(timings)), digits) if timings else None


def _fmt(value, unit="", digits=1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        value = f"{value:,.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value}{unit}"


def group_processes(processes: list[dict]) -> list[dict]:
    """One row per component: a gunicorn master with its workers, each worker process, each server."""
    groups: dict[str, dict] = {}
    for p in processes:
        name = p["process"].removesuffix(" worker")
        g = groups.setdefault(name, {"process": name, "processes": 0, "cpu_s": 0.0, "peak_rss_mb": 0.0})
        g["processes"] += p["processes"]
        g["cpu_s"] = round(g["cpu_s"] + p["cpu_s"], 2)
        g["peak_rss_mb"] = max(g["peak_rss_mb"], p["peak_rss_mb"])
    return sorted(groups.values(), key=lambda g: -g["cpu_s"])


def markdown(r: dict) -> str:
    cfg = r["config"]
    load = (f"{cfg['clients']} clients, " + (f"offered {r['offered_rate']:g} sagas/s, " if r["offered_rate"] else
                                             "closed loop, ")
            + (f"{cfg['count']} sagas" if cfg.get("count") else f"{cfg['duration']:g} s"))
    lines = [f"### {r['mode']} — {r['started_at'][:19]}Z", "",
             f"{r['system']}; {load}; volume {cfg.get('volume') or 0:,} preloaded contracts; "
             + (f"the SMTP server answers each message after {cfg['smtp_delay_ms']:g} ms; "
                if cfg.get("smtp_delay_ms") else "")
             + f"saga = {r['saga_definition']}.", "",
             "| metric | value |", "|---|---|",
             f"| complete sagas | {r['sagas']} of {r['contracts_confirmed']} confirmed |",
             f"| errors | {r['errors']} |",
             f"| sustained sagas/s (first create → last completion) | {_fmt(r['sagas_per_s'])} |",
             f"| contracts confirmed/s during the load | {_fmt(r['confirmed_per_s'])} |",
             f"| POST /contracts p50 / p95 / p99 | {_fmt(r['post_contracts_p50_ms'])} / "
             f"{_fmt(r['post_contracts_p95_ms'])} / {_fmt(r['post_contracts_p99_ms'])} ms |",
             f"| POST /contracts/{{id}}/confirm p50 / p95 / p99 | {_fmt(r['confirm_p50_ms'])} / "
             f"{_fmt(r['confirm_p95_ms'])} / {_fmt(r['confirm_p99_ms'])} ms |",
             f"| saga p50 / p95 / p99 (create sent → last event) | {_fmt(r['saga_p50_ms'])} / "
             f"{_fmt(r['saga_p95_ms'])} / {_fmt(r['saga_p99_ms'])} ms |",
             f"| PDF, 2-page Chinese contract (median wall / CPU; CPU again after the load) | {_fmt(r['pdf_ms'])} / "
             f"{_fmt((r.get('micro') or {}).get('pdf_cpu_ms'))} ms; "
             f"{_fmt((r.get('micro') or {}).get('pdf_cpu_ms_after'))} ms |",
             f"| outbox relay (CPU per event) | {_fmt(r['relay_events_per_s'])} events/s "
             f"({_fmt((r.get('micro') or {}).get('relay_cpu_us_per_event'))} µs) |",
             f"| CPU speed check: 3M-iteration Python loop before / after the load (lower is faster; compare runs) | "
             f"{_fmt((r.get('micro') or {}).get('python_loop_3m_cpu_ms'))} / "
             f"{_fmt((r.get('micro') or {}).get('python_loop_3m_cpu_ms_after'))} ms |",
             f"| messages published per saga | {_fmt(r['messages_published_per_saga'])} |",
             f"| CPU per saga (system, all processes) | {_fmt(r['cpu_ms_per_saga'])} ms |",
             f"| CPU per saga beyond idle, everything on the box (system, broker, database, SMTP, load generator) "
             f"→ what 2 idle cores could carry | {_fmt(r['marginal_cpu_ms_per_saga'])} ms "
             f"(+ {_fmt(r['idle_cpu_cores'])} cores idle) → {_fmt(r['cpu_bound_ceiling_sagas_per_s'])} sagas/s |",
             f"| the same CPU per saga counted in PDF renders of this host (compare runs across hosts) | "
             f"{_fmt(r.get('cpu_per_saga_in_pdf_renders'))} |",
             f"| the same counted in CPU-speed checks (mean of before and after; unmoved by code changes) | "
             f"{_fmt(r.get('cpu_per_saga_in_speed_checks'), digits=2)} |",
             f"| timeline reads per saga (bench polling) | {_fmt(r['timeline_reads_per_saga'])} |"]
    m = r.get("machine") or {}
    if m:
        lines.append(f"| machine: load average at start / end; CPU used by other work | {m['loadavg_1m_at_start']} / "
                     f"{m['loadavg_1m_at_end']}; {_fmt(m.get('other_cpu_s'))} of {_fmt(m['capacity_cpu_s'])} "
                     f"CPU s ({(m.get('share_of_machine_for_others') or 0) * 100:.0f}%) |")
    lines.append("")
    split = r.get("post_contracts_server_timing")
    if split:
        lines += ["| POST /contracts, mean ms (from its Server-Timing) | answers | as the client saw it | handler | "
                  "its statements | its catalogue read | outside the handler (queueing, waiting for a core) |",
                  "|---|---|---|---|---|---|---|"]
        for label, key in (("all", "all"), ("the slowest 1 %", "slowest_1_percent")):
            g = split[key]
            lines.append(f"| {label} | {g['n']} | {_fmt(g['client'])} | {_fmt(g['app'])} | {_fmt(g['db'])} | "
                         f"{_fmt(g['inventory'])} | {_fmt(g['outside_handler'])} |")
        lines.append("")
    if r["stages"]:
        lines += ["| stage (timeline `at`, server clock) | p50 | p95 | p99 |", "|---|---|---|---|"]
        for name, s in r["stages"].items():
            lines.append(f"| {name} | {_fmt(s['p50_ms'])} ms | {_fmt(s['p95_ms'])} ms | {_fmt(s['p99_ms'])} ms |")
        lines.append("")
    if r["services"]:
        lines += ["| service | event | handled | queue wait mean / p95 | handler mean / p95 |",
                  "|---|---|---|---|---|"]
        for s in r["services"]:
            lines.append(f"| {s['service']} | {s['event']} | {s['handled']} | {_fmt(s['queue_wait_mean_ms'])} / "
                         f"{_fmt(s['queue_wait_p95_ms'])} ms | {_fmt(s['handler_mean_ms'])} / "
                         f"{_fmt(s['handler_p95_ms'])} ms |")
        lines.append("")
    if r["processes"]:
        marginal = {c["process"]: c for c in r.get("cpu_per_saga_by_component") or []}
        lines += ["| process (gunicorn: master + its workers) | processes | CPU s during load + drain | "
                  "idle cores | CPU ms per saga beyond idle | peak RSS MB (largest) |", "|---|---|---|---|---|---|"]
        for p in group_processes(r["processes"]):
            m = marginal.get(p["process"], {})
            idle_cores = "–" if m.get("idle_cores") is None else f"{m['idle_cores']:.3f}"
            lines.append(f"| {p['process']} | {p['processes']} | {_fmt(p['cpu_s'])} | {idle_cores} | "
                         f"{_fmt(m.get('marginal_ms_per_saga'))} | {_fmt(p['peak_rss_mb'])} |")
        lines.append("")
    if r.get("error_counts"):
        lines += ["Errors:", ""] + [f"- {n} × {key}" for key, n in r["error_counts"].items()] + [""]
    return "\n".join(lines)


def write(result: dict, directory: Path, stem: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(markdown(result))
    return json_path, md_path
