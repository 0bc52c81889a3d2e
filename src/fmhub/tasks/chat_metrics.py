"""Metrics of generated chat replies against reference replies.

ROUGE-L and ROUGE-Lsum F-measures (rouge-score, Porter stemmer, Lsum over newline-separated
sentences; a row scores its best reference), corpus BLEU and chrF (sacreBLEU, all references of a
row), and SQuAD exact_match and f1 (the SQuAD normalisation; best reference), all 0-100, and ``n``
(rows with a reference). Rows without a reference are left out.
"""

from __future__ import annotations

from typing import Any

from fmhub.tasks.generation import pairs_with_reference, reference_streams
from fmhub.tasks.squad_metrics import squad_scores
from fmhub.tasks.summarization import sentences_per_line

METRIC_NAMES = ("rougeL", "rougeLsum", "bleu", "chrf", "exact_match", "f1")


def chat_metrics(predictions: list[str], references: list[list[str] | str]) -> dict[str, Any]:
    """The chat-completion metrics (module docstring).

    Args:
        predictions: ``[n]`` generated replies.
        references: ``[n]`` reference texts per row (a list, or one text; empty: no reference).

    Returns:
        ``{"rougeL", "rougeLsum", "bleu", "chrf", "exact_match", "f1", "n", "bleu_signature",
        "chrf_signature"}``; zeros with ``n`` 0 when no row has a reference.
    """
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU, CHRF

    preds, refs = pairs_with_reference(predictions, references)
    n = len(refs)
    if not n:
        return {**dict.fromkeys(METRIC_NAMES, 0.0), "n": 0}
    scorer = rouge_scorer.RougeScorer(["rougeL", "rougeLsum"], use_stemmer=True)
    totals = {"rougeL": 0.0, "rougeLsum": 0.0}
    for p, r in zip(preds, refs):
        scores = scorer.score_multi([sentences_per_line(x) for x in r], sentences_per_line(p))
        for key in totals:
            totals[key] += scores[key].fmeasure
    streams = reference_streams(refs)
    bleu, chrf = BLEU(), CHRF()
    b, c = bleu.corpus_score(preds, streams), chrf.corpus_score(preds, streams)
    squad = squad_scores(preds, refs)
    return {"rougeL": 100.0 * totals["rougeL"] / n, "rougeLsum": 100.0 * totals["rougeLsum"] / n,
            "bleu": float(b.score), "chrf": float(c.score),
            "exact_match": squad["exact_match"], "f1": squad["f1"], "n": n,
            "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}
