"""Length-bucketed training order: a permutation, little padding, no length curriculum."""

from __future__ import annotations

import random

import torch

from fmhub.training.sampler import BucketedLengthSampler, bucketed_indices


def _padding(order, lengths, bs):
    return sum(max(lengths[i] for i in order[k:k + bs]) * len(order[k:k + bs]) - sum(lengths[i] for i in order[k:k + bs])
               for k in range(0, len(order), bs))


def test_permutation_with_much_less_padding_than_random_batches():
    rng = random.Random(0)
    lengths = [rng.randint(3, 60) for _ in range(1000)]
    order = bucketed_indices(lengths, 32, 8, torch.Generator().manual_seed(1))
    assert sorted(order) == list(range(1000))
    shuffled = list(range(1000))
    rng.shuffle(shuffled)
    assert _padding(order, lengths, 32) < 0.25 * _padding(shuffled, lengths, 32)


def test_batch_order_is_not_sorted_by_length():
    lengths = list(range(640))
    order = bucketed_indices(lengths, 32, 20, torch.Generator().manual_seed(0))  # one bucket of all rows
    batch_max = [max(lengths[i] for i in order[k:k + 32]) for k in range(0, 640, 32)]
    assert batch_max != sorted(batch_max, reverse=True) and batch_max != sorted(batch_max)


def test_seeded_epochs_differ_but_repeat():
    lengths = [i % 17 for i in range(200)]
    a, b = BucketedLengthSampler(lengths, 16, seed=3), BucketedLengthSampler(lengths, 16, seed=3)
    first, second = list(a), list(a)
    assert first != second            # a new order each epoch
    assert first == list(b)           # the same seed repeats exactly
    assert len(a) == 200
