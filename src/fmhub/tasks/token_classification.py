"""Token classification (NER): a tag per word, IOB2 tag names end to end.

Keys: ``tokens`` (list of words) and ``tags`` (list of IOB2 tag names, same length). Labels are
aligned to sub-words: the first sub-word of a word carries its tag and the others are ignored in the
loss (``-100``). Metrics: seqeval in strict IOB2 mode (entity precision/recall/F1, overall and per
type) plus token accuracy.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from fmhub.data.labels import ChangeLog, lines_text
from fmhub.data.problems import Problem, shorten_value
from fmhub.data.schema import TaskSchema
from fmhub.errors import DataError
from fmhub.tasks.base import Examples, LabelInfo, Task
from fmhub.tasks.iob import entity_spans, parse_list_cell, tag_sort_key
from fmhub.tasks.unseen_labels import unseen_labels
from fmhub.tasks.word_pieces import IGNORE, align_labels, empty_words, fill_empty_words, placeholder_token

WORD_RE = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]", re.UNICODE)


IOB2_TAG = re.compile(r"^(O|[BI]-\S+)$")


def resolve_tag_names(value: list[str] | str, what: str = "tag", example: str = "O,B-PER,I-PER") -> list[str]:
    """Tag (or label) names in id order from a list, a comma-separated string, or a names file (one
    name per line, or a JSON list).

    Args:
        value: The list, the comma-separated names, or the file's path.
        what: ``tag`` or ``label`` (named in errors).
        example: Comma-separated names shown in hints.

    Raises:
        DataError: the names file is missing or holds no names.
    """
    if isinstance(value, list):
        return [str(v).strip() for v in value]
    if "," in value and not Path(value).is_file():
        return [v.strip() for v in value.split(",")]
    path = Path(value).expanduser()
    if not path.is_file():
        raise DataError(f"{what} names file not found: {value}",
                        hint=f"give the names in id order, comma-separated ({example}), or a file with one per line")
    text = path.read_text(encoding="utf-8")
    names = json.loads(text) if text.lstrip().startswith("[") else [x.strip() for x in text.splitlines() if x.strip()]
    if not names:
        raise DataError(f"{what} names file {value} holds no names", hint=f"write one {what} name per line, in id order")
    return [str(n).strip() for n in names]


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Words of a raw string with character offsets: ``(word, start, end)``."""
    return [(m.group(), m.start(), m.end()) for m in WORD_RE.finditer(text)]


