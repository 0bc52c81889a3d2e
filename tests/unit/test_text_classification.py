"""The text-classification task: row checks, label space, metrics against scikit-learn, prediction."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, precision_score, recall_score

from fmhub.tasks import get_task
from fmhub.tasks.base import Examples
from fmhub.tasks.text_classification import label_name


def ex(rows, split="train", file="train.csv"):
    return Examples(split, file, rows, list(range(2, len(rows) + 2)))


def test_label_names_keep_their_text():
    assert label_name(1) == "1"
    assert label_name(1.0) == "1.0"
    assert label_name(" pos ") == "pos"
    assert label_name(True) == "true"


def test_empty_text_and_missing_label_name_line_and_column():
    task = get_task("text-classification")
    rows = [{"sentence1": "fine", "label": "1"}, {"sentence1": "  ", "label": "0"}, {"sentence1": "ok", "label": None}]
    good, problems = task.check_rows(ex(rows))
    assert good == [0]
    assert [(p.line, p.column) for p in problems] == [(3, "sentence1"), (4, "label")]
    assert all(p.file == "train.csv" for p in problems)
    assert "empty text" in problems[0].message and "missing label" in problems[1].message


def test_numbers_are_label_names_sorted_numerically():
    task = get_task("text-classification")
    train = ex([{"sentence1": "a", "label": v} for v in (10, 2, 1)])
    task.check_rows(train)
    info = task.label_info(train)
    assert info.labels == ["1", "2", "10"]
    assert info.id2label == {0: "1", 1: "2", 2: "10"}


def test_unseen_label_in_test_is_an_error_naming_label_and_line():
    task = get_task("text-classification")
    train = ex([{"sentence1": "a", "label": "pos"}, {"sentence1": "b", "label": "neg"}])
    test = ex([{"sentence1": "c", "label": "pos"}, {"sentence1": "d", "label": "neutral"}], "test", "test.csv")
    info = task.label_info(train)
    problems = task.check_splits({"train": train, "test": test}, info)
    errors = [p for p in problems if p.severity == "error"]
    assert len(errors) == 1
    assert errors[0].file == "test.csv" and errors[0].line == 3 and "neutral" in errors[0].message


def test_fewer_than_two_classes_is_an_error():
    task = get_task("text-classification")
    train = ex([{"sentence1": "a", "label": "pos"}, {"sentence1": "b", "label": "pos"}])
    problems = task.check_splits({"train": train}, task.label_info(train))
    assert any("fewer than two classes" in p.message and p.severity == "error" for p in problems)


def test_one_and_one_point_zero_without_a_label_type_stop_the_job_naming_each_line():
    task = get_task("text-classification")
    train = ex([{"sentence1": "a", "label": "1"}, {"sentence1": "b", "label": "1.0"}, {"sentence1": "c", "label": "0"},
                {"sentence1": "d", "label": "01"}, {"sentence1": "e", "label": "1"}])
    problems = task.check_label_values({"train": train}, {"label_type": None})
    assert [(p.severity, p.file, p.line, p.column, p.value) for p in problems] == [
        ("error", "train.csv", 2, "label", "'1'"), ("error", "train.csv", 3, "label", "'1.0'"),
        ("error", "train.csv", 5, "label", "'01'")]
    assert "on lines 2, 6" in problems[0].message and "--label-type number" in problems[0].hint
    assert task.check_label_values({"train": train}, {"label_type": "string"}) == []
    assert task.check_label_values({"train": train}, {"label_type": "number"}) == []


def test_metrics_match_scikit_learn():
    task = get_task("text-classification")
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]
    ref = list(rng.choice(labels, 200))
    pred = [r if rng.random() < 0.7 else str(rng.choice(labels)) for r in ref]
    train = ex([{"sentence1": "x", "label": lab} for lab in labels])
    m = task.compute_metrics(pred, ref, task.label_info(train))
    assert m["accuracy"] == pytest.approx(accuracy_score(ref, pred))
    assert m["f1_macro"] == pytest.approx(f1_score(ref, pred, average="macro"))
    assert m["precision_macro"] == pytest.approx(precision_score(ref, pred, average="macro"))
    assert m["recall_macro"] == pytest.approx(recall_score(ref, pred, average="macro"))
    assert m["mcc"] == pytest.approx(matthews_corrcoef(ref, pred))
    assert sum(map(sum, m["confusion_matrix"]["matrix"])) == 200
    assert m["per_class"]["a"]["support"] == ref.count("a")


def test_metrics_by_hand():
    task = get_task("text-classification")
    train = ex([{"sentence1": "x", "label": "0"}, {"sentence1": "y", "label": "1"}])
    # ref 0 0 1 1, pred 0 1 1 1: accuracy 3/4; class 0: P 1, R 1/2, F1 2/3; class 1: P 2/3, R 1, F1 4/5
    m = task.compute_metrics(["0", "1", "1", "1"], ["0", "0", "1", "1"], task.label_info(train))
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["f1_macro"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["confusion_matrix"]["matrix"] == [[1, 1], [0, 2]]


def test_prediction_speaks_label_names(tiny_bert):
    from transformers import AutoTokenizer

    task = get_task("text-classification")
    train = ex([{"sentence1": "good", "label": "pos"}, {"sentence1": "bad", "label": "neg"}])
    info = task.label_info(train)
    model = task.load_model(str(tiny_bert), info)
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    out = task.predict(model, tok, ["good movie", ["bad", "plot"], "the best story of the film was fun"],
                       batch_size=2, top_k=2)
    assert len(out) == 3
    for result in out:
        assert {r["label"] for r in result} == {"neg", "pos"}
        assert result[0]["score"] >= result[1]["score"]
        assert sum(r["score"] for r in result) == pytest.approx(1.0, abs=1e-5)


def test_encode_has_lengths_and_label_ids(tiny_bert):
    from transformers import AutoTokenizer

    task = get_task("text-classification")
    train = ex([{"sentence1": "good movie", "label": "pos"}, {"sentence1": "bad", "label": "neg"}])
    info = task.label_info(train)
    ds = task.encode(train, AutoTokenizer.from_pretrained(str(tiny_bert)), info, max_seq_length=16)
    assert ds["length"] == [4, 3]  # [CLS] good movie [SEP] / [CLS] bad [SEP]: no padding
    assert ds["labels"] == [info.label2id["pos"], info.label2id["neg"]]


def test_sentence_pairs_are_encoded_as_pairs(tiny_bert):
    from transformers import AutoTokenizer

    task = get_task("text-classification")
    train = ex([{"sentence1": "good movie", "sentence2": "great film", "label": "same"},
                {"sentence1": "bad", "sentence2": "fun", "label": "different"}])
    task.check_rows(train)
    info = task.label_info(train)
    assert info.extra["is_pair"] is True
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    ds = task.encode(train, tok, info, max_seq_length=16)
    # [CLS] good movie [SEP] great film [SEP] -> 7 tokens, second segment has token_type_ids 1
    assert ds["length"][0] == 7
    assert ds["token_type_ids"][0] == [0, 0, 0, 0, 1, 1, 1]
    assert task.model_inputs(train)[0] == ["good movie", "great film"]


def test_a_label_column_of_text_is_an_error_naming_the_mapping(tmp_path):
    """Swapped columns (label -> the sentences) give one class per row: refused before any split."""
    from fmhub.services.data_prep import prepare_data
    from fmhub.services.specs import DataSpec
    from fmhub.tasks import get_task

    rows = ["review,stars"] + [f"film number {i} was {'good' if i % 2 else 'bad'},{'pos' if i % 2 else 'neg'}"
                               for i in range(40)]
    path = tmp_path / "swapped.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = DataSpec(train=str(path), validation="none", test="none",
                    column_mapping={"sentence1": "stars", "label": "review"})
    report = prepare_data(spec, get_task("text-classification"), None, 128, 42).report
    assert not report.ok
    problem = next(p for p in report.errors if "classes in" in p.message)
    assert "40 classes in 40 training rows" in problem.message
    assert problem.column == "review"  # named by the user's column
    fine = DataSpec(train=str(path), validation="none", test="none",
                    column_mapping={"sentence1": "review", "label": "stars"})
    assert prepare_data(fine, get_task("text-classification"), None, 128, 42).report.ok
