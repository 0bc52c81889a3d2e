"""Split a dataset's rows into train / validation / test, seeded and (optionally) stratified."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from fmhub.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitSizes:
    """Fractions of the rows held out for validation and test; the rest is train.

    Attributes:
        validation: Fraction in [0, 1) for the validation split; 0 means no validation split.
        test: Fraction in [0, 1) for the test split; 0 means no test split.
    """

    validation: float = 0.1
    test: float = 0.1

    def check(self) -> None:
        """Validate the fractions.

        Raises:
            DataError: A fraction is not a finite number >= 0, or the two add up to 1 or more.
        """
        bad = [f"{name}={value!r}" for name, value in (("validation", self.validation), ("test", self.test))
               if isinstance(value, bool) or not isinstance(value, (int, float))
               or not math.isfinite(value) or value < 0]
        if bad:
            raise DataError(f"invalid split size(s): {', '.join(bad)}",
                            "split sizes are fractions >= 0, e.g. --validation-size 0.1 --test-size 0.1")
        if self.validation + self.test >= 1:
            raise DataError(
                f"split sizes validation={self.validation} and test={self.test} leave no training rows",
                "make validation + test less than 1 (e.g. 0.1 each)",
            )

    def counts(self, n: int) -> tuple[int, int]:
        """Return (validation rows, test rows) for ``n`` rows.

        Each is ``round(n * fraction)``, at least 1 when its fraction is > 0 and ``n >= 3``; they
        are reduced (the larger first) when they would leave no training row.
        """
        val, test = round(n * self.validation), round(n * self.test)
        if n >= 3:
            val = max(val, 1) if self.validation > 0 else 0
            test = max(test, 1) if self.test > 0 else 0
        while n > 0 and val + test >= n:
            if val >= test:
                val -= 1
            else:
                test -= 1
        return val, test


def split_indices(n: int, sizes: SplitSizes, seed: int = 42,
                  stratify: list[Any] | None = None, notes: list[str] | None = None,
                  groups: list[Any] | None = None) -> dict[str, list[int]]:
    """Split ``range(n)`` into train / validation / test index lists.

    The test split is drawn first, then validation from the rest, each with scikit-learn's
    ``train_test_split`` seeded with ``seed``. With ``stratify`` each split keeps the label
    proportions; when a class is too small for that (e.g. one member), that step falls back to an
    unstratified split and logs a warning.

    Args:
        n: Number of rows (>= 0).
        sizes: Validation and test fractions (see :meth:`SplitSizes.counts` for the row counts).
        seed: Random seed; the same inputs give the same splits.
        stratify: One label per row (any hashable values; ``"1"`` and ``1`` are different
            labels), or None for a plain random split.
        notes: When given, a plain sentence is appended for each step that could not be
            stratified (instead of a log warning).
        groups: One hashable key per row, or None. Rows with the same key (e.g. exact duplicate
            rows) land in the same split: the groups are split (stratified on the label of each
            group's first row), so the row counts follow the fractions of the group count.

    Returns:
        ``{"train": [...], "validation": [...], "test": [...]}`` with sorted, disjoint index lists
        covering ``range(n)``. ``"validation"`` is present only when ``sizes.validation > 0`` and
        ``"test"`` only when ``sizes.test > 0`` (either may be empty for tiny ``n``).

    Raises:
        DataError: Invalid sizes, ``n < 0``, or ``stratify`` not of length ``n``.
    """
    sizes.check()
    if n < 0:
        raise DataError(f"cannot split {n} rows", "the row count must be >= 0")
    if stratify is not None and len(stratify) != n:
        raise DataError(f"got {len(stratify)} labels to stratify {n} rows", "give one label per row")
    if groups is not None:
        if len(groups) != n:
            raise DataError(f"got {len(groups)} group keys for {n} rows", "give one group key per row")
        members: dict[Any, list[int]] = {}
        for i, key in enumerate(groups):
            members.setdefault(key, []).append(i)
        if len(members) < n:
            heads = [rows[0] for rows in members.values()]
            by_group = split_indices(len(heads), sizes, seed=seed, notes=notes,
                                     stratify=[stratify[i] for i in heads] if stratify is not None else None)
            lists = list(members.values())
            return {name: sorted(i for g in picked for i in lists[g]) for name, picked in by_group.items()}
    n_val, n_test = sizes.counts(n)
    codes = _codes(stratify) if stratify is not None else None
    rest, test = _take(list(range(n)), n_test, seed, codes, "test", notes)
    train, validation = _take(rest, n_val, seed, codes, "validation", notes)
    result = {"train": sorted(train)}
    if sizes.validation > 0:
        result["validation"] = sorted(validation)
    if sizes.test > 0:
        result["test"] = sorted(test)
    return result


def _take(indices: list[int], count: int, seed: int, codes: list[int] | None, what: str = "split",
          notes: list[str] | None = None) -> tuple[list[int], list[int]]:
    """Split ``indices`` into (kept, taken) with ``count`` taken; stratified when possible."""
    if count == 0 or not indices:
        return indices, []
    if count >= len(indices):
        return [], indices
    from sklearn.model_selection import train_test_split

    if codes is not None:
        labels = [codes[i] for i in indices]
        try:
            kept, taken = train_test_split(indices, test_size=count, random_state=seed, stratify=labels)
            return list(kept), list(taken)
        except ValueError as exc:
            if notes is None:
                log.warning("stratified split not possible (%s); splitting without stratification", exc)
            else:
                notes.append(f"the {what} split ({count} of {len(indices)} rows) is too small to keep every label's "
                             "share: drawn at random, not stratified; give more rows or a file of your own")
    kept, taken = train_test_split(indices, test_size=count, random_state=seed, shuffle=True)
    return list(kept), list(taken)


def _codes(labels: list[Any]) -> list[int]:
    """Map labels to integer codes by type and repr: ``"1"``, ``1`` and ``1.0`` are distinct classes."""
    seen: dict[tuple[str, str], int] = {}
    return [seen.setdefault((type(label).__name__, repr(label)), len(seen)) for label in labels]
