"""The server's side of a chat deployment: spreads conversations over its instances (the one with
the fewest open conversations), bounds how many may be open, and hands each caller a
:class:`ChatStream` of text deltas."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from fmhub.serving.base import InstanceGone, NoInstance, QueueFull
from fmhub.serving.pool import Instance


def serves_conversations(task_name: str) -> bool:
    """True for a task whose examples are conversations (a ``messages`` key): its deployments run
    chat instances and answer the chat routes."""
    from fmhub.tasks import get_task

    schema = get_task(task_name).schema
    return "messages" in tuple(schema.required) + tuple(schema.optional)


class PromptRejected(Exception):
    """The instance refused the conversation for the request's own fault (422).

    Attributes:
        param: The request field at fault (``messages``, ``max_tokens``).
        code: A machine-readable code (``context_length_exceeded``).
    """

    def __init__(self, message: str, param: str | None, code: str | None) -> None:
        super().__init__(message)
        self.param, self.code = param, code


class ChatStream:
    """One conversation in flight on an instance.

    Attributes:
        prompt_tokens: Tokens of the rendered prompt (set by :meth:`accepted`).
        finish_reason: ``stop`` or ``length`` once finished; ``usage``: the token counts then.
    """

    def __init__(self, dispatcher: ChatDispatcher, instance: Instance, stream_id: int, queue: asyncio.Queue) -> None:
        self._dispatcher, self._instance, self._id, self._queue = dispatcher, instance, stream_id, queue
        self.prompt_tokens = 0
        self.finish_reason: str | None = None
        self.usage: dict[str, int] | None = None
        self._closed = False

    async def _next(self) -> dict[str, Any]:
        message = await self._queue.get()
        kind = message.get("type")
        if kind == "gone":
            self.close()
            raise InstanceGone(message["error"])
        if kind == "result":
            self.close()
            raise RuntimeError(message["error"])
        if kind == "rejected":
            self.close()
            raise PromptRejected(message["error"], message.get("param"), message.get("code"))
        return message

    async def accepted(self) -> None:
        """Wait until the instance checked the conversation against the model's context.

        Raises:
            PromptRejected: too long for the context (422). InstanceGone, RuntimeError: the instance
                ended or failed (503).
        """
        message = await self._next()
        self.prompt_tokens = int(message.get("prompt_tokens") or 0)

    async def deltas(self) -> AsyncIterator[str]:
        """The reply's text as it is produced (call :meth:`accepted` first); ``finish_reason`` and
        ``usage`` are set when it ends."""
        while self.finish_reason is None:
            event = await self._next()
            if "finish_reason" in event:
                self.finish_reason, self.usage = event["finish_reason"], event.get("usage")
                self.close()
            if event.get("delta"):
                yield event["delta"]

    def close(self) -> None:
        """Release the slot; an unfinished conversation is cancelled on its instance."""
        if self._closed:
            return
        self._closed = True
        if self.finish_reason is None:
            self._instance.cancel_chat(self._id)
        self._dispatcher._release(self._instance)


class ChatDispatcher:
    """Opens conversations on a chat deployment's instances.

    Args:
        instances: The deployment's instances (chat mode).
        max_batch: Conversations one instance decodes together (the deployment's ``max_batch_size``).
        max_queue: Conversations that may wait beyond the running batches; more answer
            :class:`QueueFull` (429).

    Attributes:
        open: Open conversations per instance name.
    """

    def __init__(self, instances: list[Instance], max_batch: int, max_queue: int) -> None:
        self.instances = instances
        self.capacity = len(instances) * max_batch + max_queue
        self.open: dict[str, int] = {i.name: 0 for i in instances}
        self.conversations = 0

    def start(self, chat: dict[str, Any]) -> ChatStream:
        """Send a conversation to the least busy ready instance.

        Raises:
            QueueFull: :attr:`capacity` conversations are open. NoInstance: none is ready.
            InstanceGone: the chosen instance's pipe is closed.
        """
        if sum(self.open.values()) >= self.capacity:
            raise QueueFull
        ready = [i for i in self.instances if i.state == "ready"]
        if not ready:
            states = ", ".join(sorted({i.state for i in self.instances}))
            raise NoInstance(f"no instance is ready ({states})")
        instance = min(ready, key=lambda i: self.open[i.name])
        stream_id, queue = instance.open_chat(chat)
        self.open[instance.name] += 1
        self.conversations += 1
        return ChatStream(self, instance, stream_id, queue)

    def _release(self, instance: Instance) -> None:
        self.open[instance.name] = max(0, self.open[instance.name] - 1)

    def status(self) -> dict[str, Any]:
        """Figures for ``show``: open conversations, decode steps and the largest step batch."""
        return {"open_conversations": sum(self.open.values()), "conversations": self.conversations,
                "decode_steps": sum(i.chat_stats["steps"] for i in self.instances),
                "max_step_batch": max((i.chat_stats["max_step_batch"] for i in self.instances), default=0)}


__all__ = ["ChatDispatcher", "ChatStream", "PromptRejected", "serves_conversations"]
