"""When the CPU trains under bfloat16 autocast, and when evaluation generates with a bf16 copy.

On CUDA the device choice decides (``DeviceChoice.bf16``). On the CPU, autocast converts the frozen
weights to bf16 in every step, which pays where the CPU multiplies bf16 natively (AVX512-BF16, AMX).
Measured on a 2-core AVX512-BF16 CPU without AMX, SmolLM2-135M with LoRA on every linear layer,
batches of 8 x 200 tokens of the shared chat data, two threads, idle machine
(``python benchmarks/cpu_bf16.py``): 373 trained tokens/s under bf16 autocast against 243 in fp32
(1.54x), the loss within 0.6% of fp32 after four steps. The rule, :func:`use_cpu_bf16`: a
LoRA fine-tune of a causal LM (the trainable adapters stay fp32 master weights under autocast) on a
CPU whose flags include ``avx512_bf16`` or ``amx_bf16``. Other tasks and full fine-tunes stay fp32.
The environment variable ``FMHUB_CPU_BF16`` overrides it: ``1`` forces bf16 autocast on the CPU
for every task, ``0`` turns it off.

Generation by a causal LM for evaluation (a fine-tune's test and zero-shot scores, ``fmhub
evaluate``) runs on a bf16 copy of the weights on such a CPU (:func:`use_cpu_bf16_inference`,
:func:`inference_copy`): decoding on the CPU is bound by reading the weights, and half the bytes
decode ~2x faster (0.79 against 1.66 s per reply, SmolLM2-135M, 32 chat test rows, batches of 16).
The same rule on both paths keeps a fine-tune's test metrics equal to what ``fmhub evaluate`` gives
for the registered model. ``FMHUB_CPU_BF16`` overrides it too.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""CPU flags (``/proc/cpuinfo``) of native bf16 arithmetic (AVX512-BF16, AMX)."""

ENV_VAR = "FMHUB_CPU_BF16"


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU has AVX512-BF16 or AMX-BF16 (read from ``cpuinfo``; False where it is unreadable)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return any(flag in flags for flag in BF16_FLAGS)
    return False


def use_cpu_bf16(model: Any, causal_lm: bool) -> bool:
    """Whether CPU training of ``model`` runs under bf16 autocast (the rule in this module's docstring).

    Args:
        model: The model about to be trained (a PEFT model for LoRA).
        causal_lm: Whether it is a causal LM trained with the labelled-positions loss.

    Returns:
        True to pass ``bf16=True`` to the CPU ``Trainer``.
    """
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    is_lora = hasattr(model, "peft_config")
    return causal_lm and is_lora and cpu_has_native_bf16()


def use_cpu_bf16_inference(model: Any) -> bool:
    """Whether evaluation generates with a bf16 copy of ``model`` (the rule in this module's docstring):
    a causal LM (plain or PEFT-wrapped) on the CPU, where the CPU has native bf16.

    Args:
        model: The model about to predict.

    Returns:
        True to predict with :func:`bf16_copy` of it.
    """
    from fmhub.training.causal_loss import causal_lm_parts

    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced in ("0", "false", "no", "off"):
        return False
    try:
        on_cpu = next(model.parameters()).device.type == "cpu"
    except (AttributeError, StopIteration):
        return False
    if not on_cpu or getattr(model, "is_loaded_in_4bit", False) or causal_lm_parts(model) is None:
        return False
    return forced in ("1", "true", "yes", "on") or cpu_has_native_bf16()


@contextlib.contextmanager
def inference_copy(model: Any, bf16: bool) -> Iterator[Any]:
    """The model that predicts: ``model`` itself, or with ``bf16`` a bf16 copy of it
    (:func:`bf16_copy`) under ``torch.inference_mode``, dropped afterwards. ``model`` is unchanged."""
    if not bf16:
        yield model
        return
    import torch

    clone = bf16_copy(model)
    try:
        with torch.inference_mode():
            yield clone
    finally:
        del clone


def bf16_copy(model: Any) -> Any:
    """A bf16 copy of ``model`` for inference (``model`` itself is unchanged).

    Args:
        model: A ``torch.nn.Module`` (a PEFT model with merged adapters included).

    Returns:
        A deep copy whose floating-point parameters and buffers are bf16, in eval mode. It costs
        half the model's fp32 size in memory while it lives.
    """
    import copy

    import torch

    clone = copy.deepcopy(model)
    clone.to(torch.bfloat16)
    clone.eval()
    return clone
