"""The validation report: what was read, kept, dropped and why, per split, before any training."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fmhub.data.problems import Problem


@dataclass
class LengthStats:
    """Input lengths of one split in tokens of the chosen model's tokenizer.

    Attributes:
        mean / p50 / p95 / max: Token counts (special tokens included).
        max_seq_length: The truncation limit in force (tokens).
        truncated: Rows longer than ``max_seq_length`` (they will be truncated).
    """

    mean: float
    p50: int
    p95: int
    max: int
    max_seq_length: int
    truncated: int

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return dict(self.__dict__)


@dataclass
class SplitReport:
    """One split: where it came from, how many rows, label distribution, lengths."""

    name: str
    source: str                       # a file path, or "auto (10% of train.csv, stratified, seed 42)"
    rows_read: int
    rows_kept: int
    dropped: list[Problem] = field(default_factory=list)
    distribution: dict[str, int] = field(default_factory=dict)
    lengths: LengthStats | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {
            "name": self.name,
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_dropped": len(self.dropped),
            "dropped": [p.to_dict() for p in self.dropped],
            "distribution": self.distribution,
            "lengths": self.lengths.to_dict() if self.lengths else None,
        }


@dataclass
class ValidationReport:
    """Everything checked before training.

    Attributes:
        task: The task name.
        mapping: ``task key -> user column`` lines as shown to the user (``(auto)`` marks matches).
        splits: Per split, in order train / validation / test.
        warnings: Problems that do not block (trimmed headers, blank lines, suspicious labels).
        errors: Problems that block; a report with errors never trains.
        notes: Plain statements (e.g. "no test data: no test evaluation").
        leakage: Rows shared by two splits (exact duplicates after label normalisation), one entry
            per pair of splits: ``{"splits": [earlier, later], "rows", "distinct", "examples"}``
            (see :func:`fmhub.data.leakage.cross_split_duplicates`).
    """

    task: str
    mapping: list[str] = field(default_factory=list)
    splits: list[SplitReport] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    leakage: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing blocks training."""
        return not self.errors

    def split(self, name: str) -> SplitReport | None:
        """The report of split ``name``, if present."""
        return next((s for s in self.splits if s.name == name), None)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ValidationReport":
        """Rebuild a report from :meth:`to_dict`'s output (e.g. one stored with a data asset)."""
        def problems(items: list[dict[str, Any]]) -> list[Problem]:
            return [Problem(**item) for item in items]

        splits = [SplitReport(name=s["name"], source=s["source"], rows_read=s["rows_read"], rows_kept=s["rows_kept"],
                              dropped=problems(s.get("dropped", [])), distribution=s.get("distribution", {}),
                              lengths=LengthStats(**s["lengths"]) if s.get("lengths") else None)
                  for s in data.get("splits", [])]
        return cls(task=data["task"], mapping=list(data.get("mapping", [])), splits=splits,
                   warnings=problems(data.get("warnings", [])), errors=problems(data.get("errors", [])),
                   notes=list(data.get("notes", [])), leakage=list(data.get("leakage", [])))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (stored with the job as ``report.json``)."""
        return {
            "task": self.task,
            "ok": self.ok,
            "mapping": self.mapping,
            "splits": [s.to_dict() for s in self.splits],
            "warnings": [p.to_dict() for p in self.warnings],
            "errors": [p.to_dict() for p in self.errors],
            "notes": self.notes,
            "leakage": self.leakage,
        }


def length_stats(token_counts: list[int], max_seq_length: int) -> LengthStats | None:
    """Summarise token counts (None for an empty split)."""
    if not token_counts:
        return None
    ordered = sorted(token_counts)

    def pct(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    return LengthStats(
        mean=round(sum(ordered) / len(ordered), 1),
        p50=pct(0.5),
        p95=pct(0.95),
        max=ordered[-1],
        max_seq_length=max_seq_length,
        truncated=sum(1 for n in ordered if n > max_seq_length),
    )