class TokenClassification(Task):
    """Token classification with ``AutoModelForTokenClassification``."""

    name = "token-classification"
    schema = TaskSchema(
        required=("tokens", "tags"),
        aliases={"tokens": ("tokens", "words", "token"),
                 "tags": ("tags", "ner_tags", "ner", "labels", "label", "tag")},
        list_keys=("tokens", "tags"),
    )
    metric_for_best_model = "f1"
    metric_names = ("f1", "precision", "recall", "accuracy")
    headline_metric = "f1"
    metric_points = 100.0
    runtime_checked = True
    onnx_logits = True
    sample_train_file = ("train.jsonl", 'one {"tokens": [...], "tags": [...]} object per line (IOB2 tags)')
    labelled_head = True
    # lr 1e-4, 3 epochs: the CoNLL-2003 reference run in shared/baselines (strict F1 0.817);
    # max_seq_length 256 sub-words keeps every CoNLL sentence whole.
    default_hyperparameters = {
        "learning_rate": 1e-4,
        "num_train_epochs": 3.0,
        "per_device_train_batch_size": 32,
        "max_seq_length": 256,
        "warmup_steps": 0.06,
        "weight_decay": 0.01,
    }

    def check_rows(self, examples: Examples) -> tuple[list[int], list[Problem]]:
        good, problems = [], []
        changes = ChangeLog()
        for i, (row, line) in enumerate(zip(examples.rows, examples.lines)):
            bad = False
            for key in ("tokens", "tags"):
                value, why = parse_list_cell(row.get(key))
                if why:
                    problems.append(Problem(f"'{key}' must be a list: {why}", file=examples.file, line=line,
                                            column=key, value=shorten_value(row.get(key))))
                    bad = True
                else:
                    row[key] = value
            if bad:
                continue
            tokens, tags = row["tokens"], row["tags"]
            if not tokens:
                problems.append(Problem("empty token list", file=examples.file, line=line, column="tokens",
                                        value="[]", hint="remove the row (or --on-invalid-row drop)"))
                continue
            if len(tokens) != len(tags):
                problems.append(Problem(f"{len(tokens)} tokens but {len(tags)} tags", file=examples.file,
                                        line=line, column="tags", value=shorten_value(tags),
                                        hint="every token needs exactly one tag"))
                continue
            if any(not isinstance(t, str) for t in tags):
                odd = next(t for t in tags if not isinstance(t, str))
                problems.append(Problem("tags must be names such as 'B-PER', not numbers", file=examples.file,
                                        line=line, column="tags", value=shorten_value(odd),
                                        hint="write the tag names in the file (IOB2: O, B-TYPE, I-TYPE), or "
                                             "give them in id order: --tag-names O,B-PER,I-PER,... "
                                             "(or --tag-names names.txt)"))
                continue
            row["tokens"] = [str(t) for t in tokens]
            row["tags"] = [changes.normalise(t, line) for t in tags]
            good.append(i)
        return good, problems + changes.warnings(examples.file, "tags", noun="tag")

    def apply_label_options(self, examples: Examples, options: dict[str, Any]) -> list[Problem]:
        """With ``tag_names``, integer tags (``3`` or ``"3"``) become ``tag_names[3]``; an id without a
        name is an error naming the line. Tags that are already names are kept."""
        if not options.get("tag_names"):
            return []
        names = resolve_tag_names(options["tag_names"])
        problems = []
        for row, line in zip(examples.rows, examples.lines):
            tags, why = parse_list_cell(row.get("tags"))
            if why or not isinstance(tags, list):
                continue  # the row checks report it
            mapped, bad = [], None
            for tag in tags:
                text = str(tag).strip() if isinstance(tag, (int, str)) and not isinstance(tag, bool) else None
                if text is not None and text.isdigit():
                    if int(text) >= len(names):
                        bad = tag
                        break
                    mapped.append(names[int(text)])
                else:
                    mapped.append(tag)
            if bad is not None:
                problems.append(Problem(f"tag id {bad} has no name (--tag-names gives {len(names)}: 0-{len(names) - 1})",
                                        file=examples.file, line=line, column="tags", value=shorten_value(bad),
                                        hint="give every tag id a name, in id order"))
                continue
            row["tags"] = mapped
        return problems

    def label_info(self, train: Examples) -> LabelInfo:
        tags = sorted({t for row in train.rows for t in row["tags"]}, key=tag_sort_key)
        return LabelInfo(labels=tags)

    def check_splits(self, splits: dict[str, Examples], info: LabelInfo) -> list[Problem]:
        problems = []
        if len(info.labels) < 2 and len(splits["train"]):
            problems.append(Problem("the training data has fewer than two distinct tags", file=splits["train"].file,
                                    column="tags", hint="check the tags column mapping"))
        problems.extend(unseen_labels(splits, info, lambda row: row["tags"], "tags", noun="tag"))
        odd = [t for t in info.labels if not IOB2_TAG.match(t)]
        if odd:
            problems.append(Problem(f"tags {odd} are not IOB2 (O, B-TYPE, I-TYPE)", file=splits["train"].file,
                                    column="tags", value=shorten_value(odd[0]), severity="warning",
                                    hint="strict IOB2 entity scores (seqeval) will not count them as entities; "
                                         "convert the tags to IOB2"))
        return problems

    def distribution(self, examples: Examples) -> dict[str, int]:
        counts = Counter(t for row in examples.rows for t in row["tags"])
        return {k: counts[k] for k in sorted(counts, key=tag_sort_key)}

    def texts_for_length(self, examples: Examples) -> list[Any]:
        return [row["tokens"] for row in examples.rows]

    def token_counts(self, tokenizer: Any, examples: Examples) -> list[int]:
        enc = tokenizer(fill_empty_words(tokenizer, self.texts_for_length(examples)), is_split_into_words=True,
                        truncation=False)
        return [len(ids) for ids in enc["input_ids"]]

    def tokenizer_warnings(self, tokenizer: Any, examples: Examples) -> list[Problem]:
        """One warning per row holding words that become no sub-word token (see
        :func:`fill_empty_words`), naming the file, line and word indices (0-based)."""
        unk = placeholder_token(tokenizer)
        problems = []
        for row, line, empty in zip(examples.rows, examples.lines, empty_words(tokenizer, self.model_inputs(examples))):
            if not empty:
                continue
            shown = ", ".join(f"{i} ({row['tokens'][i]!r})" for i in empty[:5])
            problems.append(Problem(
                f"word{'s' if len(empty) > 1 else ''} {shown}{' ...' if len(empty) > 5 else ''} of "
                f"{len(row['tokens'])} become no sub-word token of the model's tokenizer: read as {unk!r}, "
                "so each keeps its tag", file=examples.file, line=line, column="tokens",
                value=shorten_value(row["tokens"][empty[0]]), severity="warning",
                hint="remove invisible or control characters from the words, or merge the word into its neighbour"))
        if len(problems) > 20:
            rest = [p.line for p in problems[20:]]
            problems = problems[:20] + [Problem(f"{len(rest)} more row(s) with such words on {lines_text(rest)}",
                                                file=examples.file, line=rest[0], column="tokens",
                                                severity="warning")]
        return problems

    def load_model(self, path: str, info: LabelInfo | None, base_path: str | None = None) -> Any:
        from transformers import AutoModelForTokenClassification

        if info is None:
            return AutoModelForTokenClassification.from_pretrained(path)
        return AutoModelForTokenClassification.from_pretrained(
            path, num_labels=len(info.labels), id2label=info.id2label, label2id=info.label2id,
            ignore_mismatched_sizes=True)

    def encode(self, examples: Examples, tokenizer: Any, info: LabelInfo, max_seq_length: int,
               **options: Any) -> Any:
        from datasets import Dataset

        enc = tokenizer(fill_empty_words(tokenizer, [row["tokens"] for row in examples.rows]),
                        is_split_into_words=True, truncation=True, max_length=max_seq_length)
        l2i = info.label2id
        columns = dict(enc)
        columns["labels"] = [align_labels(enc.word_ids(i), [l2i[t] for t in row["tags"]])
                             for i, row in enumerate(examples.rows)]
        columns["length"] = [len(ids) for ids in enc["input_ids"]]
        return Dataset.from_dict(columns)

    def data_collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer)

    def compute_metrics(self, predictions: list[list[str]], references: list[list[str]],
                        info: LabelInfo) -> dict[str, Any]:
        """seqeval strict IOB2 entity P/R/F1 (overall, per type) and token accuracy.

        Args:
            predictions: Predicted tags per sentence, one per word.
            references: Gold tags per sentence, same shapes.
            info: The tag set (unused; kept for the common signature).
        """
        from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
        from seqeval.scheme import IOB2

        kw = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
        report = classification_report(references, predictions, output_dict=True, **kw)
        per_type = {k: {"precision": float(v["precision"]), "recall": float(v["recall"]),
                        "f1": float(v["f1-score"]), "support": int(v["support"])}
                    for k, v in report.items() if not k.endswith(" avg")}
        total = sum(len(r) for r in references)
        correct = sum(p == g for ps, gs in zip(predictions, references) for p, g in zip(ps, gs))
        return {"precision": float(precision_score(references, predictions, **kw)),
                "recall": float(recall_score(references, predictions, **kw)),
                "f1": float(f1_score(references, predictions, **kw)),
                "accuracy": correct / total if total else 0.0,
                "per_type": per_type, "n": len(references)}

    def trainer_metrics(self, info: LabelInfo) -> Any:
        labels = info.labels

        def compute(eval_pred: Any) -> dict[str, float]:
            logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
            pred_ids, label_ids = np.asarray(logits).argmax(-1), np.asarray(eval_pred.label_ids)
            preds, refs = [], []
            for p_row, l_row in zip(pred_ids, label_ids):
                keep = l_row != IGNORE
                preds.append([labels[i] for i in p_row[keep]])
                refs.append([labels[i] for i in l_row[keep]])
            full = self.compute_metrics(preds, refs, info)
            return {k: v for k, v in full.items() if isinstance(v, float)}

        return compute

    def references(self, examples: Examples) -> list[list[str]]:
        return [row["tags"] for row in examples.rows]

    def predictions_for_metrics(self, results: list[Any]) -> list[list[str]]:
        return [r["tags"] for r in results]

    def prediction_warnings(self, predictions: list[Any], info: LabelInfo, split: str) -> list[str]:
        """A model that predicts no entity at all on a split (every tag ``O``)."""
        if predictions and any(t != "O" for t in info.labels) and not any(t != "O" for tags in predictions for t in tags):
            return [f"the model predicts no entity at all on the {len(predictions)} {split} rows (every tag 'O'): "
                    "train longer (more steps or epochs) or check the learning rate"]
        return []

    def model_inputs(self, examples: Examples) -> list[Any]:
        return [row["tokens"] for row in examples.rows]

    score_input_doc = "a string, or a list of words (strings)"
    score_example = ["Ada Lovelace was born in London.", ["Alan", "Turing", "visited", "Paris"]]
    score_response_example = [{"entities": [{"type": "PER", "text": "Ada Lovelace", "start": 0, "end": 12,
                                             "score": 0.97, "words": [0, 2]}],
                               "tags": ["B-PER", "I-PER", "O", "O", "O", "B-LOC", "O"],
                               "tokens": ["Ada", "Lovelace", "was", "born", "in", "London", "."], "truncated": False}]

    def check_score_input(self, value: Any) -> Any:
        """A text (split into words) or a list of words (see :meth:`Task.check_score_input`)."""
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return value
        raise ValueError(f"expected {self.score_input_doc}")

    def predict(self, model: Any, tokenizer: Any, inputs: list[Any], *, batch_size: int = 64,
                max_seq_length: int = 512, top_k: int = 1, **options: Any) -> list[dict[str, Any]]:
        """Tag words. An input is a list of words, or a string (split into words and punctuation).

        Returns:
            Per input: ``{"tokens", "tags" (one per word), "entities": [{"type", "text", "words":
            [first, last + 1], "score", "start", "end"}], "truncated"}``; character offsets only
            for string inputs. Words past ``max_seq_length`` sub-words get tag ``O`` and set
            ``truncated``; a word the tokenizer turns into no sub-word is fed as a placeholder
            (:func:`fill_empty_words`), gets a tag of its own and does not set ``truncated``.
        """
        import torch

        from fmhub.tasks.batching import length_sorted_batches

        id2label = {int(k): v for k, v in model.config.id2label.items()}
        words, offsets = [], []
        for x in inputs:
            if isinstance(x, str):
                parts = split_words(x)
                words.append([w for w, _, _ in parts])
                offsets.append([(s, e) for _, s, e in parts])
            else:
                words.append([str(w) for w in x])
                offsets.append(None)
        out: list[Any] = [None] * len(inputs)
        device = next(model.parameters()).device
        model.eval()
        with torch.inference_mode():
            for idx in length_sorted_batches([len(w) for w in words], batch_size):
                batch = fill_empty_words(tokenizer, [words[i] or [""] for i in idx])
                enc = tokenizer(batch, is_split_into_words=True, truncation=True, max_length=max_seq_length,
                                padding=True, return_tensors="pt")
                probs = torch.softmax(model(**enc.to(device)).logits.float(), dim=-1)
                scores, ids = probs.max(-1)
                for row, i in enumerate(idx):
                    n = len(words[i])
                    tags, tag_scores, previous = ["O"] * n, [1.0] * n, None
                    for pos, w in enumerate(enc.word_ids(row)):
                        if w is not None and w != previous and w < n:
                            tags[w] = id2label[int(ids[row, pos])]
                            tag_scores[w] = float(scores[row, pos])
                        previous = w
                    seen_words = {w for w in enc.word_ids(row) if w is not None}
                    out[i] = self._result(words[i], tags, tag_scores, offsets[i], inputs[i],
                                          truncated=len(seen_words) < n)
        return out

    @staticmethod
    def _result(words: list[str], tags: list[str], scores: list[float], offsets: Any, raw: Any,
                truncated: bool) -> dict[str, Any]:
        entities = []
        for kind, a, b in entity_spans(tags):
            ent: dict[str, Any] = {"type": kind, "words": [a, b], "score": round(float(np.mean(scores[a:b])), 4)}
            if offsets is not None:
                ent["start"], ent["end"] = offsets[a][0], offsets[b - 1][1]
                ent["text"] = raw[ent["start"]:ent["end"]]
            else:
                ent["text"] = " ".join(words[a:b])
            entities.append(ent)
        return {"tokens": words, "tags": tags, "entities": entities, "truncated": truncated}
