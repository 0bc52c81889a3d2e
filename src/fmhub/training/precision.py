"""Training precision (``--precision fp32|bf16|auto``), and when evaluation generates with a bf16 copy.

On CUDA the device choice decides (``DeviceChoice.bf16``). On the CPU, bf16 autocast pays where the
CPU multiplies bf16 natively (AVX512-BF16, AMX); elsewhere it is emulated and slower than fp32.
``auto`` (the default) is a measured rule, :func:`training_precision`: bf16 autocast, for every task
and for full and LoRA fine-tunes alike, on a CPU whose flags include ``avx512_bf16`` or
``amx_bf16``; fp32 otherwise. Autocast keeps fp32 master weights and optimizer state: only the
matrix products run in bf16. Measured on a 2-core AVX512-BF16 CPU without AMX, idle machine:

- SmolLM2-135M, LoRA on every linear layer, batches of 8 x 200 tokens of the shared chat data
  (``python benchmarks/cpu_bf16.py``): 373 trained tokens/s under bf16 autocast against 243 in fp32
  (1.54x), the loss within 0.6% of fp32 after four steps.
- all-MiniLM-L6-v2 on SST-2, full fine-tune, one epoch (``python benchmarks/finetune_cpu.py
  --configs fmhub-fp32,fmhub``): the figures are in benchmarks/README.md (speed and test accuracy
  of both precisions in one run).

The environment variable ``FMHUB_CPU_BF16`` overrides ``auto`` on the CPU: ``1`` forces bf16
autocast, ``0`` keeps fp32. An explicit ``--precision`` is always honoured.

Generation by a causal LM for evaluation (a fine-tune's test and zero-shot scores, ``fmhub
evaluate``) runs on a bf16 copy of the weights on such a CPU (:func:`use_cpu_bf16_inference`,
:func:`inference_copy`): decoding on the CPU is bound by reading the weights, and half the bytes
decode ~2x faster (0.79 against 1.66 s per reply, SmolLM2-135M, 32 chat test rows, batches of 16).
The same rule on both paths keeps a fine-tune's test metrics equal to what ``fmhub evaluate`` gives
for the registered model. ``FMHUB_CPU_BF16`` overrides it too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from fmhub.devices import BF16_FLAGS, cpu_has_native_bf16  # noqa: F401 - re-exported

ENV_VAR = "FMHUB_CPU_BF16"


PRECISIONS = ("auto", "fp32", "bf16")
"""Values of ``--precision`` (``Hyperparameters.precision``)."""


def _forced() -> bool | None:
    """``FMHUB_CPU_BF16``: True (``1``), False (``0``) or None (unset or not understood)."""
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    return None


def training_precision(precision: str | None, device: Any) -> tuple[bool, str]:
    """Whether training runs under bf16 autocast, and why (the rule in this module's docstring).

    Args:
        precision: ``auto`` (None: auto), ``fp32`` or ``bf16``.
        device: The :class:`~fmhub.devices.DeviceChoice` training runs on.

    Returns:
        ``(bf16, reason)``: True to pass ``bf16=True`` to the ``Trainer``; the reason is a line for
        the job log, e.g. ``bf16 autocast (auto: this CPU has native bf16, avx512_bf16/amx_bf16)``.

    Raises:
        SpecError: ``bf16`` on a CUDA GPU without bf16 support, or an unknown value.
    """
    from fmhub.errors import SpecError

    precision = precision or "auto"
    if precision not in PRECISIONS:
        raise SpecError(f"unknown precision {precision!r}", hint="give --precision auto, fp32 or bf16")
    if precision == "fp32":
        return False, "fp32 (--precision fp32)"
    if device.is_cuda:
        if precision == "bf16" and not device.bf16:
            raise SpecError(f"--precision bf16: {device.description} has no bf16 support",
                            hint="give --precision fp32 or auto")
        return bool(device.bf16), ("bf16 (the GPU supports it)" if device.bf16 else "fp32 (the GPU has no bf16)")
    native = cpu_has_native_bf16()
    if precision == "bf16":
        return True, "bf16 autocast (--precision bf16)" + (
            "" if native else "; this CPU has no native bf16, so it is emulated and slower than fp32")
    forced = _forced()
    if forced is not None:
        return forced, f"{'bf16 autocast' if forced else 'fp32'} ({ENV_VAR}={os.environ[ENV_VAR]})"
    if native:
        return True, (f"bf16 autocast (auto: this CPU has native bf16; give --precision fp32 or set "
                      f"{ENV_VAR}=0 to train in fp32)")
    return False, "fp32 (auto: this CPU has no native bf16 arithmetic, where bf16 autocast is slower)"


def use_cpu_bf16_inference(model: Any) -> bool:
    """Whether evaluation generates with a bf16 copy of ``model`` (the rule in this module's docstring):
    a causal LM (plain or PEFT-wrapped) on the CPU, where the CPU has native bf16.

    Args:
        model: The model about to predict.

    Returns:
        True to predict with :func:`bf16_copy` of it.
    """
    from fmhub.training.causal_loss import causal_lm_parts

    forced = _forced()
    if forced is False:
        return False
    try:
        on_cpu = next(model.parameters()).device.type == "cpu"
    except (AttributeError, StopIteration):
        return False
    if not on_cpu or getattr(model, "is_loaded_in_4bit", False) or causal_lm_parts(model) is None:
        return False
    return bool(forced) or cpu_has_native_bf16()


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
