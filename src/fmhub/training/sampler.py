"""Length-bucketed batch order: little padding, and no length curriculum.

transformers' ``LengthGroupedSampler`` sorts mega-batches of ~50 batches by length and keeps that
order, so within an epoch the model sees long rows first and short ones last, a curriculum that
cost about one accuracy point on SST-2. Here rows are shuffled, cut into mega-batches of
``mega_batch_mult`` batches, sorted by length inside each mega-batch, cut into batches, and then the
*batches* are shuffled. Padding stays close to the sorted case; the order of lengths is random.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


def bucketed_indices(lengths: Sequence[int], batch_size: int, mega_batch_mult: int,
                     generator: torch.Generator) -> list[int]:
    """One epoch's row order: batches of similar length, batches in random order.

    Args:
        lengths: Tokens per row, [n_rows].
        batch_size: Rows per batch (per device x accumulation).
        mega_batch_mult: Batches per sorting bucket; larger means less padding, less randomness.
        generator: Seeded torch generator (advances every call).

    Returns:
        A permutation of ``range(len(lengths))``; each run of ``batch_size`` indices is one batch.
    """
    n = len(lengths)
    order = torch.randperm(n, generator=generator).tolist()
    mega = max(1, mega_batch_mult) * batch_size
    batches: list[list[int]] = []
    for start in range(0, n, mega):
        bucket = sorted(order[start:start + mega], key=lambda i: lengths[i], reverse=True)
        batches.extend(bucket[i:i + batch_size] for i in range(0, len(bucket), batch_size))
    full = [b for b in batches if len(b) == batch_size]
    partial = [b for b in batches if len(b) < batch_size]
    perm = torch.randperm(len(full), generator=generator).tolist()
    # Partial batches go last so every batch boundary stays aligned with ``batch_size``.
    return [i for k in perm for i in full[k]] + [i for b in partial for i in b]


class BucketedLengthSampler(Sampler[int]):
    """Sampler yielding :func:`bucketed_indices`; a new order each epoch, reproducible by seed.

    Args:
        lengths: Tokens per row.
        batch_size: Rows per optimizer micro-batch.
        seed: Seeds the first epoch; later epochs continue the same generator.
        mega_batch_mult: Batches per sorting bucket (default 16).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, mega_batch_mult: int = 16) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.mega_batch_mult = mega_batch_mult
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        return iter(bucketed_indices(self.lengths, self.batch_size, self.mega_batch_mult, self.generator))
