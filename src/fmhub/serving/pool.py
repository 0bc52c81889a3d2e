"""The server's side of deployment instances: start the processes, send batches, get results back
into the event loop, restart an instance that died."""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import threading
import time
from typing import Any

from fmhub.serving.instance import serve_instance

log = logging.getLogger("fmhub.serving")


class InstanceGone(Exception):
    """The instance process ended while a batch was in flight (it is restarted)."""


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
        error: Why loading failed, if it did.
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
        self.error: str | None = None
        self.busy = False
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._lock = threading.Lock()
        self._ready = asyncio.Event()
        self._stopping = False
        self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve_instance, args=(child, self.config), daemon=True,
                                   name=f"fmhub-instance {self.name}")
        self.process.start()
        child.close()
        self.pid = self.process.pid
        threading.Thread(target=self._read, name=f"fmhub-read {self.name}", daemon=True).start()

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
            elif kind == "result":
                with self._lock:
                    future = self._pending.pop(message["id"], None)
                if future is not None:
                    self.loop.call_soon_threadsafe(_resolve, future, message)
        self._on_exit()

    def _on_exit(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            self.loop.call_soon_threadsafe(_fail, future, InstanceGone(f"instance {self.name} ended"))
        if self._stopping or self.state == "failed":
            return
        self.process.join(timeout=5)
        message = f"instance {self.name} (pid {self.pid}) ended with exit code {self.process.exitcode}; restarting"
        log.error(message)
        self.notify(message)
        self.restarts += 1
        self.state = "starting"
        self.loop.call_soon_threadsafe(self._ready.clear)
        time.sleep(min(5.0, 0.5 * self.restarts))
        if not self._stopping:
            self._start()

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the model is loaded (True) or loading failed / timed out (False)."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return self.state == "ready"

    async def run(self, inputs: list[Any], params: dict[str, Any]) -> list[Any]:
        """Send one batch and await its outputs (one per input).

        Raises:
            InstanceGone: the process ended first.
            RuntimeError: the instance reported an error for this batch.
        """
        future = self.loop.create_future()
        with self._lock:
            batch_id = next(self._ids)
            self._pending[batch_id] = future
        try:
            self.conn.send({"id": batch_id, "inputs": inputs, "params": params})
        except (OSError, ValueError) as exc:
            with self._lock:
                self._pending.pop(batch_id, None)
            raise InstanceGone(str(exc)) from exc
        return await future

    def stop(self) -> None:
        """End the process (closing the pipe ends its loop; killed after 5 s)."""
        self._stopping = True
        self.state = "stopped"
        self.loop.call_soon_threadsafe(self._ready.set)  # nobody waits for a stopped instance
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
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
        future.set_result(message["outputs"])


def _fail(future: asyncio.Future, exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
