"""HTTP load for ``serve.py``: closed loop (C workers, N requests) and open loop (a fixed rate for
a fixed time), over loopback, with latency percentiles and a check of every answer.

Modelled on ``../shared/baselines/loadgen.py`` (asyncio + httpx, one sentence per request), with
headers (endpoint keys) and a per-request check function, so that a response given to the wrong
request is counted.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import httpx


def tree_rss_mb(pid: int) -> float:
    """RSS (MB) of ``pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
        todo.extend(children.get(p, []))
    return total / 1024


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def summary(latencies: list[float], wall_s: float, n: int, statuses: dict[int, int], wrong: int,
            errors: int) -> dict[str, Any]:
    """One result line: requests/s, p50/p99 ms, statuses, wrong answers, transport errors."""
    latencies.sort()
    ms = lambda v: None if v is None else round(v * 1000, 1)  # noqa: E731
    ok = statuses.get(200, 0)
    return {"n": n, "ok": ok, "wall_s": round(wall_s, 2), "req_per_s": round(ok / wall_s, 1) if wall_s else None,
            "p50_ms": ms(percentile(latencies, 50)), "p99_ms": ms(percentile(latencies, 99)),
            "statuses": dict(sorted(statuses.items())), "wrong_answers": wrong, "transport_errors": errors}


async def closed_loop(url: str, bodies: list[bytes], n: int, concurrency: int, headers: dict[str, str],
                      check: Callable[[int, Any], bool] | None = None, warmup: int = 20) -> dict[str, Any]:
    """``n`` requests from ``concurrency`` workers, each sending its next request when answered."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json", **headers}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    wrong = errors = 0
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        for i in range(warmup):
            await client.post(url, content=bodies[i % len(bodies)], headers=headers)
        nxt = 0

        async def worker() -> None:
            nonlocal nxt, wrong, errors
            while nxt < n:
                i = nxt
                nxt += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, content=bodies[i % len(bodies)], headers=headers)
                except httpx.HTTPError:
                    errors += 1
                    continue
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                    if check is not None and not check(i % len(bodies), r.json()):
                        wrong += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return summary(latencies, wall, n, statuses, wrong, errors)


async def open_loop(url: str, bodies: list[bytes], rate_per_s: float, duration_s: float, headers: dict[str, str],
                    check: Callable[[int, Any], bool] | None = None, pid: int | None = None,
                    max_in_flight: int = 2048) -> dict[str, Any]:
    """Send at ``rate_per_s`` for ``duration_s`` whatever the answers (overload), sampling the
    server tree's memory every second."""
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    headers = {"content-type": "application/json", **headers}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    wrong = errors = 0
    rss: list[float] = []
    in_flight = asyncio.Semaphore(max_in_flight)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def one(i: int) -> None:
            nonlocal wrong, errors
            async with in_flight:
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, content=bodies[i % len(bodies)], headers=headers)
                except httpx.HTTPError:
                    errors += 1
                    return
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                    if check is not None and not check(i % len(bodies), r.json()):
                        wrong += 1

        tasks = []
        t0 = time.perf_counter()
        sent = 0
        next_sample = t0
        while (now := time.perf_counter()) - t0 < duration_s:
            due = int((now - t0) * rate_per_s)
            while sent < due:
                tasks.append(asyncio.create_task(one(sent)))
                sent += 1
            if pid and now >= next_sample:
                rss.append(tree_rss_mb(pid))
                next_sample = now + 1.0
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - t0
    out = summary(latencies, wall, sent, statuses, wrong, errors)
    out.update(offered_per_s=round(rate_per_s, 1), rss_mb_first=round(rss[0], 1) if rss else None,
               rss_mb_last=round(rss[-1], 1) if rss else None, rss_mb_max=round(max(rss), 1) if rss else None)
    return out
