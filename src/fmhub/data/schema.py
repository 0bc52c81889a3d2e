"""The keys a column mapping maps to, per task (DESIGN.md "Task schemas"): each task module declares
one; column mapping (:mod:`fmhub.data.mapping`) reads it without knowing the tasks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TaskSchema:
    """The keys of one task's examples.

    Attributes:
        required: Keys every example must have, e.g. ``("sentence1", "label")``.
        optional: Keys that may be mapped, e.g. ``("sentence2",)``.
        aliases: For automatic matching: key -> user column names (compared case-insensitively,
            after trimming) that map to it when the user gives no ``--map`` for that key. The key
            itself is always an alias of itself.
        list_keys: Keys whose values are lists (in CSV/TSV a JSON array in the cell).
    """

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    list_keys: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        """All keys, required first."""
        return self.required + self.optional
