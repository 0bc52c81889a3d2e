"""Token classification: list cells, length mismatches, sub-word alignment, seqeval metrics, tags."""

from __future__ import annotations

import pytest
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from fmhub.tasks import get_task
from fmhub.tasks.base import Examples
from fmhub.tasks.iob import entity_spans, parse_list_cell, tag_sort_key
from fmhub.tasks.token_classification import align_labels, split_words


def ex(rows, split="train", file="train.jsonl"):
    return Examples(split, file, rows, list(range(1, len(rows) + 1)))


def test_json_array_cells_are_parsed_and_bad_ones_name_line_and_column():
    task = get_task("token-classification")
    rows = [{"tokens": '["EU", "rejects"]', "tags": '["B-ORG", "O"]'},
            {"tokens": '["a", "b"', "tags": '["O", "O"]'},
            {"tokens": ["x", "y", "z"], "tags": ["O", "O"]}]
    good, problems = task.check_rows(ex(rows, file="ner.csv"))
    assert good == [0] and rows[0]["tokens"] == ["EU", "rejects"]
    assert [(p.line, p.column) for p in problems] == [(2, "tokens"), (3, "tags")]
    assert "not a valid JSON array" in problems[0].message
    assert "3 tokens but 2 tags" in problems[1].message


def test_integer_tags_need_names():
    task = get_task("token-classification")
    _, problems = task.check_rows(ex([{"tokens": ["a"], "tags": [3]}]))
    assert problems and "names" in problems[0].message


def test_tag_order_and_unseen_test_tag():
    task = get_task("token-classification")
    train = ex([{"tokens": ["a", "b", "c"], "tags": ["I-PER", "B-PER", "O"]},
                {"tokens": ["d"], "tags": ["B-LOC"]}])
    info = task.label_info(train)
    assert info.labels == ["O", "B-LOC", "B-PER", "I-PER"]
    test = ex([{"tokens": ["e"], "tags": ["B-MISC"]}], "test", "test.jsonl")
    problems = task.check_splits({"train": train, "test": test}, info)
    assert [(p.file, p.line, p.value) for p in problems] == [("test.jsonl", 1, "'B-MISC'")]
    assert sorted(["I-ORG", "O", "B-ORG"], key=tag_sort_key) == ["O", "B-ORG", "I-ORG"]


def test_first_subword_carries_the_tag():
    # [CLS] Wash ##ington is [SEP]: word 0 has two sub-words
    assert align_labels([None, 0, 0, 1, None], [5, 0]) == [-100, 5, -100, 0, -100]


def test_entity_spans_and_word_offsets():
    assert entity_spans(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "B-LOC"]) == [
        ("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5), ("LOC", 5, 6)]
    assert split_words("Angela Merkel visited Paris.") == [
        ("Angela", 0, 6), ("Merkel", 7, 13), ("visited", 14, 21), ("Paris", 22, 27), (".", 27, 28)]
    assert parse_list_cell(None)[1] == "missing value"


def test_metrics_equal_seqeval_strict_on_broken_sequences():
    task = get_task("token-classification")
    refs = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "O"], ["B-MISC", "O"]]
    # I-PER without B (broken), LOC right, ORG cut short, MISC missed
    preds = [["I-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "O", "O"], ["O", "O"]]
    m = task.compute_metrics(preds, refs, None)
    kw = {"mode": "strict", "scheme": IOB2}
    assert m["f1"] == pytest.approx(f1_score(refs, preds, **kw))
    assert m["precision"] == pytest.approx(precision_score(refs, preds, **kw))
    assert m["recall"] == pytest.approx(recall_score(refs, preds, **kw))
    # by hand: gold entities 4 (PER, LOC, ORG, MISC); strict predicted entities: LOC, ORG(1 word) -> 2;
    # correct: LOC only -> P 1/2, R 1/4
    assert (m["precision"], m["recall"]) == (pytest.approx(0.5), pytest.approx(0.25))
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["per_type"]["LOC"]["f1"] == pytest.approx(1.0)


def test_encode_and_predict_with_a_tiny_model(tiny_bert):
    from transformers import AutoTokenizer

    task = get_task("token-classification")
    train = ex([{"tokens": ["good", "movie"], "tags": ["B-X", "O"]}, {"tokens": ["bad"], "tags": ["O"]}])
    task.check_rows(train)
    info = task.label_info(train)
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    ds = task.encode(train, tok, info, max_seq_length=16)
    assert ds["labels"][0] == [-100, info.label2id["B-X"], info.label2id["O"], -100]
    model = task.load_model(str(tiny_bert), info)
    out = task.predict(model, tok, ["good movie, bad plot.", ["the", "film"]], batch_size=1)
    assert out[0]["tokens"] == ["good", "movie", ",", "bad", "plot", "."]
    assert len(out[0]["tags"]) == 6 and set(out[0]["tags"]) <= {"O", "B-X"}
    for ent in out[0]["entities"]:
        assert "good movie, bad plot."[ent["start"]:ent["end"]] == ent["text"]
    assert len(out[1]["tags"]) == 2 and out[1]["truncated"] is False
