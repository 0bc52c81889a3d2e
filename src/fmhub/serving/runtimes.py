"""Deployment runtimes for the classic tasks, and the choice ``--runtime auto`` makes.

A runtime turns the loaded fp32 model into the object the task predicts with:

- ``pytorch``: the model as loaded (fp32 on the CPU, bf16 on a CUDA GPU).
- ``pytorch-bf16``: a bf16 copy of the weights (CPU). Fast where the CPU multiplies bf16 natively
  (AVX512-BF16, AMX); elsewhere it is emulated, so ``auto`` does not try it there.
- ``pytorch-int8``: dynamic per-channel int8 quantisation of the linear layers (CPU). Dynamic
  quantisation scales the activations of a whole batch together, so an input's answer can change
  with the requests it shares a batch with (up to 0.13 in score on the SST-2 classifier of
  benchmarks/serve.py): ``auto`` never picks it; name it to use it.
- ``onnx``: the model exported to ONNX and run by ONNX Runtime (CPU; extra ``fmhub[onnx]``); the
  tasks whose prediction reads only the logits (``Task.onnx_logits``: text and token classification).

``auto`` (the default) tries the faster runtimes in :func:`auto_candidates` order and keeps the first
whose headline metric (``Task.headline_metric``) on the model's own stored test predictions
(``runtime-check.jsonl`` in the model folder, written by the fine-tune from its test, else
validation, predictions) is within :data:`MAX_METRIC_DROP_POINTS` of the fp32 figure stored
there. Without stored predictions (an imported model), or when no candidate holds, it serves fp32 and
says why. The choice is deterministic (the same rows, the same batches), so every instance of a
deployment makes the same one. The order is a measured rule: ``python benchmarks/cpu_runtimes.py``
(see benchmarks/README.md) times each runtime on the same model and rows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("fmhub.serving")

RUNTIMES = ("auto", "pytorch", "pytorch-bf16", "pytorch-int8", "onnx")
"""Runtimes of the classic tasks (a chat deployment has ``auto``, ``pytorch`` and ``vllm``)."""
CHECK_FILE = "runtime-check.jsonl"
"""Stored test predictions in a model folder: one ``{"input", "prediction", "reference"}`` per line."""
CHECK_ROWS = 512
"""Rows of stored predictions a fine-tune keeps for the check (the first ones of its split)."""
MAX_METRIC_DROP_POINTS = 0.5
"""How far a faster runtime's headline metric may fall below fp32's on the stored rows, in points
(0.5 point = 0.005 of accuracy or F1 in [0, 1], 0.5 of a ROUGE or SQuAD F1 in [0, 100])."""


@dataclass
class RuntimeChoice:
    """What a deployment predicts with.

    Attributes:
        runtime: ``pytorch``, ``pytorch-bf16``, ``pytorch-int8`` or ``onnx``.
        model: The object ``task.predict`` takes.
        reason: Why this runtime (``auto``: the check's figures), for the deployment's details.
    """

    runtime: str
    model: Any
    reason: str = ""


def onnx_available() -> bool:
    """True when ONNX Runtime and the ONNX exporter's packages import (``pip install 'fmhub[onnx]'``)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def auto_candidates(task: Any, native_bf16: bool, onnx_ok: bool) -> list[str]:
    """The runtimes ``auto`` tries, fastest first (the measured order in benchmarks/README.md);
    never ``pytorch-int8``, whose answers depend on the batch (module docstring).

    Args:
        task: The deployment's task module (``runtime_checked``, ``onnx_logits``).
        native_bf16: Whether the CPU has AVX512-BF16 or AMX (bf16 is emulated, slower, elsewhere).
        onnx_ok: Whether ONNX Runtime is installed.

    Returns:
        Runtime names, fastest first; empty for the tasks ``auto`` does not check.
    """
    if not task.runtime_checked:
        return []
    order = []
    if native_bf16:
        order.append("pytorch-bf16")
    if onnx_ok and task.onnx_logits:
        order.append("onnx")
    return order


def build_runtime(runtime: str, model: Any, task: Any, threads: int) -> Any:
    """The object ``task.predict`` takes for ``runtime`` (``model`` itself is left as it is, but
    ``pytorch-int8`` quantises a copy and ``pytorch-bf16`` converts a copy).

    Args:
        runtime: A name of :data:`RUNTIMES` other than ``auto``.
        model: The loaded fp32 model, on the CPU, in eval mode.
        task: The task module (``onnx`` serves the tasks with ``onnx_logits`` only).
        threads: Threads the runtime may use.

    Raises:
        ValueError: a runtime this model or machine cannot use (the message says which and why).
    """
    import copy

    import torch

    if runtime == "pytorch":
        return model
    if runtime == "pytorch-bf16":
        clone = copy.deepcopy(model).to(torch.bfloat16)
        clone.eval()
        return clone
    if runtime == "pytorch-int8":
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        # Per-channel scales: on the SST-2 classifier of benchmarks/serve.py per-tensor int8 lost 1.2
        # accuracy points, per-channel none (and ran faster).
        return quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear: per_channel_dynamic_qconfig},
                                dtype=torch.qint8)
    if runtime == "onnx":
        if not task.onnx_logits:
            raise ValueError(f"runtime onnx serves the tasks that predict from logits alone (text and token "
                             f"classification), not {task.name}")
        if not onnx_available():
            raise ValueError("runtime onnx needs ONNX Runtime: pip install 'fmhub[onnx]'")
        from fmhub.serving.onnx_model import OnnxModel

        return OnnxModel.export(model, threads)
    raise ValueError(f"unknown runtime {runtime!r} (one of {', '.join(RUNTIMES)})")


