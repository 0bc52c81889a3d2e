"""Splits: exact sizes, disjoint and covering, stratified, seeded, and the edge cases."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from fmhub.data.splits import SplitSizes, split_indices
from fmhub.errors import DataError


def sizes_of(splits: dict[str, list[int]]) -> dict[str, int]:
    return {name: len(idx) for name, idx in splits.items()}


def assert_partition(splits: dict[str, list[int]], n: int) -> None:
    seen: list[int] = [i for idx in splits.values() for i in idx]
    assert sorted(seen) == list(range(n))  # covering, and no index twice (disjoint)
    for idx in splits.values():
        assert idx == sorted(idx)


def test_default_80_10_10() -> None:
    splits = split_indices(100, SplitSizes())
    assert sizes_of(splits) == {"train": 80, "validation": 10, "test": 10}
    assert_partition(splits, 100)


def test_no_test_split() -> None:
    splits = split_indices(10, SplitSizes(validation=0.2, test=0.0))
    assert sizes_of(splits) == {"train": 8, "validation": 2}
    assert_partition(splits, 10)


def test_no_validation_split() -> None:
    splits = split_indices(50, SplitSizes(validation=0.0, test=0.2))
    assert sizes_of(splits) == {"train": 40, "test": 10}
    assert_partition(splits, 50)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, {"train": 0, "validation": 0, "test": 0}),
        (1, {"train": 1, "validation": 0, "test": 0}),
        (2, {"train": 2, "validation": 0, "test": 0}),  # round(0.2) = 0 and n < 3: no minimum
        (3, {"train": 1, "validation": 1, "test": 1}),  # at least one each from n = 3
        (7, {"train": 5, "validation": 1, "test": 1}),
        (1001, {"train": 801, "validation": 100, "test": 100}),
    ],
)
def test_small_and_odd_sizes(n: int, expected: dict[str, int]) -> None:
    splits = split_indices(n, SplitSizes())
    assert sizes_of(splits) == expected
    assert_partition(splits, n)


def test_large_fractions_keep_one_training_row() -> None:
    splits = split_indices(4, SplitSizes(validation=0.49, test=0.49))  # 2 + 2 would leave none
    assert splits["train"] and sizes_of(splits)["train"] == 1
    assert_partition(splits, 4)


def test_stratified_proportions_preserved() -> None:
    labels = ["pos"] * 60 + ["neg"] * 40
    splits = split_indices(100, SplitSizes(), seed=7, stratify=labels)
    assert_partition(splits, 100)
    counts = {name: Counter(labels[i] for i in idx) for name, idx in splits.items()}
    assert counts["test"] == Counter(pos=6, neg=4)
    assert counts["validation"] == Counter(pos=6, neg=4)
    assert counts["train"] == Counter(pos=48, neg=32)


def test_string_and_number_labels_are_different_classes() -> None:
    labels = [1] * 50 + ["1"] * 50
    splits = split_indices(100, SplitSizes(), stratify=labels)
    assert Counter(type(labels[i]).__name__ for i in splits["test"]) == Counter(int=5, str=5)


def test_seeded_reproducibility() -> None:
    a = split_indices(200, SplitSizes(), seed=3)
    b = split_indices(200, SplitSizes(), seed=3)
    c = split_indices(200, SplitSizes(), seed=4)
    assert a == b
    assert a["test"] != c["test"]
    labels = [i % 3 for i in range(200)]
    assert split_indices(200, SplitSizes(), 5, labels) == split_indices(200, SplitSizes(), 5, labels)


@pytest.mark.parametrize(
    "sizes",
    [SplitSizes(-0.1, 0.1), SplitSizes(0.5, 0.5), SplitSizes(0.9, 0.2), SplitSizes(float("nan"), 0.1),
     SplitSizes("0.1", 0.1)],  # type: ignore[arg-type]
)
def test_invalid_sizes(sizes: SplitSizes) -> None:
    with pytest.raises(DataError):
        split_indices(100, sizes)


def test_labels_must_match_rows() -> None:
    with pytest.raises(DataError, match="3 labels"):
        split_indices(4, SplitSizes(), stratify=["a", "b", "a"])


def test_tiny_class_falls_back_without_crash(caplog: pytest.LogCaptureFixture) -> None:
    labels = ["a"] * 50 + ["b"] * 49 + ["rare"]
    with caplog.at_level(logging.WARNING, logger="fmhub.data.splits"):
        splits = split_indices(100, SplitSizes(), stratify=labels)
    assert sizes_of(splits) == {"train": 80, "validation": 10, "test": 10}
    assert_partition(splits, 100)
    assert "without stratification" in caplog.text


def test_more_classes_than_held_out_rows_falls_back() -> None:
    labels = ["a", "b", "c", "d"] * 3  # 4 classes, 12 rows: test and validation get 1 row each
    splits = split_indices(12, SplitSizes(), stratify=labels)
    assert sizes_of(splits) == {"train": 10, "validation": 1, "test": 1}
    assert_partition(splits, 12)
