"""Summarization: ``document`` -> ``summary`` with a sequence-to-sequence model.

Metrics: rouge1, rouge2, rougeL and rougeLsum F-measures x 100 (rouge-score with the Porter
stemmer; rougeLsum on newline-separated sentences), averaged over rows that have a summary.
"""

from __future__ import annotations

import re
from typing import Any

from fmhub.data.schema import TaskSchema
from fmhub.tasks.base import LabelInfo
from fmhub.tasks.generation import Seq2SeqTask, pairs_with_reference

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences_per_line(text: str) -> str:
    """One sentence per line (split after ``.``, ``!`` or ``?``), as rougeLsum expects."""
    return "\n".join(s for s in _SENTENCE_END.split(text.strip()) if s)


class Summarization(Seq2SeqTask):
    """Abstractive summarization."""

    name = "summarization"
    score_example = ["#Person1#: Shall we meet at six? #Person2#: Six is fine, see you at the station."]
    source_key, target_key = "document", "summary"
    verb = "summarize"
    schema = TaskSchema(
        required=("document", "summary"),
        aliases={"document": ("document", "dialogue", "text", "article", "source", "input"),
                 "summary": ("summary", "highlights", "abstract", "target", "tldr")},
    )
    headline_metric = "rougeL"
    sample_train_file = ("train.csv", "columns document,summary")
    # Seq2seq fine-tuning defaults of transformers' run_summarization.py (lr 5e-5, 3 epochs);
    # 512 source tokens fit most dialogues and news articles of the shared data.
    default_hyperparameters = {
        "learning_rate": 5e-5,
        "num_train_epochs": 3.0,
        "per_device_train_batch_size": 16,
        "max_seq_length": 512,
        "warmup_steps": 0.06,
        "weight_decay": 0.01,
    }

    answer_tag = "Summary:"

    def instruction(self, options: dict[str, Any]) -> str:
        """``Summarize the following text.`` unless ``options["instruction"]`` says otherwise."""
        return options.get("instruction") or "Summarize the following text."

    def compute_metrics(self, predictions: list[str], references: list[str | list[str]],
                        info: LabelInfo) -> dict[str, Any]:
        """Mean ROUGE F-measures x 100 (rouge-score, stemming) over rows with a reference; with several
        references a row scores its best one per ROUGE type (rouge-score's ``score_multi``)."""
        from rouge_score import rouge_scorer

        preds, refs = pairs_with_reference(predictions, references)
        scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
        totals = dict.fromkeys(ROUGE_TYPES, 0.0)
        for p, r in zip(preds, refs):
            scores = scorer.score_multi([sentences_per_line(x) for x in r], sentences_per_line(p))
            for key in ROUGE_TYPES:
                totals[key] += scores[key].fmeasure
        n = len(refs)
        return {**{k: 100.0 * v / n if n else 0.0 for k, v in totals.items()}, "n": n}
