"""The interface every task module implements (one module per task, all the same shape)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from fmhub.data.problems import Problem, shorten_value
from fmhub.data.schema import TaskSchema


#: Texts tokenised at once for the report's length statistics (memory stays flat on large files).
TOKEN_COUNT_CHUNK = 2048


@dataclass
class Examples:
    """The rows of one split after column mapping.

    Attributes:
        split: ``train``, ``validation`` or ``test``.
        file: The user's file the rows came from (for messages).
        rows: One dict per example, keyed by the task's keys.
        lines: 1-based line in ``file`` where each row starts (same length as ``rows``).
        columns: Task key -> the user's column it came from (for messages).
    """

    split: str
    file: str
    rows: list[dict[str, Any]]
    lines: list[int]
    columns: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, indices: list[int], split: str) -> "Examples":
        """Return the rows at ``indices`` as a split named ``split`` (lines are kept)."""
        return Examples(split, self.file, [self.rows[i] for i in indices], [self.lines[i] for i in indices],
                        dict(self.columns))


@dataclass
class LabelInfo:
    """What a task learned about the label space from the training split.

    Attributes:
        labels: Label (or tag) names in id order; ``id2label[i] == labels[i]``.
        extra: Task-specific facts (e.g. ``is_pair`` for sentence pairs).
    """

    labels: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id2label(self) -> dict[int, str]:
        """Index -> name, as saved in the model config."""
        return dict(enumerate(self.labels))

    @property
    def label2id(self) -> dict[str, int]:
        """Name -> index."""
        return {name: i for i, name in enumerate(self.labels)}


def _numeric_twin(label: str, known: set[str]) -> bool:
    """True when ``label`` equals one of ``known`` as a number (``1.0`` and ``1``)."""
    try:
        value = float(label)
    except (TypeError, ValueError):
        return False
    for other in known:
        try:
            if float(other) == value:
                return True
        except ValueError:
            continue
    return False


KNOWN_LABELS_SHOWN = 20
"""Known labels listed in an unseen-label hint at most (the rest are counted)."""


def unseen_labels(splits: dict[str, Examples], info: LabelInfo, labels_of: Any, column: str,
                  noun: str = "label") -> list[Problem]:
    """One error per label that occurs in validation/test but not in ``info.labels``.

    Args:
        splits: The splits by name.
        info: The label space (``extra["label_source"]`` names where it came from, default the
            training data).
        labels_of: Row -> the labels it holds (one for classification, one per word for tags).
        column: The task key the labels sit in (``label``, ``tags``).
        noun: How messages call a label (``label``, ``tag``).

    Returns:
        Problems naming the split's file, the first line with each unknown label, and the label.
    """
    known = set(info.labels)
    source = info.extra.get("label_source", "the training data")
    problems: list[Problem] = []
    for split in ("validation", "test"):
        ex = splits.get(split)
        if ex is None:
            continue
        reported: set[str] = set()
        for row, line in zip(ex.rows, ex.lines):
            for lab in labels_of(row):
                if lab not in known and lab not in reported:
                    reported.add(lab)
                    shown = ", ".join(info.labels[:KNOWN_LABELS_SHOWN]) + (
                        f" (and {len(info.labels) - KNOWN_LABELS_SHOWN} more)"
                        if len(info.labels) > KNOWN_LABELS_SHOWN else "")
                    hint = f"known {noun}s: {shown}; fix the {noun} " + (
                        "or add training rows for it" if source == "the training data" else "or use another model")
                    if _numeric_twin(lab, known):
                        hint += f" (it equals a known {noun} as a number: pass --label-type number)"
                    problems.append(Problem(f"{noun} {lab!r} in the {split} data does not occur in {source}",
                                            file=ex.file, line=line, column=column, value=shorten_value(lab),
                                            hint=hint))
    return problems


class Task(ABC):
    """A fine-tuning task: schema, checks, preprocessing, model class, metrics, prediction.

    Subclasses set the class attributes and implement the abstract methods. Adding a task means one
    module with one subclass and one line in :mod:`fmhub.tasks` (the registry).
    """

    name: str
    schema: TaskSchema
    metric_for_best_model: str
    greater_is_better: bool = True
    metric_names: tuple[str, ...] = ()
    """Scalar validation metrics a checkpoint can be chosen by (``loss`` is always allowed)."""
    default_hyperparameters: dict[str, Any] = {}

    @abstractmethod
    def check_rows(self, examples: Examples) -> tuple[list[int], list[Problem]]:
        """Check each row of one split on its own.

        Returns:
            (indices of rows that are fine, problems found: one per bad row, naming file, line,
            column and value).
        """

    @abstractmethod
    def label_info(self, train: Examples) -> LabelInfo:
        """Derive the label space from the training split."""

    @abstractmethod
    def check_splits(self, splits: dict[str, Examples], info: LabelInfo) -> list[Problem]:
        """Checks across splits (e.g. a label only in test), after row checks."""

    def default_mapping(self, columns: list[str], user_map: dict[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
        """Task-specific automatic mapping before the generic name matching.

        Returns:
            (extra ``key -> column`` entries, constant ``key -> value`` entries added to every row).
        """
        return {}, {}

    def stratify_values(self, examples: Examples) -> list[Any] | None:
        """Values to stratify an automatic split on (None: no stratification)."""
        return None

    @abstractmethod
    def distribution(self, examples: Examples) -> dict[str, int]:
        """Per-label (or per-tag) counts, for the validation report."""

    @abstractmethod
    def texts_for_length(self, examples: Examples) -> list[Any]:
        """What the tokenizer sees per example, for token-length statistics in the report."""

    def apply_label_options(self, examples: Examples, options: dict[str, Any]) -> list[Problem]:
        """Rewrite label values as the user's options say before the row checks (e.g. integer tags
        to their names). The default does nothing.

        Args:
            examples: One split; rows are changed in place.
            options: ``label_type``, ``tag_names`` (see ``ReadOptions``).

        Returns:
            Problems found (error severity for values the options cannot map), naming the line.
        """
        return []

    def check_label_values(self, splits: dict[str, Examples], options: dict[str, Any]) -> list[Problem]:
        """Checks of the label values across all splits that depend on the user's options (e.g.
        ``1`` and ``1.0`` without ``label_type``), after the row checks. The default finds nothing.

        Args:
            splits: The splits by name (rows already checked).
            options: ``label_type``, ``tag_names`` (see ``ReadOptions``).

        Returns:
            Problems naming file, line, column and value.
        """
        return []

    def tokenizer_warnings(self, tokenizer: Any, examples: Examples) -> list[Problem]:
        """Rows the model's tokenizer handles in a way the user should know of (e.g. a word that
        becomes no sub-word token), for the validation report. The default finds nothing."""
        return []

    def token_counts(self, tokenizer: Any, examples: Examples) -> list[int]:
        """Tokens per example (special tokens included), untruncated, for the report.

        The default tokenises :meth:`texts_for_length`: strings, or ``[text, text_pair]`` pairs.
        """
        texts = self.texts_for_length(examples)
        first = [t[0] if isinstance(t, (list, tuple)) else t for t in texts]
        second = [t[1] if isinstance(t, (list, tuple)) else None for t in texts]
        pairs = any(s is not None for s in second)
        counts: list[int] = []
        for start in range(0, len(first), TOKEN_COUNT_CHUNK):  # chunks keep memory flat on big files
            chunk = first[start:start + TOKEN_COUNT_CHUNK]
            if pairs:
                enc = tokenizer(chunk, [s or "" for s in second[start:start + TOKEN_COUNT_CHUNK]],
                                truncation=False, return_attention_mask=False, return_token_type_ids=False)
            else:
                enc = tokenizer(chunk, truncation=False, return_attention_mask=False, return_token_type_ids=False)
            counts.extend(len(ids) for ids in enc["input_ids"])
        return counts

    @abstractmethod
    def load_model(self, path: str, info: LabelInfo | None) -> Any:
        """Load the model for fine-tuning (``info`` given) or prediction (``info`` None)."""

    @abstractmethod
    def encode(self, examples: Examples, tokenizer: Any, info: LabelInfo, max_seq_length: int,
               **options: Any) -> Any:
        """Tokenise a split into a ``datasets.Dataset`` (no padding; a ``length`` column).

        ``options`` carries task-specific settings such as ``doc_stride``; others ignore them.
        """

    @abstractmethod
    def data_collator(self, tokenizer: Any) -> Any:
        """The collator that pads each batch to its own longest row."""

    @abstractmethod
    def compute_metrics(self, predictions: Any, references: Any, info: LabelInfo) -> dict[str, Any]:
        """The task's metrics (DESIGN.md "Metrics") from predictions and references."""

    @abstractmethod
    def trainer_metrics(self, info: LabelInfo) -> Any:
        """A ``compute_metrics`` function for the transformers Trainer (scalars only)."""

    @abstractmethod
    def references(self, examples: Examples) -> list[Any]:
        """The gold answers of a split, in the form :meth:`compute_metrics` takes."""

    @abstractmethod
    def predictions_for_metrics(self, results: list[Any]) -> list[Any]:
        """Turn :meth:`predict` results into the form :meth:`compute_metrics` takes."""

    def prediction_warnings(self, predictions: list[Any], info: LabelInfo, split: str) -> list[str]:
        """Warnings about a split's predictions as a whole (e.g. one class only); none by default.

        Args:
            predictions: :meth:`predictions_for_metrics` output for the split.
            info: The label space.
            split: ``validation`` or ``test`` (named in the message).
        """
        return []

    @abstractmethod
    def model_inputs(self, examples: Examples) -> list[Any]:
        """Raw inputs for :meth:`predict` from a split's rows."""

    #: One scoring input, described for the OpenAPI document and the model card.
    score_input_doc = "a string"
    #: An example request body ``input_data`` for this task's endpoints.
    score_example: list[Any] = ["a text"]
    #: What an endpoint answers for :attr:`score_example` (the shape; values illustrative).
    score_response_example: list[Any] = [{"generated_text": "a text", "truncated": False}]
    #: The scoring ``params`` the task takes.
    score_params_names: tuple[str, ...] = ()

    def check_score_input(self, value: Any) -> Any:
        """Check one input of a scoring request; return it in the form :meth:`predict` takes.

        Raises:
            ValueError: the input has the wrong shape (the message says what is expected).
        """
        if not isinstance(value, str):
            raise ValueError(f"expected {self.score_input_doc}, got {type(value).__name__}")
        return value

    def score_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """The request ``params`` this task uses (others are refused by the caller).

        Raises:
            ValueError: a value of the wrong type or range.
        """
        return {}

    @abstractmethod
    def predict(self, model: Any, tokenizer: Any, inputs: list[Any], *, batch_size: int = 64,
                max_seq_length: int = 512, top_k: int = 1, **options: Any) -> list[Any]:
        """Predict for raw inputs; results speak label names, never ``LABEL_0``."""
