"""Length-sorted batching for inference: little padding, results restored to input order."""

from __future__ import annotations

from collections.abc import Iterator


def length_sorted_batches(lengths: list[int], batch_size: int) -> Iterator[list[int]]:
    """Yield index batches of at most ``batch_size``, longest inputs first.

    Args:
        lengths: A length per input (characters or tokens; only the order matters).
        batch_size: Maximum inputs per batch (>= 1).

    Yields:
        Lists of input indices; together they cover ``range(len(lengths))`` exactly once.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    step = max(1, batch_size)
    for start in range(0, len(order), step):
        yield order[start:start + step]
