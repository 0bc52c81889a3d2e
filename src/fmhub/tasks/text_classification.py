"""Text classification: single sentences or sentence pairs -> a label name.

Keys: ``sentence1``, ``label`` (required), ``sentence2`` (optional, for pairs). Labels are names
(strings) end to end: the model config's ``id2label`` holds the user's names and predictions return
them. Metrics follow scikit-learn (accuracy, macro precision/recall/F1, MCC, per-class report,
confusion matrix).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from fmhub.data.labels import ChangeLog, normalise_label, number_of, numbers_written_two_ways
from fmhub.data.problems import Problem, shorten_value
from fmhub.data.schema import TaskSchema
from fmhub.tasks.base import Examples, LabelInfo, Task
from fmhub.tasks.class_labels import (is_missing, label_name, label_sort_key, labels_as_numbers, name_integer_labels,
                                      non_finite_problem)
from fmhub.tasks.unseen_labels import unseen_labels


MOSTLY_UNIQUE_MIN_ROWS = 20
"""From this many training rows on, more classes than half the rows is an error: the label column
holds text (a swapped mapping), not classes."""


class TextClassification(Task):
    """Sequence classification with a transformers ``AutoModelForSequenceClassification``."""

    name = "text-classification"
    schema = TaskSchema(
        required=("sentence1", "label"),
        optional=("sentence2",),
        aliases={
            "sentence1": ("sentence", "text", "sentence1", "review", "content", "document", "premise",
                          "question1", "input", "text_a"),
            "sentence2": ("sentence2", "hypothesis", "question2", "text_b", "text_pair"),
            "label": ("label", "labels", "class", "category", "target", "sentiment", "stars", "rating", "y"),
        },
    )
    metric_for_best_model = "f1_macro"
    metric_names = ("accuracy", "f1_macro", "precision_macro", "recall_macro", "mcc", "f1_weighted")
    headline_metric = "f1_macro"
    metric_points = 100.0
    runtime_checked = True
    onnx_logits = True
    sample_train_file = ("train.csv", "columns text,label (label names, e.g. neg/pos)")
    label_type_option = True
    labelled_head = True
    # Defaults from the BERT fine-tuning recipe (Devlin et al. 2019, Appendix A.3: lr in
    # {5e-5, 3e-5, 2e-5}, batch 32, 2-4 epochs) and the transformers text-classification example
    # (max_seq_length 128); warmup 6% and weight decay 0.01 as in RoBERTa's GLUE recipe.
    default_hyperparameters = {
        "learning_rate": 5e-5,
        "num_train_epochs": 3.0,
        "per_device_train_batch_size": 32,
        "max_seq_length": 128,
        "warmup_steps": 0.06,
        "weight_decay": 0.01,
    }

    # -- data checks -------------------------------------------------------------------------
    def check_rows(self, examples: Examples) -> tuple[list[int], list[Problem]]:
        good: list[int] = []
        problems: list[Problem] = []
        changes = ChangeLog()
        for i, (row, line) in enumerate(zip(examples.rows, examples.lines)):
            bad = False
            for key in ("sentence1", "sentence2"):
                if key not in row:
                    continue
                value = row[key]
                if is_missing(value) or (isinstance(value, str) and not value.strip()):
                    problems.append(Problem(f"empty text for '{key}'", file=examples.file, line=line,
                                            column=key, value=shorten_value("" if value is None else value),
                                            hint="fill in the text or remove the row (or --on-invalid-row drop)"))
                    bad = True
                elif isinstance(value, (list, dict)):
                    problems.append(Problem(f"'{key}' must be a text, not a list or object", file=examples.file,
                                            line=line, column=key, value=shorten_value(value),
                                            hint="give one text per row (join the pieces in the file)"))
                    bad = True
                elif not isinstance(value, str):
                    row[key] = str(value)
            label = row.get("label")
            if isinstance(label, float) and not math.isfinite(label):  # JSON NaN / Infinity, a float column's NaN
                problems.append(non_finite_problem(label, examples.file, line))
                bad = True
            elif is_missing(label) or (isinstance(label, str) and not label.strip()):
                problems.append(Problem("missing label", file=examples.file, line=line, column="label",
                                        value=shorten_value("" if label is None else label), hint="give every row a label (or --on-invalid-row drop)"))
                bad = True
            elif isinstance(label, (list, dict)):
                problems.append(Problem("a label must be a single value, not a list or object",
                                        file=examples.file, line=line, column="label", value=shorten_value(label)))
                bad = True
            else:
                name = label_name(label)
                number = number_of(normalise_label(name))
                if number is not None and not math.isfinite(number):
                    problems.append(non_finite_problem(name, examples.file, line))
                    bad = True
                else:
                    row["label"] = changes.normalise(name, line) if not bad else normalise_label(name)
            if not bad:
                good.append(i)
        return good, problems + changes.warnings(examples.file, "label")

    def apply_label_options(self, examples: Examples, options: dict[str, Any]) -> list[Problem]:
        """Read labels as numbers when the user says so (``--label-type``), or name integer
        classes (``--label-names``, see :meth:`apply_label_names`).

        ``label_type="number"``: labels equal as numbers are one class, named by the number's
        shortest text (``1``, ``1.0``, ``01`` and ``"1"`` -> ``"1"``; ``2.50`` -> ``"2.5"``).
        ``label_type="int"``: the same, and a label that is not a whole number is an error.
        A label that is not a finite number is an error naming its line in both. Other values
        (``string``, None) leave the labels as written.
        """
        if options.get("label_names"):
            if options.get("label_type") == "string":
                from fmhub.errors import SpecError

                raise SpecError("--label-names reads the labels as class ids (1 and 1.0 are class 1), and "
                                "--label-type string keeps every spelling apart as a class of its own",
                                hint="give one of the two: --label-names for integer ids, --label-type string "
                                     "for labels that are names")
            return self.apply_label_names(examples, options["label_names"])
        return labels_as_numbers(examples, options.get("label_type"))

    def check_label_values(self, splits: dict[str, Examples], options: dict[str, Any]) -> list[Problem]:
        """Labels equal as numbers but written differently (``1``, ``1.0``, ``01``) stop the job
        unless ``label_type`` says how to read them (``number`` merges, ``string`` keeps apart).

        Returns:
            One error per spelling of such a number (across all splits): file, first line, column,
            value, and every line (the first five) in the message.
        """
        if options.get("label_type") is not None:
            return []
        return numbers_written_two_ways(
            (ex.file, line, row["label"]) for ex in (splits[name] for name in ("train", "validation", "test")
                                                     if name in splits)
            for row, line in zip(ex.rows, ex.lines) if isinstance(row.get("label"), str))

    def apply_label_names(self, examples: Examples, label_names: list[str] | str) -> list[Problem]:
        """``--label-names``: an integer label ``i`` (``1``, ``1.0`` or ``"1"``) becomes
        ``label_names[i]``, as ``--tag-names`` does for tags. A label already written as one of the
        names is kept; any other label, and an id without a name, is an error naming its line.

        Raises:
            DataError: the names file is missing or empty; names repeat or are empty.
        """
        return name_integer_labels(examples, label_names)

    def label_info(self, train: Examples) -> LabelInfo:
        names = sorted({row["label"] for row in train.rows}, key=label_sort_key)
        is_pair = any(row.get("sentence2") is not None for row in train.rows)
        return LabelInfo(labels=names, extra={"is_pair": is_pair})

    def check_splits(self, splits: dict[str, Examples], info: LabelInfo) -> list[Problem]:
        problems: list[Problem] = []
        train = splits["train"]
        if len(info.labels) < 2 and len(train):
            only = info.labels[0] if info.labels else "(none)"
            problems.append(Problem(f"the training data has fewer than two classes (only {only!r})",
                                    file=train.file, column="label", value=shorten_value(only),
                                    hint="a classifier needs at least two labels; check the label column mapping"))
        if len(train) >= MOSTLY_UNIQUE_MIN_ROWS and len(info.labels) > len(train) / 2:
            counts = Counter(row["label"] for row in train.rows)
            once = sum(1 for n in counts.values() if n == 1)
            problems.append(Problem(
                f"{len(info.labels)} classes in {len(train)} training rows ({once} labels occur once): "
                "the label column looks like text, not classes", file=train.file, column="label",
                value=shorten_value(train.rows[0]["label"]),
                hint="map label to the column that holds the classes (a class needs several examples)"))
        problems.extend(unseen_labels(splits, info, lambda row: [row["label"]], "label"))
        folded: dict[str, list[str]] = {}
        for lab in info.labels:
            folded.setdefault(lab.casefold(), []).append(lab)
        for same in folded.values():
            if len(same) > 1:
                problems.append(Problem(f"labels {same} differ only in upper/lower case", file=train.file,
                                        column="label", value=shorten_value(same[0]), severity="warning",
                                        hint="they are kept as different classes; make the column consistent "
                                             "if they are one class"))
        return problems

    def stratify_values(self, examples: Examples) -> list[Any]:
        return [row["label"] for row in examples.rows]

    def distribution(self, examples: Examples) -> dict[str, int]:
        counts = Counter(row["label"] for row in examples.rows)
        return {k: counts[k] for k in sorted(counts, key=label_sort_key)}

    def texts_for_length(self, examples: Examples) -> list[Any]:
        return self.model_inputs(examples)

    # -- model ---------------------------------------------------------------------------------
    def load_model(self, path: str, info: LabelInfo | None, base_path: str | None = None) -> Any:
        from transformers import AutoModelForSequenceClassification

        if info is None:
            return AutoModelForSequenceClassification.from_pretrained(path)
        return AutoModelForSequenceClassification.from_pretrained(
            path,
            num_labels=len(info.labels),
            id2label=info.id2label,
            label2id=info.label2id,
            ignore_mismatched_sizes=True,
        )

    def encode(self, examples: Examples, tokenizer: Any, info: LabelInfo, max_seq_length: int,
               **options: Any) -> Any:
        from datasets import Dataset

        first = [row["sentence1"] for row in examples.rows]
        second = [row.get("sentence2") or "" for row in examples.rows] if info.extra.get("is_pair") else None
        enc = tokenizer(first, second, truncation=True, max_length=max_seq_length)
        columns = dict(enc)
        columns["length"] = [len(ids) for ids in enc["input_ids"]]
        label2id = info.label2id
        columns["labels"] = [label2id[row["label"]] for row in examples.rows]
        return Dataset.from_dict(columns)

    def data_collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    # -- metrics -------------------------------------------------------------------------------
    def compute_metrics(self, predictions: list[str], references: list[str], info: LabelInfo) -> dict[str, Any]:
        """Accuracy, macro and weighted P/R/F1, MCC, per-class report and confusion matrix (scikit-learn).

        The averages run over the labels present in the references or the predictions of this
        split, as scikit-learn does with ``labels=None``: a training class that neither occurs
        nor is predicted here is not averaged in (a perfect predictor scores 1.0). It is still
        listed in ``per_class`` with support 0, and the confusion matrix keeps every class.

        Args:
            predictions: Predicted label names, one per example.
            references: Gold label names, same length.
            info: The label space; its order fixes the rows/columns of the confusion matrix.

        Returns:
            ``accuracy``, ``f1_macro``, ``precision_macro``, ``recall_macro``, ``f1_weighted``,
            ``mcc`` (floats), ``weighted_avg`` (precision, recall, f1 weighted by support),
            ``per_class`` (label -> precision, recall, f1, support), ``confusion_matrix``
            (``labels``, ``matrix``), ``n``.
        """
        from sklearn.metrics import (accuracy_score, classification_report, confusion_matrix,
                                     matthews_corrcoef, precision_recall_fscore_support)

        present = set(references) | set(predictions)
        averaged = [lab for lab in info.labels if lab in present]
        averaged += sorted(present - set(averaged), key=label_sort_key)
        labels = list(info.labels) + [lab for lab in averaged if lab not in info.labels]
        scores: dict[str, float] = {}
        for average in ("macro", "weighted"):
            p, r, f, _ = precision_recall_fscore_support(references, predictions, labels=averaged or None,
                                                         average=average, zero_division=0)
            scores |= {f"f1_{average}": float(f), f"precision_{average}": float(p), f"recall_{average}": float(r)}
        report = classification_report(references, predictions, labels=labels, output_dict=True, zero_division=0)
        per_class = {lab: {"precision": report[lab]["precision"], "recall": report[lab]["recall"],
                           "f1": report[lab]["f1-score"], "support": int(report[lab]["support"])}
                     for lab in labels}
        return {
            "accuracy": float(accuracy_score(references, predictions)),
            **{k: scores[k] for k in ("f1_macro", "precision_macro", "recall_macro", "f1_weighted")},
            "weighted_avg": {k: scores[f"{k}_weighted"] for k in ("precision", "recall", "f1")},
            "mcc": float(matthews_corrcoef(references, predictions)),
            "per_class": per_class,
            "confusion_matrix": {"labels": labels,
                                 "matrix": confusion_matrix(references, predictions, labels=labels).tolist()},
            "n": len(references),
        }

    def trainer_metrics(self, info: LabelInfo) -> Any:
        labels = info.labels

        def compute(eval_pred: Any) -> dict[str, float]:
            logits, label_ids = eval_pred.predictions, eval_pred.label_ids
            if isinstance(logits, tuple):
                logits = logits[0]
            pred = [labels[i] for i in np.asarray(logits).argmax(-1)]
            ref = [labels[i] for i in np.asarray(label_ids)]
            full = self.compute_metrics(pred, ref, info)
            return {k: v for k, v in full.items() if isinstance(v, float)}

        return compute

    def references(self, examples: Examples) -> list[str]:
        return [row["label"] for row in examples.rows]

    def predictions_for_metrics(self, results: list[Any]) -> list[str]:
        return [r[0]["label"] for r in results]

    def prediction_warnings(self, predictions: list[Any], info: LabelInfo, split: str) -> list[str]:
        """A model that predicts one class for every row of a split (with two classes or more)."""
        predicted = set(predictions)
        if len(predictions) > 1 and len(predicted) == 1 and len(info.labels) > 1:
            return [f"the model predicts one class only ({next(iter(predicted))!r}) for all {len(predictions)} "
                    f"{split} rows: it has not learned to tell the {len(info.labels)} classes apart; train "
                    "longer (more steps or epochs), check the learning rate, or balance the classes"]
        return []

    def model_inputs(self, examples: Examples) -> list[Any]:
        return [[row["sentence1"], row["sentence2"]] if row.get("sentence2") else row["sentence1"]
                for row in examples.rows]

    # -- scoring -------------------------------------------------------------------------------
    score_input_doc = "a string, or a [text, text_pair] list of two strings"
    score_example = ["a gorgeous, witty film", ["The cat sat.", "A cat was sitting."]]
    score_params_names = ("top_k",)
    score_response_example = [{"label": "positive", "score": 0.9821, "truncated": False},
                              {"label": "entailment", "score": 0.8712, "truncated": False}]

    def check_score_input(self, value: Any) -> Any:
        """A text, or a ``[text, text_pair]`` pair (see :meth:`Task.check_score_input`)."""
        if isinstance(value, str):
            return value
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
            return value
        raise ValueError(f"expected {self.score_input_doc}")

    def hf_object_input(self, obj: dict[str, Any]) -> Any:
        """``{"text", "text_pair"}`` -> a pair, ``{"text"}`` -> a text (see :meth:`Task.hf_object_input`)."""
        if set(obj) == {"text", "text_pair"}:
            return [obj["text"], obj["text_pair"]]
        if set(obj) == {"text"}:
            return obj["text"]
        return None

    def column_plan(self, columns: list[str], key: str) -> Any:
        """One text column, or two (a pair: ``sentence1`` and ``sentence2`` or their aliases, else
        the first two in order); see :meth:`Task.column_plan`."""
        if len(columns) > 1:
            at, second = self._find_column(columns, "sentence1"), self._find_column(columns, "sentence2")
            if len(columns) == 2 and (at is None or second is None or at == second):
                return [1 - second, second] if second is not None else [0, 1]
            if at is not None and second is not None and at != second:
                return [at, second]
        return super().column_plan(columns, key)

    def truncated_flags(self, tokenizer: Any, inputs: list[Any], limit: int) -> list[bool]:
        """Which inputs have more than ``limit`` tokens (pairs counted together)."""
        if all(isinstance(x, str) and len(x) < limit for x in inputs):  # fewer characters than tokens allowed
            return [False] * len(inputs)
        singles = [x for x in inputs if not isinstance(x, list)]
        pairs = [x for x in inputs if isinstance(x, list)]
        lengths = iter([len(ids) for ids in tokenizer(singles)["input_ids"]] if singles else [])
        pair_lengths = iter([len(ids) for ids in tokenizer([a for a, _ in pairs], [b for _, b in pairs])["input_ids"]]
                            if pairs else [])
        return [(next(pair_lengths) if isinstance(x, list) else next(lengths)) > limit for x in inputs]

    def encode_response(self, raw: list[Any], truncated: list[bool]) -> list[dict[str, Any]]:
        """``{"label", "score", "top_k"?, "truncated"}`` per input (``top_k`` when more than one
        label was asked for)."""
        out = []
        for pred, cut in zip(raw, truncated):
            item = {"label": pred[0]["label"], "score": round(pred[0]["score"], 6), "truncated": cut}
            if len(pred) > 1:
                item["top_k"] = [{"label": p["label"], "score": round(p["score"], 6)} for p in pred]
            out.append(item)
        return out

    def score_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """``top_k``: labels per input, best first (1-100)."""
        out: dict[str, Any] = {}
        if "top_k" in params:
            value = params["top_k"]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
                raise ValueError("params.top_k: expected an integer from 1 to 100")
            out["top_k"] = value
        return out

    # -- prediction ----------------------------------------------------------------------------
    def predict(self, model: Any, tokenizer: Any, inputs: list[Any], *, batch_size: int = 64,
                max_seq_length: int = 512, top_k: int = 1, **options: Any) -> list[list[dict[str, Any]]]:
        """Classify texts (or ``[text, text_pair]`` pairs).

        Inputs are sorted by length and run in batches of ``batch_size`` under
        ``torch.inference_mode()``; results come back in input order.

        Returns:
            Per input, the ``top_k`` best ``{"label": name, "score": probability}``, best first.
        """
        import torch

        from fmhub.tasks.batching import length_sorted_batches

        id2label = {int(k): v for k, v in model.config.id2label.items()}
        k = max(1, min(top_k, len(id2label)))
        pairs = [x if isinstance(x, (list, tuple)) else [x, None] for x in inputs]
        lengths = [len(a) + len(b or "") for a, b in pairs]
        out: list[Any] = [None] * len(inputs)
        device = next(model.parameters()).device
        model.eval()
        with torch.inference_mode():
            for idx in length_sorted_batches(lengths, batch_size):
                first = [pairs[i][0] for i in idx]
                second = [pairs[i][1] or "" for i in idx] if any(pairs[i][1] for i in idx) else None
                enc = tokenizer(first, second, truncation=True, max_length=max_seq_length, padding=True,
                                return_tensors="pt").to(device)
                probs = torch.softmax(model(**enc).logits.float(), dim=-1)
                scores, ids = probs.topk(k, dim=-1)
                for row, i in enumerate(idx):
                    out[i] = [{"label": id2label[int(c)], "score": float(s)}
                              for s, c in zip(scores[row].tolist(), ids[row].tolist())]
        return out
