"""The ``local`` serving backend: each deployment runs as instance processes of this server (see
:mod:`fmhub.serving.pool`), fed by a dynamic batcher (:mod:`fmhub.serving.batcher`); each instance
runs :func:`fmhub.serving.instance.score_batch`. A chat deployment (a task whose examples are conversations) runs
chat instances instead (:mod:`fmhub.serving.chat_instance`: continuous batching, streamed replies),
fed by a :class:`~fmhub.serving.chat_dispatch.ChatDispatcher`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from fmhub.entities import Deployment
from fmhub.serving.base import NoInstance, Notify
from fmhub.serving.batcher import DynamicBatcher
from fmhub.serving.chat_dispatch import ChatDispatcher, ChatStream, serves_conversations
from fmhub.serving.pool import Instance

log = logging.getLogger("fmhub.serving")

LOAD_TIMEOUT_S = 600.0
"""How long the endpoint log waits for an instance's "ready" line."""


@dataclass
class LocalDeployment:
    """A deployment running in this server: its record, instance processes and batcher (a chat
    deployment: its dispatcher instead)."""

    record: Deployment
    instances: list[Instance]
    batcher: DynamicBatcher | None
    chat: ChatDispatcher | None = None

    def status(self) -> dict[str, Any]:
        """State for ``show``: ``ready`` when every instance has loaded its model."""
        states = [i.state for i in self.instances]
        state = "ready" if all(s == "ready" for s in states) else (
            "failed" if any(s == "failed" for s in states) else "creating")
        error = next((i.error for i in self.instances if i.state == "failed" and i.error), None)
        if self.chat is not None:
            return {"state": state, **({"error": error} if error else {}),
                    "runtime_detail": next((i.runtime for i in self.instances if i.runtime), None),
                    "processes": [{"pid": i.pid, "state": i.state, "restarts": i.restarts, "error": i.error}
                                  for i in self.instances], **self.chat.status()}
        mean = self.batcher.inputs / self.batcher.batches if self.batcher.batches else None
        return {"state": state, **({"error": error} if error else {}), "runtime_detail": next((i.runtime for i in self.instances if i.runtime), None),
                "processes": [{"pid": i.pid, "state": i.state, "restarts": i.restarts, "error": i.error}
                              for i in self.instances],
                "batches": self.batcher.batches, "mean_batch_size": round(mean, 2) if mean else None,
                "queued": self.batcher.queue.qsize()}


class LocalServingBackend:
    """Deployments as instance processes of this server.

    Args:
        threads_per_instance: Torch threads per CPU instance (None: half the cores per instance).

    Attributes:
        live: The running deployments by ``(endpoint, name)``.
    """

    name = "local"

    def __init__(self, threads_per_instance: int | None = None) -> None:
        self.threads = threads_per_instance
        self.live: dict[tuple[str, str], LocalDeployment] = {}
        self._tasks: set[asyncio.Task] = set()  # "ready" reports in flight (kept from the GC)

    async def start(self, deployment: Deployment, model_path: str, notify: Notify,
                    base_model_path: str | None = None) -> None:
        """Start the deployment's instances and batcher (replacing a running one of that name).

        ``base_model_path``: the base model's folder when ``model_path`` holds a LoRA adapter."""
        await self.stop(deployment.endpoint, deployment.name)
        loop = asyncio.get_running_loop()
        config = {"model_path": model_path, "task": deployment.task, "device": deployment.device,
                  "runtime": deployment.runtime, "threads": self.threads, "instances": deployment.instances,
                  "base_model_path": base_model_path}
        is_chat = serves_conversations(deployment.task)
        if is_chat:
            config.update(mode="chat", max_batch_size=deployment.max_batch_size)
        endpoint = deployment.endpoint
        instances = [Instance(f"{endpoint}/{deployment.name}/{i}", config, loop,
                              notify=lambda message: loop.call_soon_threadsafe(notify, message))
                     for i in range(deployment.instances)]
        if is_chat:
            live = LocalDeployment(deployment, instances, None,
                                   ChatDispatcher(instances, deployment.max_batch_size, deployment.max_queue))
        else:
            batcher = DynamicBatcher(instances, deployment.max_batch_size, deployment.max_batch_wait_ms,
                                     deployment.max_queue)
            live = LocalDeployment(deployment, instances, batcher)
        self.live[(endpoint, deployment.name)] = live
        task = loop.create_task(self._report_ready(live, notify))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _report_ready(live: LocalDeployment, notify: Notify) -> None:
        for instance in live.instances:
            ok = await instance.wait_ready(LOAD_TIMEOUT_S)
            if instance.state == "stopped":
                continue
            notify(f"instance {instance.name} (pid {instance.pid}) "
                   + (f"ready: {instance.runtime}" if ok else f"{instance.state}: {instance.error}"))

    async def wait_ready(self, endpoint: str, name: str, timeout_s: float) -> str | None:
        """None once every instance loaded the model; else the first failed instance's error (or state)."""
        live = self.live.get((endpoint, name))
        if live is None:
            return "stopped"
        for instance in live.instances:
            await instance.wait_ready(timeout_s)
        failed = [i for i in live.instances if i.state != "ready"]
        if not failed:
            return None
        return failed[0].error or failed[0].state

    def status(self, endpoint: str, name: str) -> dict[str, Any] | None:
        """See :meth:`LocalDeployment.status` (None: not running here)."""
        live = self.live.get((endpoint, name))
        return live.status() if live is not None else None

    def running(self) -> list[tuple[str, str]]:
        """The deployments running here."""
        return list(self.live)

    async def score(self, endpoint: str, name: str, inputs: list[Any], params: dict[str, Any]) -> list[Any]:
        """Queue the inputs on the deployment's batcher and await their outputs.

        Raises:
            NoInstance: the deployment does not run here. QueueFull, InstanceGone, InputFailed,
            BatchFailed, RuntimeError: from the batch (see :mod:`fmhub.serving.base`).
        """
        live = self.live.get((endpoint, name))
        if live is None or live.batcher is None:
            raise NoInstance(f"deployment {name} is not running" if live is None else
                             f"deployment {name} is a chat deployment: it answers conversations")
        future = live.batcher.submit(inputs, params)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            future.cancel()  # a request given up (timeout) is skipped when its batch forms
            raise

    def chat(self, endpoint: str, name: str, chat: dict[str, Any]) -> ChatStream:
        """Open a conversation on a chat deployment (await ``accepted()``, then read ``deltas()``).

        Args:
            chat: ``{"messages": [{"role", "content"}, ...], "sampling": {"max_tokens", "temperature",
                "top_p", "stop", "seed"}}``.

        Raises:
            NoInstance: not running here, not a chat deployment, or no instance ready.
            QueueFull: too many conversations are open. InstanceGone: the instance's pipe closed.
        """
        live = self.live.get((endpoint, name))
        if live is None or live.chat is None:
            raise NoInstance(f"deployment {name} is not running" if live is None else
                             f"deployment {name} is not a chat deployment")
        return live.chat.start(chat)

    async def stop(self, endpoint: str, name: str) -> None:
        """Close the batcher and end the instance processes (no-op when not running)."""
        live = self.live.pop((endpoint, name), None)
        if live is None:
            return
        if live.batcher is not None:
            live.batcher.close()
        await asyncio.gather(*(asyncio.to_thread(i.stop) for i in live.instances))

    async def shutdown(self) -> None:
        """Stop every deployment."""
        for endpoint, name in list(self.live):
            await self.stop(endpoint, name)


__all__ = ["LocalDeployment", "LocalServingBackend"]
