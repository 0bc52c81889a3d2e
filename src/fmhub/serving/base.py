"""The serving seam: what an endpoint needs from a place that hosts deployments.

A serving backend starts a deployment (a model version on N instances), says how it is doing,
scores batches of already decoded inputs, and stops it. Keys, request parsing, limits and traffic
routing stay with the endpoint (:mod:`fmhub.services.serving`); the backend is chosen by the
deployment's ``backend`` field (``local``: instance processes of this server, see
:mod:`fmhub.serving.local`).

Scoring errors are the same for every backend: :class:`QueueFull` (429), :class:`NoInstance` and
:class:`InstanceGone` (503), :class:`InputFailed` (422 for that request only), :class:`BatchFailed`
or another ``RuntimeError`` (503).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from fmhub.entities import Deployment


class QueueFull(Exception):
    """More requests wait than the deployment's ``max_queue``."""


class NoInstance(Exception):
    """No instance of the deployment is ready."""


class InstanceGone(Exception):
    """The instance serving a batch ended while the batch was in flight (it is restarted)."""


class InputFailed(Exception):
    """An input of this request failed on its own (its neighbours in the batch were answered).

    Attributes:
        index: The input's position in its request.
        cause: What the instance reported (``TypeError: ...``).
        failed: How many inputs of the request failed.
    """

    def __init__(self, index: int, cause: str, failed: int = 1) -> None:
        super().__init__(f"input {index}: {cause}")
        self.index, self.cause, self.failed = index, cause, failed


class BatchFailed(RuntimeError):
    """The batch failed as a whole (every input of it, or the failing ones could not be told apart)."""


Notify = Callable[[str], None]
"""Receives a line for the endpoint's log (instance ready, died, restarted, failed)."""


@runtime_checkable
class ServingBackend(Protocol):
    """Hosts deployments and scores batches for them.

    A deployment is named by ``(endpoint, name)``. Every method is called from the server's event
    loop.

    Attributes:
        name: The ``backend`` value it serves (``local``).
    """

    name: str

    async def start(self, deployment: Deployment, model_path: str, notify: Notify) -> None:
        """Start (or restart) a deployment; returns at once, the model loads in the background.

        Args:
            deployment: The record: model, task, instances, device, runtime, batching and queue limits.
            model_path: The model version's files.
            notify: Lines for the endpoint's log.
        """
        ...

    async def wait_ready(self, endpoint: str, name: str, timeout_s: float) -> str | None:
        """Wait until every instance loaded the model: None when ready, else why not (the error of
        a failed instance, ``stopped``, or its state at the timeout)."""
        ...

    def status(self, endpoint: str, name: str) -> dict[str, Any] | None:
        """Live state for ``show`` (None: not running here): ``state`` (``creating``, ``ready``,
        ``failed``), ``error``, ``runtime_detail``, ``processes``, ``batches``,
        ``mean_batch_size``, ``queued``."""
        ...

    def running(self) -> list[tuple[str, str]]:
        """The ``(endpoint, name)`` of every deployment running here."""
        ...

    async def score(self, endpoint: str, name: str, inputs: list[Any], params: dict[str, Any]) -> list[Any]:
        """Score decoded inputs (the form ``task.predict`` takes) with ``params``; one response item
        per input, in order. Cancelling the call drops the request if it has not run yet.

        Raises:
            QueueFull, NoInstance, InstanceGone, InputFailed, BatchFailed, RuntimeError: see the
            module docstring.
        """
        ...

    async def stop(self, endpoint: str, name: str) -> None:
        """Stop a deployment (no-op when it does not run here); waiting requests fail with
        :class:`NoInstance`."""
        ...

    async def shutdown(self) -> None:
        """Stop every deployment (server shutdown)."""
        ...


__all__ = ["BatchFailed", "InputFailed", "InstanceGone", "NoInstance", "Notify", "QueueFull", "ServingBackend"]
