"""When training on the CPU uses bfloat16 autocast.

On CUDA the device choice decides (``DeviceChoice.bf16``). On the CPU, autocast converts every
frozen weight to bf16 in every step, which pays only where bf16 matrix products are much faster than
fp32 ones. Measured on a 2-core AVX512-BF16 CPU without AMX (SmolLM2-135M, LoRA, batch 8, one
thread): 44.9 tokens/s in bf16 against 45.5 in fp32, so no gain, and a loss curve ~3% off fp32 after
one step. AMX tiles (Sapphire Rapids and later) multiply bf16 several times faster than AVX-512 does
fp32. The rule, :func:`use_cpu_bf16`: a LoRA fine-tune of a causal LM (the trainable adapters stay
fp32 master weights under autocast) on a CPU whose flags include ``amx_bf16``. The environment
variable ``FMHUB_CPU_BF16`` overrides it: ``1`` forces bf16 autocast on the CPU for every task,
``0`` turns it off.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

BF16_FLAGS = ("amx_bf16",)
"""CPU flags (``/proc/cpuinfo``) of bf16 arithmetic fast enough for autocast to pay (AMX)."""

ENV_VAR = "FMHUB_CPU_BF16"


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU has AMX-BF16 (read from ``cpuinfo``; False where it is unreadable)."""
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
