"""Extractive QA: answer_start checks, windows that keep every answer, SQuAD metrics, prediction."""

from __future__ import annotations

import pytest

from fmhub.tasks import get_task
from fmhub.tasks.base import Examples
from fmhub.tasks.squad_metrics import f1, normalize_answer, squad_scores

CONTEXT = "The film was made in Paris. The director was born in Lyon in 1970."


def ex(rows, split="train", file="qa.jsonl"):
    return Examples(split, file, rows, list(range(1, len(rows) + 1)))


def test_answer_start_checked_and_fixed_only_when_unambiguous():
    task = get_task("question-answering")
    rows = [
        {"question": "Where?", "context": CONTEXT, "answers": {"text": ["Paris"], "answer_start": [21]}},
        {"question": "Where born?", "context": CONTEXT, "answers": {"text": ["Lyon"], "answer_start": [3]}},
        {"question": "Which?", "context": CONTEXT, "answers": {"text": ["The"], "answer_start": [5]}},
        {"question": "Who?", "context": CONTEXT, "answers": {"text": ["Nobody"], "answer_start": [0]}},
        {"question": "Unanswerable?", "context": CONTEXT, "answers": {"text": [], "answer_start": []}},
    ]
    good, problems = task.check_rows(ex(rows))
    assert good == [0, 1, 4]
    assert rows[1]["answers"]["answer_start"] == [CONTEXT.index("Lyon")]
    warnings = [p for p in problems if p.severity == "warning"]
    errors = [p for p in problems if p.severity == "error"]
    assert [p.line for p in warnings] == [2]
    assert [(p.line, p.column) for p in errors] == [(3, "answers.answer_start"), (4, "answers.answer_start")]
    assert "several times" in errors[0].message and "does not occur" in errors[1].message
    info = task.label_info(ex([rows[i] for i in good]))
    assert info.extra["version_2"] is True


def test_squad_normalisation_and_scores_by_hand():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    # pred "eiffel tower paris" vs gold "the eiffel tower": 2 common, P 2/3, R 1 -> F1 0.8
    assert f1("eiffel tower paris", "the eiffel tower") == pytest.approx(0.8)
    s = squad_scores(["Paris", "in Lyon", ""], [["paris", "Paris, France"], ["Lyon"], []])
    assert s["exact_match"] == pytest.approx(200 / 3)
    assert s["f1"] == pytest.approx((1 + 2 / 3 + 1) / 3 * 100)
    assert s["HasAns_total"] == 2 and s["NoAns_total"] == 1 and s["NoAns_exact"] == 100.0


def test_windows_keep_answers_beyond_max_seq_length(tiny_bert):
    from transformers import AutoTokenizer

    task = get_task("question-answering")
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    context = " ".join(["the movie was fun"] * 20) + " great acting"
    start = context.index("great acting")
    train = ex([{"question": "what was great", "context": context,
                 "answers": {"text": ["great acting"], "answer_start": [start]}}])
    info = task.label_info(train)
    ds = task.encode(train, tok, info, max_seq_length=32, doc_stride=8)
    assert len(ds) > 3 and max(ds["length"]) <= 32
    hits = [i for i in range(len(ds)) if ds["start_positions"][i] != 0]
    assert hits  # the window that holds the answer labels its tokens
    i = hits[-1]
    span = ds["input_ids"][i][ds["start_positions"][i]:ds["end_positions"][i] + 1]
    assert tok.decode(span) == "great acting"


def test_predict_returns_a_span_of_the_context(tiny_bert):
    from transformers import AutoTokenizer

    task = get_task("question-answering")
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    model = task.load_model(str(tiny_bert), None)
    out = task.predict(model, tok, [{"question": "what was fun", "context": "the movie was fun and the plot was good"}],
                       max_seq_length=12, doc_stride=2)
    r = out[0]
    assert r["windows"] >= 2
    assert r["answer"] == "the movie was fun and the plot was good"[r["start"]:r["end"]]
    assert 0.0 <= r["score"] <= 1.0


@pytest.mark.parametrize("question_words", [14, 15, 16, 30, 200])
def test_a_question_as_long_as_the_window_neither_panics_nor_multiplies_windows(tiny_bert, question_words):
    """Questions of nearly ``max_seq_length`` tokens once made the Rust tokenizer panic (a
    BaseException that ended the instance) or cut a short context into one window per token."""
    from transformers import AutoTokenizer

    task = get_task("question-answering")
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    model = task.load_model(str(tiny_bert), None)
    question = " ".join(["movie"] * question_words)
    context = " ".join(["the plot was good"] * 8)  # 32 words
    out = task.predict(model, tok, [{"question": question, "context": context}], max_seq_length=32, doc_stride=128)
    r = out[0]
    assert r["windows"] <= 32 // (32 // 4) + 1  # each window moves on by a quarter of the length at least
    assert r["start"] is None or r["answer"] == context[r["start"]:r["end"]]
