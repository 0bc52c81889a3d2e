"""The key/value cache of a continuous batch (:mod:`fmhub.tasks.chat_engine`): a transformers
``DynamicCache`` whose layers append into preallocated buffers, and its per-layer tensors."""

from __future__ import annotations

from typing import Any


def layers(cache: Any) -> list[tuple[Any, Any]]:
    """``(keys, values)`` per layer of a ``DynamicCache`` (``[rows, heads, columns, dim]`` each)."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))  # transformers 4.x


CACHE_GROWTH = 128
"""Columns a layer's cache buffer grows by: a decode step writes into the buffer instead of copying
the whole cache (``DynamicCache`` concatenates on every step, which cost 40% of a 16-conversation
step on a CPU)."""


def make_cache(layers: list[tuple[Any, Any]]) -> Any:
    """A ``DynamicCache`` holding ``layers``, whose layers append into preallocated buffers."""
    from transformers import DynamicCache

    cache = DynamicCache()
    for i, (k, v) in enumerate(layers):
        cache.update(k, v, i)
    if hasattr(cache, "layers"):
        for layer in cache.layers:
            if type(layer).__name__ == "DynamicLayer":
                layer.update = _growing_update(layer)
    return cache


def _growing_update(layer: Any) -> Any:
    """``layer.update`` writing new columns into a buffer with room to spare; the layer's ``keys``
    and ``values`` are views of the filled part."""
    import torch

    state: dict[str, Any] = {}

    def update(key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        n, m = layer.keys.shape[-2], key_states.shape[-2]
        buf_k = state.get("k")
        if buf_k is None or n + m > buf_k.shape[-2]:
            shape = list(layer.keys.shape)
            shape[-2] = n + m + CACHE_GROWTH
            buf_k = torch.empty(shape, dtype=layer.keys.dtype, device=layer.keys.device)
            buf_v = torch.empty(shape[:-1] + [layer.values.shape[-1]], dtype=layer.values.dtype,
                                device=layer.values.device)
            buf_k[..., :n, :] = layer.keys
            buf_v[..., :n, :] = layer.values
            state["k"], state["v"] = buf_k, buf_v
        buf_v = state["v"]
        buf_k[..., n:n + m, :] = key_states
        buf_v[..., n:n + m, :] = value_states
        layer.keys, layer.values = buf_k[..., :n + m, :], buf_v[..., :n + m, :]
        return layer.keys, layer.values

    return update
