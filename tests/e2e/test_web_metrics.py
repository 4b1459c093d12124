"""/metrics of a service with several gunicorn workers counts what all of them answered, on every scrape, and
keeps counting across a worker's restart."""
from __future__ import annotations

import os
import re
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from support.infra import _ready, wait_for

NOT_FOUND = re.compile(r'^crm_http_requests_total\{(?=[^}]*service="contracts")(?=[^}]*method="GET")'
                       r'(?=[^}]*status="404")[^}]*\} (\S+)$', re.MULTILINE)


def not_found_count(base_url: str) -> float:
    found = NOT_FOUND.search(requests.get(f"{base_url}/metrics", timeout=10, headers={"Connection": "close"}).text)
    return float(found.group(1)) if found else 0.0


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_the_gateway_metrics_count_every_worker_and_survive_a_restart(two_web_workers):
    cluster = two_web_workers
    token = cluster.api.token

    def ask(i):  # each on its own connection, so the gateway's workers share them out
        return requests.get(f"{cluster.base_url}/api/v1/contracts/no-such-{i}", timeout=10,
                            headers={"Authorization": f"Bearer {token}", "Connection": "close"}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(ask, range(60))) == {404}
    assert [not_found_count(cluster.base_url) for _ in range(8)] == [60.0] * 8

    # Both workers die (a timeout, a deploy): gunicorn starts new ones, and the count goes on from 60. Before,
    # each worker kept its own count in memory, and a scrape read whichever worker answered it.
    master = cluster.procs["contracts-web"].pid
    old = children(master)
    assert len(old) == 2
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: len(set(children(master)) - set(old)) == 2 and _ready(f"{cluster.base_url}/readyz"),
             timeout=60, message="two new gateway workers")
    assert not_found_count(cluster.base_url) == 60.0
    assert ask("after") == 404 and not_found_count(cluster.base_url) == 61.0
