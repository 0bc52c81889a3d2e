"""The interface every task module implements (one module per task, all the same shape)."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmhub.data.problems import Problem
from fmhub.data.schema import TaskSchema
from fmhub.errors import SpecError


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
    headline_metric: str | None = None
    """The metric a job list shows (the others are in ``fmhub jobs show``); None: the first one."""
    metric_points: float = 1.0
    """Points per unit of the headline metric: 100 for a metric in [0, 1] (accuracy, F1), 1 for one
    already in [0, 100] (ROUGE, BLEU, SQuAD F1)."""
    runtime_checked: bool = False
    """Whether ``--runtime auto`` checks faster deployment runtimes against the model's stored test
    predictions (the tasks that predict in one forward pass; a generating task would decode every
    stored row once per runtime)."""
    onnx_logits: bool = False
    """Whether ``predict`` reads nothing but ``model(**encoding).logits``, so the ``onnx`` runtime
    (an exported graph with one ``logits`` output) can serve the task."""
    sample_train_file: tuple[str, str] = ("train.jsonl", "one example per line")
    """The training file of a model card's code samples and what it holds (its columns match
    automatically)."""
    label_type_option: bool = False
    """Whether labels can be read as numbers (the ``label_type`` read option the wizard offers)."""
    zero_shot_baseline: bool = False
    """Whether a base model answers this task without training (chat): a fine-tune then also
    evaluates the base model on the test split, to compare (``test_zero_shot``)."""
    validation_predictions: bool = True
    """Whether a fine-tune predicts the validation split after training (its metrics beside the
    Trainer's validation loss). False for chat, whose validation metrics are the token loss and
    perplexity only (generation metrics come from the test split)."""
    labelled_head: bool = False
    """Whether the head carries label names (``id2label``) that fine-tuning fills: a model whose
    labels are all the placeholders ``LABEL_0``, ``LABEL_1``... was never trained for the task."""

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

    def length_report(self, tokenizer: Any, examples: Examples, max_seq_length: int
                      ) -> tuple[list[str], list[Problem]]:
        """Notes and problems about one split's token lengths for the validation report, beyond
        :meth:`token_counts` (e.g. what truncation at ``max_seq_length`` cuts). None by default.

        Returns:
            (notes, problems naming file and line; warnings, or errors that block training).
        """
        return [], []

    @abstractmethod
    def load_model(self, path: str, info: LabelInfo | None, base_path: str | None = None) -> Any:
        """Load the model for fine-tuning (``info`` given) or prediction (``info`` None).

        ``base_path`` is the base model's folder when ``path`` holds an adapter (tasks that load
        no adapters ignore it).
        """

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

    # -- the trained head ------------------------------------------------------------------------
    def head_problem(self, folder: str | Path) -> str | None:
        """Why the model folder cannot predict or be evaluated for this task, or None.

        Reads only ``config.json`` (no weights), and only for a task with a :attr:`labelled_head`.
        """
        if not self.labelled_head:
            return None
        try:
            config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return "its config.json cannot be read"
        labels = [str(x) for x in (config.get("id2label") or {}).values()]
        if not labels or all(_PLACEHOLDER_LABEL.fullmatch(x) for x in labels):
            which = f"its labels are {', '.join(labels[:3])}" if labels else "it has no label names"
            return f"its {self.name} head was never trained ({which}): fine-tune it first"
        return None

    def require_trained_head(self, model: Any, ref: str) -> None:
        """Refuse a loaded model whose labels are the placeholders ``LABEL_0``, ``LABEL_1``... (for a
        task with a :attr:`labelled_head`): its answers would be noise.

        Raises:
            SpecError: naming the model and what to do instead.
        """
        labels = list(getattr(model.config, "id2label", {}).values())
        if self.labelled_head and labels and all(_PLACEHOLDER_LABEL.fullmatch(str(x)) for x in labels):
            raise SpecError(f"model '{ref}' has no trained {self.name} head (its labels are {labels[:3]}...)",
                            hint=f"fine-tune it first: fmhub finetune --model {ref} --task {self.name} --train FILE")

    # -- endpoint requests and responses ---------------------------------------------------------
    def hf_object_input(self, obj: dict[str, Any]) -> Any:
        """One input given as an object under ``inputs`` (Hugging Face's pipelines) in the form
        :meth:`check_score_input` takes, or None when the task takes no such object."""
        return None

    def column_plan(self, columns: list[str], key: str) -> Any:
        """Which columns of a table-shaped request (``{"columns", "data"}``) make one input.

        Args:
            columns: The request's column names.
            key: The request field, for messages (``input_data``).

        Returns:
            A column index (the cell is the input), a list of indices (a list of cells), or a dict
            ``{key: index}`` (an object).

        Raises:
            SpecError: the columns cannot be mapped; the hint says which names are understood.
        """
        if len(columns) == 1:
            return 0
        first = self.schema.required[0]
        at = self._find_column(columns, first)
        if at is None:
            names_ok = ", ".join(dict.fromkeys(self._column_aliases(first)[:7]))
            raise SpecError(f"{key}.columns {columns}: {self.name} takes one text column",
                            hint=f"send one column, or name the text column one of {names_ok}")
        return at

    def _column_aliases(self, task_key: str) -> tuple[str, ...]:
        """The lower-case column names understood for ``task_key`` (the key first)."""
        return tuple(a.lower() for a in (task_key, *self.schema.aliases.get(task_key, ())))

    def _find_column(self, columns: list[str], task_key: str) -> int | None:
        """The index of the first column named as ``task_key`` or one of its aliases, or None."""
        names = [c.strip().lower() for c in columns]
        aliases = self._column_aliases(task_key)
        return next((i for i, n in enumerate(names) if n in aliases), None)

    def truncated_flags(self, tokenizer: Any, inputs: list[Any], limit: int) -> list[bool]:
        """Which inputs have more than ``limit`` tokens, for tasks whose predictions do not say so
        themselves; the default says none (see :meth:`encode_response`)."""
        return [False] * len(inputs)

    def encode_response(self, raw: list[Any], truncated: list[bool]) -> list[dict[str, Any]]:
        """The response form of each prediction (the endpoint contract; see
        :attr:`score_response_example`).

        Args:
            raw: :meth:`predict` results.
            truncated: Per input, whether it was cut (:meth:`truncated_flags`).

        Returns:
            One dict per prediction; the default copies the prediction and sets ``truncated`` from
            its own ``truncated`` entry.
        """
        return [{**pred, "truncated": bool(pred.get("truncated", False))} for pred in raw]


_PLACEHOLDER_LABEL = re.compile(r"LABEL_\d+")
"""The label names transformers gives an untrained head."""
