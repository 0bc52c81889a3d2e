"""SQuAD evaluation definitions: answer normalisation, exact match and token F1 (v1.1), and the
v2.0 split into answerable (``HasAns_``) and unanswerable (``NoAns_``) questions.

Follows the official ``evaluate-v1.1.py`` / ``evaluate-v2.0.py`` scripts: lower-case, strip
punctuation, drop the articles a/an/the, collapse whitespace; scores are percentages (0-100).
"""

from __future__ import annotations

import re
import string
from collections import Counter

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truth: str) -> float:
    """1.0 when the normalised strings are equal."""
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1(prediction: str, truth: str) -> float:
    """Token-overlap F1 of normalised strings (an empty vs empty pair scores 1.0, as in v2.0)."""
    pred, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if not pred or not gold:
        return float(pred == gold)
    common = Counter(pred) & Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """``exact_match`` and ``f1`` (0-100), each the best over the gold answers of a question.

    Args:
        predictions: One predicted answer text per question ("" for no answer).
        references: Gold answer texts per question; an empty list means unanswerable (gold "").

    Returns:
        ``{"exact_match", "f1"}``; when some questions are unanswerable also ``HasAns_exact``,
        ``HasAns_f1``, ``HasAns_total``, ``NoAns_exact``, ``NoAns_f1``, ``NoAns_total``.
    """
    ems, f1s, has = [], [], []
    for pred, golds in zip(predictions, references):
        golds = [g for g in golds if normalize_answer(g)] or [""]
        ems.append(max(exact_match(pred, g) for g in golds))
        f1s.append(max(f1(pred, g) for g in golds))
        has.append(golds != [""])

    def pct(values: list[float]) -> float:
        return 100.0 * sum(values) / len(values) if values else 0.0

    out = {"exact_match": pct(ems), "f1": pct(f1s)}
    if not all(has):
        for flag, prefix in ((True, "HasAns"), (False, "NoAns")):
            idx = [i for i, h in enumerate(has) if h == flag]
            out[f"{prefix}_exact"] = pct([ems[i] for i in idx])
            out[f"{prefix}_f1"] = pct([f1s[i] for i in idx])
            out[f"{prefix}_total"] = float(len(idx))
    return out
