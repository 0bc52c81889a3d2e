"""Dynamic batching: requests that arrive within ``max_batch_wait_ms`` are grouped (up to
``max_batch_size`` inputs), run as one batch on a free instance, and answered individually."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from fmhub.serving.pool import Instance, InstanceGone

log = logging.getLogger("fmhub.serving")


class QueueFull(Exception):
    """More requests wait than the deployment's ``max_queue``."""


class NoInstance(Exception):
    """No instance of the deployment is ready."""


@dataclass
class _Request:
    inputs: list[Any]
    params: dict[str, Any]
    future: asyncio.Future
    key: str = ""
    enqueued_s: float = field(default_factory=time.monotonic)


class DynamicBatcher:
    """Groups requests of one deployment into batches and spreads them over its instances.

    Args:
        instances: The deployment's instances (one batch in flight each).
        max_batch_size: Inputs per batch at most (a larger single request runs alone).
        max_batch_wait_ms: How long the first request of a batch waits for more.
        max_queue: Requests waiting at most; :meth:`submit` raises :class:`QueueFull` beyond.

    Attributes:
        batches: Batches run so far; ``inputs``: inputs run so far (for the mean batch size).
    """

    def __init__(self, instances: list[Instance], max_batch_size: int, max_batch_wait_ms: float,
                 max_queue: int) -> None:
        self.instances = instances
        self.max_batch_size = max_batch_size
        self.max_batch_wait_s = max_batch_wait_ms / 1000.0
        self.queue: asyncio.Queue[_Request] = asyncio.Queue(maxsize=max_queue)
        self.free: asyncio.Queue[Instance] = asyncio.Queue()
        for instance in instances:
            self.free.put_nowait(instance)
        self.batches = 0
        self.inputs = 0
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def submit(self, inputs: list[Any], params: dict[str, Any]) -> asyncio.Future:
        """Queue a request; the future resolves to its outputs (one per input).

        Raises:
            QueueFull: too many requests wait.
        """
        future = asyncio.get_running_loop().create_future()
        request = _Request(inputs, params, future, json.dumps(params, sort_keys=True))
        try:
            self.queue.put_nowait(request)
        except asyncio.QueueFull:
            raise QueueFull from None
        return future

    async def _collect(self) -> list[_Request]:
        first = await self.queue.get()
        batch, size = [first], len(first.inputs)
        deadline = time.monotonic() + self.max_batch_wait_s
        while size < self.max_batch_size:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                nxt = await asyncio.wait_for(self.queue.get(), timeout)
            except asyncio.TimeoutError:
                break
            batch.append(nxt)
            size += len(nxt.inputs)
        return batch

    async def _loop(self) -> None:
        carry: list[_Request] = []
        while True:
            try:
                instance = await self.free.get()
                batch = carry or await self._collect()
                batch = [r for r in batch if not r.future.done()]  # timed out while waiting
                if not batch:
                    self.free.put_nowait(instance)
                    carry = []
                    continue
                key = batch[0].key  # one set of params per batch; the others go in the next one
                group = [r for r in batch if r.key == key]
                carry = [r for r in batch if r.key != key]
                asyncio.get_running_loop().create_task(self._run(instance, group))
            except asyncio.CancelledError:
                return
            except Exception:  # the loop must survive anything a batch does
                log.exception("batching loop")

    async def _run(self, instance: Instance, group: list[_Request]) -> None:
        inputs = [x for r in group for x in r.inputs]
        try:
            if instance.state != "ready":
                ok = await instance.wait_ready(30.0)
                if not ok:
                    raise NoInstance(f"instance {instance.name} is {instance.state}")
            outputs = await instance.run(inputs, group[0].params)
            self.batches += 1
            self.inputs += len(inputs)
            start = 0
            for r in group:
                if not r.future.done():
                    r.future.set_result(outputs[start:start + len(r.inputs)])
                start += len(r.inputs)
        except (InstanceGone, NoInstance, RuntimeError) as exc:
            for r in group:
                if not r.future.done():
                    r.future.set_exception(exc)
        finally:
            self.free.put_nowait(instance)

    def close(self) -> None:
        """Stop batching; waiting requests fail with :class:`NoInstance`."""
        self._task.cancel()
        while not self.queue.empty():
            r = self.queue.get_nowait()
            if not r.future.done():
                r.future.set_exception(NoInstance("the deployment was stopped"))
