"""Dynamic batching: requests are grouped (up to ``max_batch_size`` inputs), run as one batch on a
free instance, and answered individually.

The wait adapts to the load: a free instance takes every request already queued at once; it waits
for more (at most ``max_batch_wait_ms``) only while the batch is not full and the recent arrival
rate says the missing inputs come within the wait (it waits for the expected time to fill the batch,
capped at ``max_batch_wait_ms``). So a lone request on an idle endpoint runs at once, a full batch
never waits, and under load batches fill up from the queue that builds while the instances compute.

An input that fails on its own (the instance retries a failed batch in parts until the failing
inputs stand alone) fails only its request, with :class:`InputFailed`; the other requests of the
batch get their outputs."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from fmhub.serving.base import BatchFailed, InputFailed, InstanceGone, NoInstance, QueueFull
from fmhub.serving.pool import Instance

log = logging.getLogger("fmhub.serving")


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
        waited: Batches that waited for more requests (the others left at once).
    """

    ARRIVAL_SMOOTHING = 0.2
    """Weight of the newest gap in the moving average of the time between two inputs."""

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
        self.waited = 0
        self._gap_s: float | None = None  # moving average of the time between two arriving inputs
        self._last_arrival_s: float | None = None
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def submit(self, inputs: list[Any], params: dict[str, Any]) -> asyncio.Future:
        """Queue a request; the future resolves to its outputs (one per input).

        Raises:
            QueueFull: too many requests wait.
        """
        future = asyncio.get_running_loop().create_future()
        request = _Request(inputs, params, future, json.dumps(params, sort_keys=True))
        self._arrived(request.enqueued_s, len(inputs))
        try:
            self.queue.put_nowait(request)
        except asyncio.QueueFull:
            raise QueueFull from None
        return future

    def _arrived(self, now_s: float, n: int) -> None:
        """Update the moving average of the gap between inputs with a request of ``n`` inputs."""
        if self._last_arrival_s is not None:
            gap = (now_s - self._last_arrival_s) / max(1, n)
            a = self.ARRIVAL_SMOOTHING
            self._gap_s = gap if self._gap_s is None else (1 - a) * self._gap_s + a * gap
        self._last_arrival_s = now_s

    def fill_wait_s(self, missing: int) -> float:
        """How long a batch short of ``missing`` inputs waits for them: 0 when the next input is not
        expected within ``max_batch_wait_s``; else the expected time to fill the batch, capped at
        ``max_batch_wait_s``. (Not waiting while another instance is idle was measured with
        ``benchmarks/serve.py``: it cut batches short under load and lost throughput.)"""
        gap = self._gap_s
        if missing <= 0 or gap is None or gap > self.max_batch_wait_s:
            return 0.0
        return min(self.max_batch_wait_s, missing * gap)

    async def _collect(self) -> list[_Request]:
        first = await self.queue.get()
        batch, size = [first], len(first.inputs)
        while size < self.max_batch_size and not self.queue.empty():  # everything already queued
            nxt = self.queue.get_nowait()
            batch.append(nxt)
            size += len(nxt.inputs)
        wait = self.fill_wait_s(self.max_batch_size - size)
        if wait <= 0:
            return batch
        self.waited += 1
        deadline = time.monotonic() + wait
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
                    why = f": {instance.error}" if instance.error else ""
                    raise NoInstance(f"instance {instance.name} is {instance.state}{why}")
            outputs, errors = await instance.run(inputs, group[0].params, [len(r.inputs) for r in group])
            self.batches += 1
            self.inputs += len(inputs)
            systemic = _systemic(errors, len(inputs))
            start = 0
            for r in group:
                if not r.future.done():
                    _answer(r, outputs, errors, start, systemic)
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


def _systemic(errors: dict[int, tuple[str, bool]], n: int) -> str | None:
    """The error of a batch that failed as a whole, or None when its failures are single inputs'.

    Every input of a batch of two or more failing alone says the deployment, not the inputs, is
    broken. (A request whose inputs could not be isolated, its retry budget spent, fails on its own:
    see :func:`request_failure`.)"""
    if n > 1 and len(errors) == n:
        return f"every input of the batch failed alone: {next(iter(errors.values()))[0]}"
    return None


def request_failure(errors: dict[int, tuple[str, bool]], start: int, n: int, systemic: str | None
                    ) -> tuple[list[int], str | None]:
    """One request's failed inputs (indices within it) and, when it fails as a whole, why.

    Args:
        errors: The batch's ``{index: (error, isolated)}``.
        start: The request's first index in the batch.
        n: Its inputs.
        systemic: The batch's :func:`_systemic` error.

    Returns:
        (sorted failed indices, the whole request's error or None when single inputs failed).
    """
    mine = sorted(i - start for i in errors if start <= i < start + n)
    unresolved = [errors[start + i][0] for i in mine if not errors[start + i][1]]
    if mine and unresolved:
        return mine, f"{unresolved[0]} ({len(mine)} of {n} inputs failed)"
    return mine, (systemic if mine else None)


def _answer(r: _Request, outputs: list[Any], errors: dict[int, tuple[str, bool]], start: int,
            systemic: str | None) -> None:
    """Resolve one request of a batch in which some inputs failed."""
    mine, whole = request_failure(errors, start, len(r.inputs), systemic)
    if not mine:
        r.future.set_result(outputs[start:start + len(r.inputs)])
    elif whole is not None:
        r.future.set_exception(BatchFailed(whole))
    else:
        r.future.set_exception(InputFailed(mine[0], errors[start + mine[0]][0], len(mine)))


__all__ = ["BatchFailed", "DynamicBatcher", "InputFailed", "NoInstance", "QueueFull", "request_failure"]
