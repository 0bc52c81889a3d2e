"""How many instances a local deployment runs, and how many threads each: the defaults that use the
whole machine.

A CPU deployment of a classic task runs one single-threaded instance per core when the model is
small: measured with ``python benchmarks/serve.py`` on 2 cores (MiniLM classifier, 64 clients),
two 1-thread instances answered about twice the requests of one 2-thread instance, because a
small batch of short sentences does not keep two threads busy and one instance's tokenisation and
pipe traffic overlap the other's forward pass. A larger model gets fewer instances with more
threads each, so that the copies of its weights fit in half the machine's memory. A chat
deployment runs one instance (continuous batching shares it among conversations) and a GPU
deployment one per GPU it is given.
"""

from __future__ import annotations

import os
from pathlib import Path

SMALL_MODEL_BYTES = 1 << 30
"""Weights up to this size (1 GiB: a ~250M-parameter fp32 model) get one instance per core."""
MAX_INSTANCES = 16
"""The most instances a deployment runs (the deployment spec's bound)."""


def cpu_cores() -> int:
    """Cores this process may use (its CPU affinity, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def memory_bytes() -> int | None:
    """Total memory of the machine (``/proc/meminfo``; None where it cannot be read)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def weights_bytes(folder: str | Path | None) -> int:
    """Bytes of the weight files (``*.safetensors``, ``*.bin``, ``*.gguf``) in a model folder (0 when none)."""
    if not folder or not Path(folder).is_dir():
        return 0
    return sum(p.stat().st_size for p in Path(folder).iterdir()
               if p.is_file() and p.suffix in (".safetensors", ".bin", ".gguf"))


def default_instances(*, chat: bool, on_gpu: bool, model_bytes: int, cores: int | None = None,
                      memory: int | None = None) -> int:
    """Instances of a local deployment when the spec leaves ``instances`` out (rule in the module
    docstring).

    Args:
        chat: A chat deployment (continuous batching in one instance).
        on_gpu: Whether it runs on a GPU.
        model_bytes: Size of the model's weights in bytes (the base model's for an adapter).
        cores: CPU cores (default: :func:`cpu_cores`).
        memory: Machine memory in bytes (default: :func:`memory_bytes`; None: not limited by it).

    Returns:
        1 to :data:`MAX_INSTANCES`.
    """
    if chat or on_gpu:
        return 1
    cores = cores or cpu_cores()
    memory = memory_bytes() if memory is None else memory
    if model_bytes <= SMALL_MODEL_BYTES:
        wanted = cores
    else:
        wanted = max(1, cores // 4)
    if memory and model_bytes:
        wanted = min(wanted, max(1, (memory // 2) // model_bytes))
    return max(1, min(MAX_INSTANCES, wanted))


def threads_per_instance(instances: int, cores: int | None = None) -> int:
    """Torch threads of each CPU instance: the cores shared out among the instances (at least one)."""
    return max(1, (cores or cpu_cores()) // max(1, instances))


__all__ = ["cpu_cores", "default_instances", "memory_bytes", "threads_per_instance", "weights_bytes"]
