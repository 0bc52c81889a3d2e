"""The devices of this machine: which a local job or deployment can be given, and choosing the
device and precision for training, evaluation, prediction and serving."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from fmhub.errors import SpecError


@dataclass(frozen=True)
class DeviceChoice:
    """The device a job runs on.

    Attributes:
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        bf16: Train and predict in bfloat16 mixed precision (CUDA with bf16 support only).
        description: Human-readable, e.g. ``cuda:0 (NVIDIA H200, bf16)``.
    """

    device: str
    bf16: bool
    description: str

    @property
    def is_cuda(self) -> bool:
        """True for a CUDA device."""
        return self.device.startswith("cuda")


def choose_device(requested: str = "auto") -> DeviceChoice:
    """Pick the device: a CUDA GPU when present (bf16 where supported), else the CPU.

    Args:
        requested: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        SpecError: when CUDA is requested but not available, or the value is unknown.
    """
    import torch

    requested = (requested or "auto").strip().lower()
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cpu":
        threads = torch.get_num_threads()
        return DeviceChoice("cpu", False, f"cpu ({threads} thread{'' if threads == 1 else 's'}, fp32)")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SpecError(f"device '{requested}' requested but no CUDA GPU is available",
                            hint="use --device cpu or --device auto")
        index = int(requested.split(":", 1)[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise SpecError(f"device '{requested}' does not exist ({torch.cuda.device_count()} GPU(s))",
                            hint="use --device cuda:0")
        bf16 = torch.cuda.is_bf16_supported()
        name = torch.cuda.get_device_name(index)
        return DeviceChoice(f"cuda:{index}", bf16, f"cuda:{index} ({name}, {'bf16' if bf16 else 'fp32'})")
    raise SpecError(f"unknown device '{requested}'", hint="use auto, cpu, cuda or cuda:N")


def gpu_count() -> int:
    """CUDA GPUs on this machine (0 when torch has no usable CUDA build).

    Counting does not initialise CUDA in this process.
    """
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no usable CUDA build is zero GPUs
        return 0


BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""CPU flags (``/proc/cpuinfo``) of native bf16 arithmetic (AVX512-BF16, AMX)."""


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
