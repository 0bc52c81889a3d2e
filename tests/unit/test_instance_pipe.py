"""The server's side of an instance pipe: messages go out through a writer thread, in order, so a
conversation larger than the pipe's buffer never blocks the event loop while the instance is busy
decoding (it reads the pipe only between two steps)."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import threading
import time

import pytest

from fmhub.serving.base import InstanceGone
from fmhub.serving.pool import Instance


def _instance(loop):
    """An Instance wired to one end of a pipe whose other end nobody reads yet (a busy process)."""
    inst = Instance.__new__(Instance)
    inst.name, inst.loop = "ep/dep/0", loop
    inst._ids, inst._pending, inst._streams = itertools.count(1), {}, {}
    inst._lock = threading.Lock()
    import queue

    inst.conn, far = multiprocessing.get_context("spawn").Pipe()
    inst._outbox, inst._open = queue.SimpleQueue(), True
    threading.Thread(target=inst._write, args=(inst.conn, inst._outbox), daemon=True).start()
    return inst, far


def _run(coro):
    """``asyncio.run`` in a thread of its own (browser tests leave a loop running in the main thread)."""
    out: dict = {}

    def target():
        try:
            out["result"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the test's thread
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the scenario did not finish in 60 s"
    if "error" in out:
        raise out["error"]
    return out["result"]


def test_a_large_conversation_never_blocks_the_event_loop_and_messages_keep_their_order():
    async def scenario():
        inst, far = _instance(asyncio.get_running_loop())
        big = {"messages": [{"role": "user", "content": "x" * 2_000_000}], "sampling": {}}  # >> 64 KiB buffer
        t0 = time.monotonic()
        first, _ = inst.open_chat(big)
        second, _ = inst.open_chat({"messages": [{"role": "user", "content": "hi"}], "sampling": {}})
        inst.cancel_chat(second)
        took = time.monotonic() - t0
        received = [await asyncio.to_thread(far.recv) for _ in range(3)]  # the process reads later
        return took, first, second, received

    took, first, second, received = _run(scenario())
    assert took < 0.5  # the old synchronous send blocked here until the far end read
    assert [m.get("id", m.get("cancel")) for m in received] == [first, second, second]
    assert len(received[0]["chat"]["messages"][0]["content"]) == 2_000_000
    assert received[2] == {"cancel": second}


def test_after_the_pipe_ends_new_work_is_refused_at_once():
    async def scenario():
        inst, far = _instance(asyncio.get_running_loop())
        with inst._lock:
            inst._open = False  # what the reader thread records when the process ends
        with pytest.raises(InstanceGone):
            inst.open_chat({"messages": [], "sampling": {}})
        with pytest.raises(InstanceGone):
            await inst.run(["a"], {})
        assert not inst._streams and not inst._pending

    _run(scenario())
