"""The server's side of deployment instances: start the processes, send batches, get results back
into the event loop, restart an instance that died (with backoff, a bounded number of times in a
row: an instance that keeps dying is marked ``failed`` and reported, not restarted forever)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import queue
import threading
import time
from typing import Any

from fmhub.serving.base import InstanceGone
from fmhub.serving.instance import serve_instance

log = logging.getLogger("fmhub.serving")

MAX_QUICK_RESTARTS = 5
"""Restarts in a row of an instance that dies within :data:`STABLE_S` before it is marked failed."""
STABLE_S = 60.0
"""An instance that ran this long before dying counts as healthy again (its restart count starts over)."""
BACKOFF_MAX_S = 30.0
"""Longest wait before a restart (the wait doubles from 0.5 s with each quick restart)."""
_CLOSE = object()
"""Ends a writer thread (:meth:`Instance._write`)."""


class Instance:
    """One instance process and the pipe to it.

    Args:
        name: ``<endpoint>/<deployment>/<n>`` (for logs).
        config: What :func:`fmhub.serving.instance.serve_instance` loads.
        loop: The event loop that awaits results.
        notify: Called (from a reader thread) with a line for the endpoint's log when the process
            dies and is restarted.

    Attributes:
        state: ``starting``, ``ready``, ``failed`` or ``stopped``.
        runtime: The runtime the process reported (e.g. ``pytorch (fp32, cpu, 2 threads)``).
        restarts: How many times the process was started again after dying.
        quick_failures: Deaths in a row, each within :data:`STABLE_S` of its start; at
            :data:`MAX_QUICK_RESTARTS` the instance is not started again (state ``failed``).
        error: Why loading failed, or why the instance was given up, if it was.
    """

    def __init__(self, name: str, config: dict[str, Any], loop: asyncio.AbstractEventLoop,
                 notify: Any = None) -> None:
        self.name = name
        self.notify = notify or (lambda message: None)
        self.config = config
        self.loop = loop
        self.state = "starting"
        self.runtime: str | None = None
        self.pid: int | None = None
        self.restarts = 0
        self.quick_failures = 0
        self.started_s = time.monotonic()
        self.error: str | None = None
        self.busy = False
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._streams: dict[int, asyncio.Queue] = {}  # chat conversations in flight: their messages
        self.chat_stats: dict[str, int] = {"steps": 0, "max_step_batch": 0, "last_step_batch": 0}
        self._lock = threading.Lock()
        self._ready = asyncio.Event()
        self._stopping = False
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()  # replaced by each start
        self._open = True
        self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve_instance, args=(child, self.config), daemon=True,
                                   name=f"fmhub-instance {self.name}")
        self.process.start()
        self.started_s = time.monotonic()
        child.close()
        self.pid = self.process.pid
        self._outbox = queue.SimpleQueue()
        self._open = True  # False from the moment the reader sees the pipe end (under _lock)
        threading.Thread(target=self._read, name=f"fmhub-read {self.name}", daemon=True).start()
        threading.Thread(target=self._write, args=(self.conn, self._outbox), name=f"fmhub-write {self.name}",
                         daemon=True).start()

    def _write(self, conn: Any, outbox: queue.SimpleQueue) -> None:
        """Send the server's messages to the process in order, off the event loop: a message larger
        than the pipe's buffer (a long conversation) blocks its sender until the process reads it,
        which a chat instance does only between two decode steps."""
        while True:
            message = outbox.get()
            if message is _CLOSE:
                return
            try:
                conn.send(message)
            except (OSError, ValueError):  # the reader sees the pipe end and fails what is in flight
                return

    def _register(self, table: dict[int, Any], value: Any) -> int:
        """A new id for a batch or conversation in flight, recorded in ``table``.

        Raises:
            InstanceGone: the process ended (its pipe is closed).
        """
        with self._lock:
            if not self._open:
                raise InstanceGone(f"instance {self.name} ended")
            new_id = next(self._ids)
            table[new_id] = value
        return new_id

    def _read(self) -> None:
        conn = self.conn
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            kind = message.get("type")
            if kind == "ready":
                self.runtime, self.state = message["runtime"], "ready"
                log.info("instance %s ready in %s s (%s)", self.name, message.get("load_s"), self.runtime)
                if self.restarts:
                    self.notify(f"instance {self.name} (pid {self.pid}) ready again after restart {self.restarts}")
                self.loop.call_soon_threadsafe(self._ready.set)
            elif kind == "failed":
                self.state, self.error = "failed", message["error"]
                log.error("instance %s failed to load: %s", self.name, self.error)
                self.loop.call_soon_threadsafe(self._ready.set)
            elif kind == "result" and message["id"] in self._streams:
                self._to_stream(message["id"], message, last=True)
            elif kind == "result":
                with self._lock:
                    future = self._pending.pop(message["id"], None)
                if future is not None:
                    self.loop.call_soon_threadsafe(_resolve, future, message)
            elif kind in ("accepted", "rejected"):
                self._to_stream(message["id"], message, last=kind == "rejected")
            elif kind == "chunks":
                self.chat_stats = {"steps": message.get("steps", 0), "max_step_batch": message.get("max_step_batch", 0),
                                   "last_step_batch": message.get("batch", 0)}
                for event in message["events"]:
                    self._to_stream(event["id"], event, last="finish_reason" in event)
        self._on_exit()

    def _to_stream(self, stream_id: int, message: dict[str, Any], last: bool) -> None:
        """Hand a chat message to its conversation's queue (from the reader thread)."""
        with self._lock:
            target = self._streams.pop(stream_id, None) if last else self._streams.get(stream_id)
        if target is not None:
            self.loop.call_soon_threadsafe(target.put_nowait, message)

    def _on_exit(self) -> None:
        with self._lock:
            self._open = False
            pending, self._pending = self._pending, {}
            streams, self._streams = self._streams, {}
        self._outbox.put(_CLOSE)
        for future in pending.values():
            self.loop.call_soon_threadsafe(_fail, future, InstanceGone(f"instance {self.name} ended"))
        for target in streams.values():
            self.loop.call_soon_threadsafe(target.put_nowait, {"type": "gone", "error": f"instance {self.name} ended"})
        if self._stopping or self.state == "failed":
            return
        self.process.join(timeout=5)
        code = self.process.exitcode
        lived_s = time.monotonic() - self.started_s
        self.quick_failures = self.quick_failures + 1 if lived_s < STABLE_S else 1
        if self.quick_failures > MAX_QUICK_RESTARTS:
            self.error = (f"the instance ended {self.quick_failures} times in a row, each within {STABLE_S:.0f} s "
                          f"(last exit code {code}); it is not restarted again")
            self.state = "failed"
            message = (f"instance {self.name} (pid {self.pid}) failed: {self.error}; "
                       "redeploy once the cause is fixed (see the server log)")
            log.error(message)
            self.notify(message)
            self.loop.call_soon_threadsafe(self._ready.set)  # waiters see state failed
            return
        delay = min(BACKOFF_MAX_S, 0.5 * 2 ** (self.quick_failures - 1))
        message = (f"instance {self.name} (pid {self.pid}) ended with exit code {code}; restarting in {delay:g} s "
                   f"(restart {self.quick_failures} of at most {MAX_QUICK_RESTARTS} in a row)")
        log.error(message)
        self.notify(message)
        self.restarts += 1
        self.state = "starting"
        self.loop.call_soon_threadsafe(self._ready.clear)
        time.sleep(delay)
        if not self._stopping:
            self._start()

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the model is loaded (True) or loading failed / timed out (False)."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return self.state == "ready"

    async def run(self, inputs: list[Any], params: dict[str, Any], sizes: list[int] | None = None
                  ) -> tuple[list[Any], dict[int, tuple[str, bool]]]:
        """Send one batch and await its outputs.

        Args:
            inputs: The batch's decoded inputs.
            params: Their shared params.
            sizes: Inputs per request, in order (failures are isolated per request; see
                :func:`fmhub.serving.instance.predict_isolated`).

        Returns:
            (one output per input, None for an input that failed; ``{index: (error, isolated)}``
            for those, see :func:`fmhub.serving.instance.predict_isolated`).

        Raises:
            InstanceGone: the process ended first.
            RuntimeError: the instance reported an error for this batch.
        """
        future = self.loop.create_future()
        batch_id = self._register(self._pending, future)
        self._outbox.put({"id": batch_id, "inputs": inputs, "params": params, "sizes": sizes})
        return await future

    def open_chat(self, chat: dict[str, Any]) -> tuple[int, asyncio.Queue]:
        """Send a conversation to a chat instance (see :mod:`fmhub.serving.chat_instance`).

        Args:
            chat: ``{"messages": [...], "sampling": {...}}``.

        Returns:
            (its id, the queue its messages arrive on: ``accepted``/``rejected``, then events
            ``{"delta", "finish_reason"?, "usage"?}``; ``{"type": "gone"}`` when the process ended,
            ``{"type": "result", "error"}`` when its step failed).

        Raises:
            InstanceGone: the pipe is closed.
        """
        messages: asyncio.Queue = asyncio.Queue()
        stream_id = self._register(self._streams, messages)
        self._outbox.put({"id": stream_id, "chat": chat})  # sent by the writer thread, never blocking the loop
        return stream_id, messages

    def cancel_chat(self, stream_id: int) -> None:
        """Drop a conversation (its client went away): the instance frees its slot at the next step."""
        with self._lock:
            known = self._streams.pop(stream_id, None) is not None
        if known:
            self._outbox.put({"cancel": stream_id})

    def stop(self) -> None:
        """End the process (closing the pipe ends its loop; killed after 5 s)."""
        self._stopping = True
        self.state = "stopped"
        self.loop.call_soon_threadsafe(self._ready.set)  # nobody waits for a stopped instance
        self._outbox.put(None)  # the process's loop ends on None
        self._outbox.put(_CLOSE)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


def _resolve(future: asyncio.Future, message: dict[str, Any]) -> None:
    if future.done():
        return
    if "error" in message:
        future.set_exception(RuntimeError(message["error"]))
    else:
        errors = {int(k): (str(v[0]), bool(v[1])) for k, v in (message.get("errors") or {}).items()}
        future.set_result((message["outputs"], errors))


def _fail(future: asyncio.Future, exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
