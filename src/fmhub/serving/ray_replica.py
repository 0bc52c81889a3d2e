"""The Ray Serve replica of a ``ray`` deployment: loads the model version once, groups requests
with ``@serve.batch`` and runs :func:`fmhub.serving.instance.score_batch` on each batch.

Imported on the cluster's workers (and by :mod:`fmhub.serving.ray_serve` when a ``ray`` deployment
starts); it imports Ray at module level, so nothing else imports it.

A call of :meth:`FmhubReplica.score` answers one request: ``{"outputs": [...]}``,
``{"failed": [[index, cause], ...]}`` (inputs that failed alone), or ``{"batch_error": "..."}``
(the batch failed as a whole); the server turns those into the protocol's errors.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from ray import serve

from fmhub.serving.batcher import _systemic, request_failure
from fmhub.serving.instance import CPU_FORWARD_BATCH, load, model_max_tokens, score_batch

DEFAULT_MAX_BATCH_SIZE = 32
"""``@serve.batch`` bound until :meth:`FmhubReplica.__init__` sets the deployment's own."""


def _weight(items: list[tuple[Any, ...]]) -> int:
    """Inputs in a list of batched calls (each call counts its inputs, capped at the batch size it
    carries, so a request larger than ``max_batch_size`` runs alone rather than failing)."""
    return sum(item[3] for item in items)


class FmhubReplica:
    """One replica: the deployment's model in memory, scoring batches of requests.

    Args:
        config: ``model_path`` (a local folder, or an artifact URL resolved by ``resolve_files``),
            ``task``, ``device``, ``runtime``, ``threads`` (torch threads, default 1),
            ``max_batch_size``, ``max_batch_wait_ms``.
        resolve_files: Turns an artifact URL into a local folder on this node (None: ``model_path``
            is a local folder already).

    Raises:
        Exception: the model does not load (Serve marks the application failed with this error).
    """

    def __init__(self, config: dict[str, Any], resolve_files: Any = None) -> None:
        import warnings

        import torch

        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        warnings.filterwarnings("ignore")
        torch.set_num_threads(int(config.get("threads") or 1))
        t0 = time.perf_counter()
        config = dict(config)
        if resolve_files is not None:
            config["model_path"] = str(resolve_files(config["model_path"]))
        self.task, self.model, self.tokenizer, self.runtime = load(config)
        self.limit = model_max_tokens(self.model)
        self.on_gpu = any(p.is_cuda for p in self.model.parameters())
        self.load_s = round(time.perf_counter() - t0, 2)
        self.max_batch_size = int(config.get("max_batch_size") or DEFAULT_MAX_BATCH_SIZE)
        self._batched.set_max_batch_size(self.max_batch_size)
        self._batched.set_batch_wait_timeout_s(float(config.get("max_batch_wait_ms", 10.0)) / 1000.0)
        self.batches = 0
        self.inputs = 0

    def info(self) -> dict[str, Any]:
        """``runtime`` (``pytorch (fp32, cpu, 1 thread)``), ``pid``, ``load_s``, ``max_tokens``,
        ``batches`` and ``inputs`` scored by this replica."""
        return {"runtime": self.runtime, "pid": os.getpid(), "load_s": self.load_s, "max_tokens": self.limit,
                "batches": self.batches, "inputs": self.inputs}

    def check_health(self) -> None:
        """Serve's periodic health check: the model is loaded."""
        if self.model is None:
            raise RuntimeError("the model is not loaded")

    async def score(self, inputs: list[Any], params: dict[str, Any]) -> dict[str, Any]:
        """Score one request's decoded inputs with ``params`` (batched with other requests).

        Returns:
            See the module docstring.
        """
        key = json.dumps(params or {}, sort_keys=True)
        return await self._batched((inputs, params or {}, key, min(len(inputs), self.max_batch_size)))

    @serve.batch(max_batch_size=DEFAULT_MAX_BATCH_SIZE, batch_wait_timeout_s=0.01, batch_size_fn=_weight)
    async def _batched(self, items: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        """Run the calls of a batch: those with the same params together (one forward pass per
        group), in a thread so the replica keeps taking requests meanwhile."""
        answers: list[dict[str, Any] | None] = [None] * len(items)
        groups: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(item[2], []).append(i)
        for members in groups.values():
            for i, answer in zip(members, await asyncio.to_thread(self._run, [items[i] for i in members])):
                answers[i] = answer
        return answers  # type: ignore[return-value]

    def _run(self, group: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        inputs = [x for item in group for x in item[0]]
        try:
            chunk = len(inputs) if self.on_gpu else CPU_FORWARD_BATCH
            outputs, errors = score_batch(self.task, self.model, self.tokenizer, inputs, group[0][1],
                                          max_tokens=self.limit, chunk=chunk, sizes=[len(item[0]) for item in group])
        except Exception as exc:  # noqa: BLE001 - one bad batch never ends the replica
            return [{"batch_error": f"{type(exc).__name__}: {exc}"}] * len(group)
        self.batches += 1
        self.inputs += len(inputs)
        systemic = _systemic(errors, len(inputs))
        answers, start = [], 0
        for item in group:
            n = len(item[0])
            mine, whole = request_failure(errors, start, n, systemic)
            if not mine:
                answers.append({"outputs": outputs[start:start + n]})
            elif whole is not None:
                answers.append({"batch_error": whole})
            else:
                answers.append({"failed": [[i, errors[start + i][0]] for i in mine]})
            start += n
        return answers


__all__ = ["FmhubReplica"]
