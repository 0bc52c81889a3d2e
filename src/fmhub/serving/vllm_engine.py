"""Runtime ``vllm`` for chat deployments: vLLM's engine (paged attention, its own continuous
batching) inside the instance process, behind the same interface as
:class:`~fmhub.tasks.chat_engine.ChatEngine`. Needs a CUDA GPU and the ``fmhub[vllm]`` extra;
:func:`vllm_problem` says why it cannot run, so a deployment is refused before anything starts.
"""

from __future__ import annotations

import importlib.util
import itertools
import tempfile
from typing import Any

from fmhub.tasks.chat_engine import DEFAULT_MAX_TOKENS, Event, PromptRejected, Sampling


def vllm_problem(device: str) -> str | None:
    """Why runtime vllm cannot serve on this machine with ``device``, or None when it can."""
    if importlib.util.find_spec("vllm") is None:
        return "the vllm package is not installed (pip install 'fmhub[vllm]')"
    if not (device or "").startswith(("cuda", "auto")):
        return f"vLLM runs on a CUDA GPU; the deployment asks --device {device}"
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible to this machine"
    return None


class VllmChatEngine:
    """vLLM's ``LLMEngine`` with the :class:`~fmhub.tasks.chat_engine.ChatEngine` interface.

    Args:
        config: The instance config (``model_path``, ``base_model_path``, ``max_batch_size``).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        from transformers import AutoTokenizer
        from vllm import EngineArgs, LLMEngine

        from fmhub.tasks.adapters import is_adapter_folder

        path = str(config["model_path"])
        if is_adapter_folder(path):  # vLLM loads full weights: merge the adapter once
            import torch

            from fmhub.tasks.adapters import load_causal_lm

            merged = tempfile.mkdtemp(prefix="fmhub-vllm-")
            load_causal_lm(path, config.get("base_model_path"), dtype=torch.bfloat16).save_pretrained(merged)
            AutoTokenizer.from_pretrained(path).save_pretrained(merged)
            path = merged
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.engine = LLMEngine.from_engine_args(EngineArgs(model=path, max_num_seqs=int(config.get("max_batch_size") or 32),
                                                            dtype="bfloat16"))
        self.context_tokens = int(self.engine.model_config.max_model_len)
        self.description = f"vllm (bf16, cuda, max_model_len {self.context_tokens})"
        self._ids: dict[str, Any] = {}
        self._sent: dict[str, int] = {}
        self._counter = itertools.count()
        self.steps = 0
        self.max_step_batch = 0
        self.active_last_step = 0

    def prepare(self, messages: list[dict[str, str]], sampling: Sampling) -> tuple[list[int], int]:
        """As :meth:`ChatEngine.prepare`."""
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        room = self.context_tokens - len(ids)
        if room < 1:
            raise PromptRejected(f"the conversation is {len(ids)} tokens; this model's context is "
                                 f"{self.context_tokens} tokens", "messages")
        if sampling.max_tokens is not None and sampling.max_tokens > room:
            raise PromptRejected(f"max_tokens is {sampling.max_tokens}, but at most {room} tokens are left for the "
                                 f"reply in the model's {self.context_tokens}-token context", "max_tokens")
        return ids, sampling.max_tokens or min(room, DEFAULT_MAX_TOKENS)

    def add(self, request_id: Any, prompt: list[int], max_tokens: int, sampling: Sampling) -> None:
        """Queue a prepared conversation on vLLM's engine."""
        from vllm import SamplingParams

        key = f"r{next(self._counter)}"
        self._ids[key], self._sent[key] = request_id, 0
        params = SamplingParams(max_tokens=max_tokens, temperature=sampling.temperature, top_p=sampling.top_p,
                                stop=sampling.stop or None, seed=sampling.seed)
        self.engine.add_request(key, {"prompt_token_ids": prompt}, params)

    def cancel(self, request_id: Any) -> None:
        """Abort a conversation."""
        keys = [k for k, v in self._ids.items() if v == request_id]
        if keys:
            self.engine.abort_request(keys)
            for k in keys:
                self._ids.pop(k, None)

    def has_work(self) -> bool:
        """True while vLLM has unfinished conversations."""
        return bool(self._ids) and self.engine.has_unfinished_requests()

    @property
    def active(self) -> int:
        """Conversations in flight."""
        return len(self._ids)

    def fail_all(self) -> list[Any]:
        """Abort everything (after a failed step); returns the ids."""
        ids = list(self._ids.values())
        self.engine.abort_request(list(self._ids))
        self._ids.clear()
        return ids

    def step(self) -> list[Event]:
        """One engine step: a text delta per conversation that advanced."""
        outputs = self.engine.step()
        self.steps += 1
        self.active_last_step = len(self._ids)
        self.max_step_batch = max(self.max_step_batch, len(outputs))
        events = []
        for out in outputs:
            request_id = self._ids.get(out.request_id)
            if request_id is None:
                continue
            completion = out.outputs[0]
            delta = completion.text[self._sent[out.request_id]:]
            self._sent[out.request_id] = len(completion.text)
            if not out.finished:
                events.append(Event(request_id, delta))
                continue
            self._ids.pop(out.request_id, None)
            usage = {"prompt_tokens": len(out.prompt_token_ids or []), "completion_tokens": len(completion.token_ids)}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            reason = "length" if completion.finish_reason == "length" else "stop"
            events.append(Event(request_id, delta, reason, usage))
        return events


__all__ = ["VllmChatEngine", "vllm_problem"]
