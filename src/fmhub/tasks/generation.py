"""Shared parts of the sequence-to-sequence tasks (summarization, translation): row checks where an
empty target is reported and left out of training, encoding source -> labels, and batched
``generate`` for prediction. Works with any ``AutoModelForSeq2SeqLM`` (T5, BART, Marian, a
warm-started ``EncoderDecoderModel``).
"""

from __future__ import annotations

from typing import Any

from fmhub.data.problems import Problem, shorten_value
from fmhub.tasks.base import Examples, LabelInfo, Task

DEFAULT_GENERATION = {"num_beams": 1, "max_new_tokens": 64}


class Seq2SeqTask(Task):
    """Base of the text-to-text tasks; subclasses set ``name``, ``schema``, the source/target keys
    and ``compute_metrics``."""

    source_key: str
    target_key: str
    metric_for_best_model = "loss"
    greater_is_better = False
    metric_names: tuple[str, ...] = ()

    def check_rows(self, examples: Examples) -> tuple[list[int], list[Problem]]:
        good, problems = [], []
        for i, (row, line) in enumerate(zip(examples.rows, examples.lines)):
            source, target = row.get(self.source_key), row.get(self.target_key)
            if not isinstance(source, str) or not source.strip():
                problems.append(Problem(f"empty {self.source_key}", file=examples.file, line=line,
                                        column=self.source_key, value=shorten_value("" if source is None else source),
                                        hint="fill it in or remove the row (or --on-invalid-row drop)"))
                continue
            if not isinstance(target, str) or not target.strip():
                row[self.target_key] = ""
                problems.append(Problem(f"empty {self.target_key}: left out of training and of the metrics, "
                                        "still predicted", file=examples.file, line=line, column=self.target_key,
                                        value=shorten_value("" if target is None else target), severity="warning"))
            good.append(i)
        return good, problems

    def label_info(self, train: Examples) -> LabelInfo:
        return LabelInfo()

    def check_splits(self, splits: dict[str, Examples], info: LabelInfo) -> list[Problem]:
        train = splits["train"]
        if len(train) and not any(row[self.target_key] for row in train.rows):
            return [Problem(f"no training row has a {self.target_key}", file=train.file, column=self.target_key,
                            hint="check the column mapping")]
        return []

    def distribution(self, examples: Examples) -> dict[str, int]:
        empty = sum(1 for row in examples.rows if not row[self.target_key])
        return {f"with {self.target_key}": len(examples) - empty, f"without {self.target_key}": empty}

    def texts_for_length(self, examples: Examples) -> list[Any]:
        return [row[self.source_key] for row in examples.rows]

    def load_model(self, path: str, info: LabelInfo | None) -> Any:
        from transformers import AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM.from_pretrained(path)

    def source_text(self, row: dict[str, Any], prefix: str = "") -> str:
        """The model input for a row (``prefix`` such as T5's ``summarize: `` in front)."""
        return prefix + row[self.source_key]

    def encode(self, examples: Examples, tokenizer: Any, info: LabelInfo, max_seq_length: int,
               **options: Any) -> Any:
        """Source ids and target ``labels`` for rows that have a target (no padding)."""
        from datasets import Dataset

        prefix = options.get("source_prefix") or ""
        rows = [row for row in examples.rows if row[self.target_key]]
        enc = tokenizer([self.source_text(r, prefix) for r in rows], truncation=True, max_length=max_seq_length)
        target_len = options.get("max_target_length") or max_seq_length
        labels = tokenizer(text_target=[r[self.target_key] for r in rows], truncation=True, max_length=target_len)
        columns = {k: v for k, v in enc.items() if k != "token_type_ids"}
        columns["labels"] = labels["input_ids"]
        columns["length"] = [len(ids) for ids in enc["input_ids"]]
        return Dataset.from_dict(columns)

    def data_collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorForSeq2Seq

        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)

    def trainer_metrics(self, info: LabelInfo) -> Any:
        return None  # per-epoch validation reports the loss; generated-text metrics come after training

    def references(self, examples: Examples) -> list[str]:
        return [row[self.target_key] for row in examples.rows]

    def predictions_for_metrics(self, results: list[Any]) -> list[str]:
        return [r["generated_text"] for r in results]

    def model_inputs(self, examples: Examples) -> list[Any]:
        return [row[self.source_key] for row in examples.rows]

    def predict(self, model: Any, tokenizer: Any, inputs: list[Any], *, batch_size: int = 64,
                max_seq_length: int = 512, top_k: int = 1, **options: Any) -> list[dict[str, Any]]:
        """Generate a text per input string (beam search with ``num_beams``, up to ``max_new_tokens``).

        Returns:
            Per input ``{"generated_text", "truncated"}`` (``truncated`` when the input had more
            than ``max_seq_length`` tokens).
        """
        import torch

        from fmhub.evaluation.batching import length_sorted_batches

        prefix = options.get("source_prefix") or getattr(model.config, "fmhub_source_prefix", "") or ""
        generation = {k: options.get(k, getattr(model.config, f"fmhub_{k}", v)) for k, v in DEFAULT_GENERATION.items()}
        if options.get("length_penalty") is not None:
            generation["length_penalty"] = options["length_penalty"]
        texts = [prefix + str(x) for x in inputs]
        out: list[Any] = [None] * len(texts)
        device = next(model.parameters()).device
        model.eval()
        with torch.inference_mode():
            for idx in length_sorted_batches([len(t) for t in texts], batch_size):
                full = tokenizer([texts[i] for i in idx], truncation=False)["input_ids"]
                enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_seq_length, padding=True,
                                return_tensors="pt").to(device)
                enc.pop("token_type_ids", None)
                ids = model.generate(**enc, **generation)
                decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
                for row, i in enumerate(idx):
                    out[i] = {"generated_text": decoded[row].strip(), "truncated": len(full[row]) > max_seq_length}
        return out


def pairs_with_reference(predictions: list[str], references: list[str]) -> tuple[list[str], list[str]]:
    """Keep the (prediction, reference) pairs whose reference is not empty."""
    kept = [(p, r) for p, r in zip(predictions, references) if r and r.strip()]
    return [p for p, _ in kept], [r for _, r in kept]
