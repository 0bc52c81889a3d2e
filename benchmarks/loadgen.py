"""HTTP load for ``serve.py``: closed loop (C workers, N requests) and open loop (a fixed rate for
a fixed time), over loopback, with latency percentiles and a check of every answer.

Modelled on ``../shared/baselines/loadgen.py`` (closed loop, one sentence per request), with
headers (endpoint keys) and a per-request check function, so that a response given to the wrong
request is counted. The requests go over :class:`RawConnection` (HTTP/1.1 keep-alive on asyncio
streams): with httpx the load generator itself used ~11 ms of CPU per request on the 2-core
machine, more than either server, so the servers were measured against the client's CPU.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit


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


class Response:
    """Status code and JSON body of an answer."""

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class RawConnection:
    """One keep-alive HTTP/1.1 connection to ``127.0.0.1:port`` (Content-Length bodies only)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"loopback targets only, not {parts.hostname}")
        self.host, self.port, self.path = parts.hostname, parts.port or 80, parts.path
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes, headers: dict[str, str]) -> Response:
        """Send one POST and read its answer (reconnects when the server closed the connection)."""
        for attempt in range(2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            self.writer.write(f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\n{head}"
                              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            try:
                await self.writer.drain()
                status_line = await self.reader.readline()
                if not status_line:
                    raise ConnectionError("closed")
                length, close = 0, False
                while (line := await self.reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and "close" in value.lower():
                        close = True
                data = await self.reader.readexactly(length)
                if close:
                    self.close()
                return Response(int(status_line.split()[1]), data)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
        raise ConnectionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


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
    headers = {"content-type": "application/json", **headers}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    wrong = errors = 0
    connections = [RawConnection(url) for _ in range(concurrency)]
    for i in range(warmup):
        await connections[0].post(bodies[i % len(bodies)], headers)
    nxt = 0

    async def worker(conn: RawConnection) -> None:
        nonlocal nxt, wrong, errors
        while nxt < n:
            i = nxt
            nxt += 1
            t0 = time.perf_counter()
            try:
                r = await conn.post(bodies[i % len(bodies)], headers)
            except (OSError, ConnectionError):
                errors += 1
                continue
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code == 200:
                latencies.append(time.perf_counter() - t0)
                if check is not None and not check(i % len(bodies), r.json()):
                    wrong += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    wall = time.perf_counter() - t0
    for c in connections:
        c.close()
    return summary(latencies, wall, n, statuses, wrong, errors)


async def open_loop(url: str, bodies: list[bytes], rate_per_s: float, duration_s: float, headers: dict[str, str],
                    check: Callable[[int, Any], bool] | None = None, pid: int | None = None,
                    max_in_flight: int = 2048) -> dict[str, Any]:
    """Send at ``rate_per_s`` for ``duration_s`` whatever the answers (overload), sampling the
    server tree's memory every second."""
    headers = {"content-type": "application/json", **headers}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    wrong = errors = 0
    rss: list[float] = []
    idle: list[RawConnection] = []
    in_flight = asyncio.Semaphore(max_in_flight)
    async def one(i: int) -> None:
        nonlocal wrong, errors
        async with in_flight:
            conn = idle.pop() if idle else RawConnection(url)
            t0 = time.perf_counter()
            try:
                r = await conn.post(bodies[i % len(bodies)], headers)
            except (OSError, ConnectionError):
                errors += 1
                conn.close()
                return
            idle.append(conn)
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
    for c in idle:
        c.close()
    out = summary(latencies, wall, sent, statuses, wrong, errors)
    out.update(offered_per_s=round(rate_per_s, 1), rss_mb_first=round(rss[0], 1) if rss else None,
               rss_mb_last=round(rss[-1], 1) if rss else None, rss_mb_max=round(max(rss), 1) if rss else None)
    return out