def describe(runtime: str, threads: int) -> str:
    """``pytorch-bf16 (bf16 weights, cpu, 1 thread)``: the runtime line an instance reports."""
    what = {"pytorch": "fp32", "pytorch-bf16": "bf16 weights", "pytorch-int8": "dynamic per-channel int8 linear layers",
            "onnx": "ONNX Runtime, fp32"}[runtime]
    return f"{runtime} ({what}, cpu, {threads_text(threads)})"


def threads_text(n: int) -> str:
    """``1 thread``, ``4 threads``."""
    return f"{n} thread{'' if n == 1 else 's'}"


def read_check_rows(model_path: str | Path, limit: int = CHECK_ROWS) -> list[dict[str, Any]]:
    """The stored predictions of a model folder (:data:`CHECK_FILE`; empty when there are none), at
    most ``limit`` rows (an imported folder may hold a longer file than a fine-tune writes)."""
    path = Path(model_path) / CHECK_FILE
    if not path.is_file():
        return []
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if len(rows) >= limit:
                break
            if line.strip():
                rows.append(json.loads(line))
    return rows


def write_check_rows(predictions_path: Path, model_dir: Path, limit: int = CHECK_ROWS) -> int:
    """Copy the first ``limit`` rows of a fine-tune's predictions file into ``model_dir`` as
    :data:`CHECK_FILE` (only ``input``, ``prediction`` and ``reference``). Returns the rows written."""
    n = 0
    with predictions_path.open(encoding="utf-8") as src, (model_dir / CHECK_FILE).open("w", encoding="utf-8") as dst:
        for line in src:
            if n >= limit:
                break
            row = json.loads(line)
            dst.write(json.dumps({k: row.get(k) for k in ("input", "prediction", "reference")},
                                 ensure_ascii=False) + "\n")
            n += 1
    return n


def headline(task: Any, model: Any, predictions: list[Any], references: list[Any]) -> float:
    """The task's headline metric of ``predictions`` against ``references``, in points (0-100)."""
    from fmhub.tasks.base import LabelInfo

    id2label = {int(k): v for k, v in (getattr(model.config, "id2label", None) or {}).items()}
    labels = [id2label[i] for i in range(len(id2label))]
    extra = {k[len("fmhub_"):]: v for k, v in model.config.to_dict().items() if k.startswith("fmhub_")}
    metrics = task.compute_metrics(task.predictions_for_metrics(predictions), references,
                                   LabelInfo(labels=labels, extra=extra))
    return float(metrics[task.headline_metric]) * task.metric_points


def choose_auto(task: Any, model: Any, tokenizer: Any, model_path: str, *, threads: int, native_bf16: bool,
                max_tokens: int, batch_size: int) -> RuntimeChoice:
    """``--runtime auto``: the first runtime of :func:`auto_candidates` whose headline metric on the
    stored predictions stays within :data:`MAX_METRIC_DROP_POINTS` of fp32's (rule in the module
    docstring); fp32 when none does or nothing is stored.

    Args:
        task: The task module.
        model: The loaded fp32 model (CPU, eval mode).
        tokenizer: Its tokenizer.
        model_path: The model folder (holds :data:`CHECK_FILE` when the model was fine-tuned here).
        threads: Threads per instance.
        native_bf16: Whether the CPU has native bf16.
        max_tokens: Longest input in tokens (as the endpoint serves).
        batch_size: Inputs per forward pass (as the endpoint serves).

    Returns:
        The chosen runtime, its model and the reason (figures included).
    """
    if not task.runtime_checked:
        return RuntimeChoice("pytorch", model, f"auto: fp32 ({task.name} is served as trained; give --runtime "
                                               "pytorch-bf16 or pytorch-int8 to choose a faster one yourself)")
    candidates = auto_candidates(task, native_bf16, onnx_available())
    if not candidates:
        return RuntimeChoice("pytorch", model, "auto: fp32 (this CPU has no native bf16 and ONNX Runtime is not "
                                               "installed: pip install 'fmhub[onnx]' to let auto try it)")
    rows = read_check_rows(model_path)
    if not rows:
        return RuntimeChoice("pytorch", model, "auto: fp32 (the model folder has no stored test predictions to check "
                                               "a faster runtime against, e.g. an imported model; give --runtime "
                                               "to choose one yourself)")
    inputs = [r["input"] for r in rows]
    references = [r["reference"] for r in rows]
    base = headline(task, model, [r["prediction"] for r in rows], references)
    name = task.headline_metric
    refused = []
    for runtime in candidates:
        try:
            candidate = build_runtime(runtime, model, task, threads)
            predicted = task.predict(candidate, tokenizer, inputs, batch_size=batch_size, max_seq_length=max_tokens)
            score = headline(task, model, predicted, references)
        except Exception as exc:  # noqa: BLE001 - a runtime that fails its check is not chosen
            refused.append(f"{runtime} failed its check ({type(exc).__name__}: {exc})")
            continue
        figures = f"{name} {score:.2f} vs fp32 {base:.2f} on {len(rows)} stored test rows"
        if score >= base - MAX_METRIC_DROP_POINTS:
            return RuntimeChoice(runtime, candidate, f"auto: {runtime}, the fastest runtime within "
                                                     f"{MAX_METRIC_DROP_POINTS} points of fp32 ({figures})")
        refused.append(f"{runtime} {figures}")
        del candidate
    return RuntimeChoice("pytorch", model, "auto: fp32 (no faster runtime held the metric: " + "; ".join(refused) + ")")


__all__ = ["CHECK_FILE", "MAX_METRIC_DROP_POINTS", "RUNTIMES", "RuntimeChoice", "auto_candidates", "build_runtime",
           "choose_auto", "describe", "onnx_available", "read_check_rows", "threads_text", "write_check_rows"]
