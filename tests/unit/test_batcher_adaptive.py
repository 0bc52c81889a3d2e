"""The batcher's wait adapts to the load: a lone request on an idle endpoint runs at once, and a batch
waits only while more inputs are expected within the wait."""

from __future__ import annotations

import asyncio
import threading
import time

from fmhub.serving.batcher import DynamicBatcher
from test_scoring import FakeInstance as Instant  # answers {"label": input} at once


def _in_thread(coro):
    """asyncio.run in a thread of its own (a browser test may have left a loop in the main thread)."""
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("v", asyncio.run(coro)))
    t.start()
    t.join(30)
    return out["v"]


def test_a_lone_request_on_an_idle_endpoint_does_not_wait():
    async def go():
        instance = Instant()
        batcher = DynamicBatcher([instance], 32, max_batch_wait_ms=2000, max_queue=16)
        t0 = time.monotonic()
        answer = await asyncio.wait_for(batcher.submit(["x"], {}), 10)
        batcher.close()
        return answer, time.monotonic() - t0
    answer, took_s = _in_thread(go())
    assert answer == [{"label": "x"}]
    assert took_s < 1.0  # the old fixed wait would have held it for the whole 2 s


def test_fill_wait_follows_the_arrival_rate():
    async def go():
        batcher = DynamicBatcher([Instant()], 32, max_batch_wait_ms=10, max_queue=16)
        no_history = batcher.fill_wait_s(4)
        batcher._gap_s = 0.001
        fast = batcher.fill_wait_s(4)
        full = batcher.fill_wait_s(0)
        many = batcher.fill_wait_s(30)
        batcher._gap_s = 0.05  # the next input is not expected within 10 ms
        slow = batcher.fill_wait_s(4)
        batcher.close()
        return no_history, fast, full, many, slow
    no_history, fast, full, many, slow = _in_thread(go())
    assert no_history == 0.0
    assert abs(fast - 0.004) < 1e-9  # four inputs, one every millisecond
    assert full == 0.0 and slow == 0.0
    assert many == 0.010  # capped at max_batch_wait_ms


def test_steady_arrivals_are_batched():
    async def go():
        instance = Instant()
        batcher = DynamicBatcher([instance], 8, max_batch_wait_ms=200, max_queue=64)
        futures = []
        for i in range(24):
            futures.append(batcher.submit([f"r{i}"], {}))
            await asyncio.sleep(0.002)
        answers = await asyncio.wait_for(asyncio.gather(*futures), 10)
        batcher.close()
        return answers, instance.batches, batcher.waited
    answers, batches, waited = _in_thread(go())
    assert answers == [[{"label": f"r{i}"}] for i in range(24)]
    assert len(batches[0]) == 1  # the first request: no arrivals seen yet, it ran at once
    assert max(len(b) for b in batches) >= 4 and len(batches) <= 12 and waited >= 1
