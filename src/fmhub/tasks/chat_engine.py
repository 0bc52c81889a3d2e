"""Continuous batching for chat deployments: one decode step runs every active conversation, and
conversations join and leave between steps.

The running batch keeps one key/value cache, left-padded: row ``i`` holds conversation ``i``'s
cache, its attention mask says which columns are real. A conversation that joins is prefilled
(with the others that joined in the same step) and its cache is padded and concatenated to the
batch's; a conversation that ends (end-of-turn token, a stop string, ``max_tokens``, or cancelled
because its client went away) is dropped from the batch, and columns that are padding in every row
are cut. Positions are counted from the mask, so padding never shifts a conversation's positions.

Each conversation samples with its own settings (temperature, top_p, seed) and streams text deltas
(:class:`Event`); its usage counts prompt and completion tokens.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any

from fmhub.tasks.chat_cache import layers as _layers, make_cache as _make_cache

PREFILL_TOKENS_PER_STEP = 512
"""Prompt tokens prefilled at most per step (at least one conversation joins per step): the running
conversations get a decode step between prefills instead of waiting for every newcomer."""

DEFAULT_MAX_TOKENS = 2048
"""Completion tokens when a request names no ``max_tokens`` (capped by what the context leaves)."""


class PromptRejected(ValueError):
    """A conversation that cannot run on this model (too long for its context, ``max_tokens`` over
    it, or a message holding the text of a control token); the message says which and what to do.

    Attributes:
        param: The request field at fault (``messages``, ``messages[2].content`` or ``max_tokens``).
        code: ``context_length_exceeded``, or ``invalid_value`` for control-token text.
    """

    def __init__(self, message: str, param: str, code: str = "context_length_exceeded") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


@dataclass
class Sampling:
    """A conversation's generation settings (checked by the endpoint before they get here).

    Attributes:
        max_tokens: Completion tokens at most (None: what the context leaves, at most
            :data:`DEFAULT_MAX_TOKENS`).
        temperature: 0 picks the likeliest token (greedy); above 0 samples (default 1, as OpenAI).
        top_p: Nucleus sampling mass (1: off).
        stop: Strings that end the reply (not included in it).
        seed: Seed of this conversation's sampler (None: random).
    """

    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None


@dataclass
class Event:
    """What one step produced for one conversation.

    Attributes:
        id: The conversation's id.
        delta: New reply text (may be empty).
        finish_reason: ``stop`` or ``length`` on the conversation's last event, else None.
        usage: ``{"prompt_tokens", "completion_tokens", "total_tokens"}`` on the last event.
    """

    id: Any
    delta: str
    finish_reason: str | None = None
    usage: dict[str, int] | None = None


@dataclass
class _Sequence:
    id: Any
    prompt: list[int]
    sampling: Sampling
    max_tokens: int
    generator: Any
    generated: list[int] = field(default_factory=list)
    sent: int = 0  # characters of the reply text already streamed
    pending: int | None = None  # the last sampled token, fed at the next decode step
    finish_reason: str | None = None


class ChatEngine:
    """Generates replies for many conversations at once on one causal LM.

    Args:
        model: The loaded causal LM (eval mode, on its device).
        tokenizer: Its tokenizer (with a chat template, or ``render`` given).
        max_batch: Conversations decoded together at most; more wait their turn in order.
        context_tokens: The model's context (prompt plus completion) in tokens.
        end_ids: Token ids that end a reply (the end-of-turn and end-of-sequence tokens).
        render: ``messages -> prompt text`` (default: the tokenizer's chat template with the
            generation prompt).

    Attributes:
        steps: Decode steps run; ``max_step_batch``: the most conversations one step decoded;
            ``step_rows``: conversations decoded summed over steps (for the mean).
    """

    def __init__(self, model: Any, tokenizer: Any, max_batch: int, context_tokens: int, end_ids: list[int],
                 render: Any = None) -> None:
        import inspect

        import torch

        self.torch = torch
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max(1, int(max_batch))
        self.context_tokens = int(context_tokens)
        self.end_ids = set(int(i) for i in end_ids)
        self.render = render or (lambda messages: tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False))
        self.device = next(model.parameters()).device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (min(self.end_ids)
                                                                                        if self.end_ids else 0)
        forward_args = inspect.signature(model.forward).parameters
        self._keep_arg = "logits_to_keep" in forward_args
        # transformers 5.25 names the cache argument ``cache``; earlier versions ``past_key_values``
        self._cache_arg = "cache" if "cache" in forward_args else "past_key_values"
        self.waiting: collections.deque[_Sequence] = collections.deque()
        self.running: list[_Sequence] = []
        self._cache: Any = None
        self._mask: Any = None  # [rows, columns] 1 where the cache column is real
        self._cancelled: set[Any] = set()
        self.steps = 0
        self.max_step_batch = 0
        self.step_rows = 0
        self.active_last_step = 0

    # -- requests -----------------------------------------------------------------------------
    def prepare(self, messages: list[dict[str, str]], sampling: Sampling) -> tuple[list[int], int]:
        """Render and tokenise a conversation and check it fits the context.

        Returns:
            (prompt token ids, completion tokens at most).

        Raises:
            PromptRejected: the prompt leaves no room for a reply, or ``max_tokens`` is over what
                the context leaves.
        """
        text = self.render(messages)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        room = self.context_tokens - len(ids)
        if room < 1:
            raise PromptRejected(f"the conversation is {len(ids)} tokens; this model's context is "
                                 f"{self.context_tokens} tokens (prompt and reply together)", "messages")
        if sampling.max_tokens is not None and sampling.max_tokens > room:
            raise PromptRejected(f"max_tokens is {sampling.max_tokens}, but the conversation takes {len(ids)} of the "
                                 f"model's {self.context_tokens} context tokens: at most {room} are left for the reply",
                                 "max_tokens")
        limit = sampling.max_tokens if sampling.max_tokens is not None else min(room, DEFAULT_MAX_TOKENS)
        return ids, limit

    def add(self, request_id: Any, prompt: list[int], max_tokens: int, sampling: Sampling) -> None:
        """Queue a prepared conversation (see :meth:`prepare`); it joins the batch at a later step."""
        generator = self.torch.Generator(device="cpu")
        if sampling.seed is not None:
            generator.manual_seed(int(sampling.seed))
        else:
            generator.seed()
        self.waiting.append(_Sequence(request_id, list(prompt), sampling, int(max_tokens), generator))

    def cancel(self, request_id: Any) -> None:
        """Drop a conversation (its client went away); its slot frees before the next step."""
        self._cancelled.add(request_id)

    def fail_all(self) -> list[Any]:
        """Drop every conversation (after a step failed); returns their ids."""
        ids = [s.id for s in self.running] + [s.id for s in self.waiting]
        self.running, self.waiting = [], collections.deque()
        self._cache, self._mask = None, None
        return ids

    def has_work(self) -> bool:
        """True while a conversation runs or waits."""
        return bool(self.running or self.waiting)

    @property
    def active(self) -> int:
        """Conversations in the running batch."""
        return len(self.running)

    # -- steps --------------------------------------------------------------------------------
    def step(self) -> list[Event]:
        """Admit waiting conversations (prefill), decode one token for every running one, and
        return what each produced; finished conversations leave the batch."""
        events: list[Event] = []
        self._drop_cancelled()
        joining: list[_Sequence] = []
        budget = PREFILL_TOKENS_PER_STEP
        while self.waiting and len(self.running) + len(joining) < self.max_batch and \
                (not joining or len(self.waiting[0].prompt) <= budget):
            joining.append(self.waiting.popleft())
            budget -= len(joining[-1].prompt)
        with self.torch.inference_mode():
            if joining:
                events += self._prefill(joining)
            if self.running and any(s.pending is not None for s in self.running):
                events += self._decode()
        return events

    def _drop_cancelled(self) -> None:
        if not self._cancelled:
            return
        self.waiting = collections.deque(s for s in self.waiting if s.id not in self._cancelled)
        keep = [i for i, s in enumerate(self.running) if s.id not in self._cancelled]
        self._cancelled.clear()
        if len(keep) != len(self.running):
            self._select(keep)

    def _positions(self, mask: Any) -> Any:
        return (mask.long().cumsum(-1) - 1).clamp(min=0)

    def _prefill(self, joining: list[_Sequence]) -> list[Event]:
        """Prefill each newcomer on its own (no padding: a padded batch of prompts of different
        lengths cost twice as much on a CPU), then add its cache to the batch's."""
        torch = self.torch
        from transformers import DynamicCache

        rows = []
        for s in joining:
            ids = torch.tensor([s.prompt], dtype=torch.long, device=self.device)
            mask = torch.ones_like(ids)
            kwargs = {"logits_to_keep": 1} if self._keep_arg else {}
            kwargs[self._cache_arg] = DynamicCache()
            out = self.model(input_ids=ids, attention_mask=mask, use_cache=True, **kwargs)
            rows.append(out.logits[:, -1, :])
            self._merge(kwargs[self._cache_arg], mask)
            self.running.append(s)
        logits = torch.cat(rows)
        return self._advance(joining, logits, list(range(len(self.running) - len(joining), len(self.running))))

    def _decode(self) -> list[Event]:
        torch = self.torch
        rows = [i for i, s in enumerate(self.running) if s.pending is not None]
        if len(rows) != len(self.running):  # a conversation without a token to feed (never expected)
            self._select(rows)
            rows = list(range(len(self.running)))
        ids = torch.tensor([[s.pending] for s in self.running], dtype=torch.long, device=self.device)
        position = self._mask.long().sum(-1, keepdim=True)
        self._mask = torch.cat([self._mask, torch.ones_like(self._mask[:, :1])], dim=1)
        out = self.model(input_ids=ids, attention_mask=self._mask, position_ids=position, use_cache=True,
                         **{self._cache_arg: self._cache})  # the cache object grows in place
        self.steps += 1
        self.active_last_step = len(self.running)
        self.step_rows += len(self.running)
        self.max_step_batch = max(self.max_step_batch, len(self.running))
        return self._advance(list(self.running), out.logits[:, -1, :], rows)

    def _advance(self, seqs: list[_Sequence], logits: Any, rows: list[int]) -> list[Event]:
        """Sample one token for each of ``seqs`` (``rows``: their rows in the batch), emit text,
        and take finished ones out of the batch."""
        tokens = self._sample(seqs, logits)
        events, finished = [], set()
        for seq, token in zip(seqs, tokens):
            event = self._take(seq, token)
            events.append(event)
            if event.finish_reason is not None:
                finished.add(id(seq))
        if finished:
            self._select([i for i, s in enumerate(self.running) if id(s) not in finished])
        return events

    def _sample(self, seqs: list[_Sequence], logits: Any) -> list[int]:
        torch = self.torch
        logits = logits.float()
        greedy = logits.argmax(-1).tolist()
        out = []
        for row, seq in enumerate(seqs):
            t = seq.sampling.temperature
            if t is None or t <= 1e-5:
                out.append(int(greedy[row]))
                continue
            probs = torch.softmax(logits[row] / t, dim=-1)
            top_p = seq.sampling.top_p
            if top_p is not None and top_p < 1.0:
                sorted_p, order = probs.sort(descending=True)
                cut = sorted_p.cumsum(-1) - sorted_p >= top_p  # keep the smallest set reaching top_p
                cut[0] = False  # and always the likeliest token (top_p 0: greedy)
                sorted_p[cut] = 0.0
                probs = torch.zeros_like(probs).scatter_(0, order, sorted_p)
            out.append(int(torch.multinomial(probs.cpu(), 1, generator=seq.generator).item()))
        return out

    def _take(self, seq: _Sequence, token: int) -> Event:
        """Add a sampled token to ``seq`` and say what text it adds and whether it ends the reply."""
        finish = None
        if token in self.end_ids:
            finish = "stop"
        else:
            seq.generated.append(token)
            seq.pending = token
        text = self.tokenizer.decode(seq.generated, skip_special_tokens=True)
        stops = seq.sampling.stop
        if stops and finish is None:
            hits = [text.find(s, max(0, seq.sent - len(s))) for s in stops]
            hits = [h for h in hits if h >= 0]
            if hits:
                text, finish = text[:min(hits)], "stop"
        if finish is None and (len(seq.generated) >= seq.max_tokens
                               or len(seq.prompt) + len(seq.generated) >= self.context_tokens):
            finish = "length"
        if finish is None:
            hold = max((len(s) for s in stops), default=1) - 1  # a stop string may be starting
            ready = len(text) - hold
            while ready > seq.sent and text[ready - 1] == "\ufffd":  # an unfinished character
                ready -= 1
        else:
            ready = len(text)
        delta = text[seq.sent:ready] if ready > seq.sent else ""
        seq.sent = max(seq.sent, ready)
        if finish is None:
            return Event(seq.id, delta)
        seq.finish_reason, seq.pending = finish, None
        usage = {"prompt_tokens": len(seq.prompt), "completion_tokens": len(seq.generated) + (1 if token in self.end_ids else 0)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return Event(seq.id, delta, finish, usage)

    # -- the batch's cache ----------------------------------------------------------------------
    def _merge(self, cache: Any, mask: Any) -> None:
        """Append a prefilled group's cache and mask to the batch's (padding the shorter on the left)."""
        if self._cache is None or not self.running:
            self._cache, self._mask = _make_cache(_layers(cache)), mask
            return
        torch = self.torch
        old, new = _layers(self._cache), _layers(cache)
        width = max(self._mask.shape[1], mask.shape[1])

        def pad(t: Any, dim: int) -> Any:
            missing = width - t.shape[dim]
            if missing <= 0:
                return t
            shape = list(t.shape)
            shape[dim] = missing
            return torch.cat([torch.zeros(shape, dtype=t.dtype, device=t.device), t], dim=dim)

        merged = [(torch.cat([pad(k0, 2), pad(k1, 2)]), torch.cat([pad(v0, 2), pad(v1, 2)]))
                  for (k0, v0), (k1, v1) in zip(old, new)]
        self._mask = torch.cat([pad(self._mask, 1), pad(mask, 1)])
        self._cache = _make_cache(merged)

    def _select(self, keep: list[int]) -> None:
        """Keep only the rows ``keep`` of the batch; cut columns that are padding in every row."""
        self.running = [self.running[i] for i in keep]
        if not self.running:
            self._cache, self._mask = None, None
            return
        index = self.torch.tensor(keep, dtype=self.torch.long, device=self.device)
        mask = self._mask.index_select(0, index)
        real = mask.any(0).nonzero()
        start = int(real[0]) if len(real) else 0
        self._mask = mask[:, start:]
        self._cache = _make_cache([(k.index_select(0, index)[:, :, start:], v.index_select(0, index)[:, :, start:])
                                   for k, v in _layers(self._cache)])


def timed_step(engine: ChatEngine) -> tuple[list[Event], float]:
    """One :meth:`ChatEngine.step` and its duration in seconds."""
    t0 = time.perf_counter()
    events = engine.step()
    return events, time.perf_counter() - t0


__all__ = ["ChatEngine", "DEFAULT_MAX_TOKENS", "Event", "PromptRejected", "Sampling"]
