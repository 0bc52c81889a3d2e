"""Label and tag values that look alike: Unicode normalisation, numbers written two ways, non-finite
numbers, rows shared by two splits, averages over the classes of the evaluated split, and NER words
that the tokenizer turns into no sub-word."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from fmhub.data.labels import normalise_label, row_key
from fmhub.data.splits import SplitSizes, split_indices
from fmhub.services.data_prep import prepare_data
from fmhub.services.specs import DataSpec
from fmhub.tasks import get_task
from fmhub.tasks.base import Examples, LabelInfo
from fmhub.tasks.token_classification import IGNORE, fill_empty_words

NFD_E = "e\u0301"  # e + combining acute accent: looks like "é" (NFC)


def write(path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_normalise_label_composes_and_strips_zero_width_characters():
    assert normalise_label(f"caf{NFD_E}") == "caf\u00e9"
    for zw in ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"):
        assert normalise_label(f"po{zw}s ") == "pos"
    assert row_key({"sentence1": "good\u200b", "label": "pos"}) == row_key({"label": "pos", "sentence1": "good"})


# ============================================================================ classification labels


def test_zero_width_and_decomposed_labels_are_one_class_with_a_warning_naming_the_lines(tmp_path):
    path = write(tmp_path / "train.csv", "text,label\n"
                 "a,caf\u00e9\nb,pos\nc,pos\u200b\nd,caf" + NFD_E + "\ne,\u2060pos\nf,caf" + NFD_E + "\n")
    prep = prepare_data(DataSpec(train=path, validation="none", test="none"), get_task("text-classification"),
                        None, 128, seed=0)
    assert prep.report.ok
    assert prep.info.labels == ["caf\u00e9", "pos"]
    assert prep.report.split("train").distribution == {"caf\u00e9": 3, "pos": 3}
    found = {(w.line, w.column, w.value, w.file) for w in prep.report.warnings}
    assert found == {(4, "label", repr("pos\u200b"), path), (5, "label", repr("caf" + NFD_E), path),
                     (6, "label", repr("\u2060pos"), path)}
    by_line = {w.line: w.message for w in prep.report.warnings}
    assert "read as 'café'" in by_line[5] and "composed to NFC form" in by_line[5] and "lines 5, 7" in by_line[5]
    assert "label 'cafe\\u0301' read as" in by_line[5]  # the combining accent is spelled out, not invisible
    assert "zero-width characters removed" in by_line[4] and "on line 4" in by_line[4]


@pytest.mark.parametrize("label_type, labels, errors", [
    (None, None, [(2, "'1'"), (3, "'1.0'"), (4, "'01'")]),
    ("number", ["0", "1"], []),
    ("string", ["0", "01", "1", "1.0"], []),
])
def test_labels_equal_as_numbers_need_a_label_type(tmp_path, label_type, labels, errors):
    path = write(tmp_path / "train.csv", "text,stars\na,1\nb,1.0\nc,01\nd,0\ne,1\n")
    prep = prepare_data(DataSpec(train=path, validation="none", test="none", label_type=label_type),
                        get_task("text-classification"), None, 128, seed=0)
    assert [(e.line, e.value) for e in prep.report.errors] == errors
    assert all(e.file == path and e.column == "stars" for e in prep.report.errors)
    if errors:
        assert "'1' on lines 2, 6" in prep.report.errors[0].message
    else:
        assert prep.info.labels == labels and prep.report.warnings == []


def test_label_type_number_names_non_numbers_and_keeps_fractions(tmp_path):
    path = write(tmp_path / "train.csv", "text,label\na,2.50\nb,2.5\nc,pos\nd,3\n")
    task = get_task("text-classification")
    prep = prepare_data(DataSpec(train=path, validation="none", test="none", label_type="number"), task, None, 128,
                        seed=0)
    assert [(e.line, e.value, e.message) for e in prep.report.errors] == [
        (4, "'pos'", "label 'pos' is not a finite number")]
    kept = prepare_data(DataSpec(train=path, validation="none", test="none", label_type="number",
                                 on_invalid_row="drop"), task, None, 128, seed=0)
    assert kept.info.labels == ["2.5", "3"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_non_finite_labels_are_errors_naming_file_line_column_and_value(tmp_path, fmt):
    if fmt == "csv":
        path = write(tmp_path / "train.csv", "text,label\na,NaN\nb,Infinity\nc,-inf\nd,inf\nu,pos\nv,neg\n")
        expected = [(2, "'NaN'"), (3, "'Infinity'"), (4, "'-inf'"), (5, "'inf'")]
    else:  # JSON's Infinity / -Infinity are numbers to Python's json module
        path = write(tmp_path / "train.jsonl", '{"text": "a", "label": Infinity}\n{"text": "b", "label": -Infinity}\n'
                     '{"text": "c", "label": "NaN"}\n{"text": "d", "label": NaN}\n{"text": "e", "label": "-inf"}\n'
                     '{"text": "f", "label": "pos"}\n{"text": "g", "label": "neg"}\n')
        expected = [(1, "inf"), (2, "-inf"), (3, "'NaN'"), (4, "nan"), (5, "'-inf'")]
    prep = prepare_data(DataSpec(train=path, validation="none", test="none"), get_task("text-classification"),
                        None, 128, seed=0)
    errors = prep.report.errors
    assert [(e.line, e.value) for e in errors] == expected
    assert all(e.file == path and e.column == "label" and "is not a finite number" in e.message for e in errors)
    assert "a class is a name or a finite number" in errors[0].hint
    dropped = prepare_data(DataSpec(train=path, validation="none", test="none", on_invalid_row="drop"),
                           get_task("text-classification"), None, 128, seed=0)
    assert dropped.info.labels == ["neg", "pos"]


def test_label_type_number_still_says_which_labels_lost_zero_width_characters(tmp_path):
    path = write(tmp_path / "train.csv", "text,label\na,1\nb,1\u200b\nc,0\n")
    prep = prepare_data(DataSpec(train=path, validation="none", test="none", label_type="number"),
                        get_task("text-classification"), None, 128, seed=0)
    assert prep.info.labels == ["0", "1"]
    assert [(w.line, w.value) for w in prep.report.warnings] == [(3, repr("1\u200b"))]


def test_label_type_number_refuses_infinity(tmp_path):
    path = write(tmp_path / "train.csv", "text,label\na,1\nb,Infinity\nc,0\n")
    prep = prepare_data(DataSpec(train=path, validation="none", test="none", label_type="number"),
                        get_task("text-classification"), None, 128, seed=0)
    assert [(e.line, e.value) for e in prep.report.errors] == [(3, "'Infinity'")]


# ============================================================================ token classification tags


def test_zero_width_and_decomposed_tags_are_one_tag_with_a_warning(tmp_path):
    rows = [{"tokens": ["Ada", "Lovelace"], "ner": ["B-PER", "I-PER"]},
            {"tokens": ["Ada", "Lovelace"], "ner": ["B-PER\u200b", "I-PER"]},
            {"tokens": ["Zo", "rich"], "ner": ["B-LO" + "C", f"I-CAF{NFD_E}"]},
            {"tokens": ["Oslo"], "ner": [f"I-CAF{NFD_E}"]}]
    path = write(tmp_path / "train.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    prep = prepare_data(DataSpec(train=path, validation="none", test="none"), get_task("token-classification"),
                        None, 128, seed=0)
    assert "B-PER\u200b" not in prep.info.labels and "I-CAF\u00c9" not in prep.info.labels
    assert "I-CAF\u00e9" in prep.info.labels and "B-PER" in prep.info.labels
    changed = {(w.line, w.column, w.value) for w in prep.report.warnings if "read as" in w.message}
    assert changed == {(2, "ner", repr("B-PER\u200b")), (3, "ner", repr(f"I-CAF{NFD_E}"))}
    assert any("lines 3, 4" in w.message for w in prep.report.warnings)


# ============================================================================ leakage


def test_rows_shared_by_two_splits_are_counted_and_listed(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\ngood film,pos\nbad film,neg\nfun plot,pos\ndull plot,neg\n")
    test = write(tmp_path / "test.csv", "text,label\ngood film,pos\nnew one,neg\ngood film,pos\nfun plot\u200b,pos\n")
    val = write(tmp_path / "val.csv", "text,label\nbad film,neg\nother,pos\n")
    prep = prepare_data(DataSpec(train=train, validation=val, test=test), get_task("text-classification"), None, 128,
                        seed=0)
    assert prep.report.ok
    leaks = {tuple(item["splits"]): item for item in prep.report.leakage}
    assert set(leaks) == {("train", "test"), ("train", "validation")}
    assert leaks[("train", "test")]["rows"] == 3 and leaks[("train", "test")]["distinct"] == 2
    first = leaks[("train", "test")]["examples"][0]
    assert first["train"] == {"file": train, "lines": [2]} and first["test"] == {"file": test, "lines": [2, 4]}
    assert leaks[("train", "validation")]["rows"] == 1
    warning = next(w for w in prep.report.warnings if w.file == test and "exact duplicates" in w.message)
    assert warning.line == 2 and "3 test row(s) also occur in the train data" in warning.message
    assert "lines 2, 4, 5" in warning.message
    assert prep.report.to_dict()["leakage"] == prep.report.leakage


def test_split_indices_keeps_each_group_in_one_split():
    groups = [i // 4 for i in range(40)]  # ten groups of four copies
    idx = split_indices(40, SplitSizes(0.2, 0.2), seed=1, groups=groups,
                        stratify=["a" if g % 2 else "b" for g in groups])
    where = {}
    for name, rows in idx.items():
        for i in rows:
            where.setdefault(groups[i], set()).add(name)
    assert all(len(s) == 1 for s in where.values())
    assert sorted(i for rows in idx.values() for i in rows) == list(range(40))
    assert len(idx["validation"]) == len(idx["test"]) == 8


def test_an_automatic_split_keeps_duplicate_rows_together(tmp_path):
    lines = [f"text {i // 3},{'pos' if (i // 3) % 2 else 'neg'}" for i in range(60)]  # each row three times
    path = write(tmp_path / "train.csv", "text,label\n" + "\n".join(lines) + "\n")
    prep = prepare_data(DataSpec(train=path), get_task("text-classification"), None, 128, seed=3)
    assert prep.report.ok and prep.report.leakage == []
    texts = {name: {r["sentence1"] for r in ex.rows} for name, ex in prep.splits.items()}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["validation"]
    assert not texts["validation"] & texts["test"]
    assert len(prep.splits["test"]) == 6 and len(prep.splits["validation"]) == 6
    assert any("repeats 40 row(s) exactly" in n for n in prep.report.notes)


def test_labels_that_differ_only_in_zero_width_characters_are_duplicates_across_splits(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\ngood film,pos\nbad,neg\n")
    test = write(tmp_path / "test.csv", "text,label\ngood film,pos\u200b\n")
    prep = prepare_data(DataSpec(train=train, validation="none", test=test), get_task("text-classification"), None,
                        128, seed=0)
    assert prep.report.leakage[0]["rows"] == 1


# ============================================================================ averages


def test_macro_and_weighted_averages_skip_classes_absent_from_the_split():
    task = get_task("text-classification")
    info = LabelInfo(labels=["a", "b", "c"])
    ref = ["a", "b", "a", "b"]
    perfect = task.compute_metrics(ref, ref, info)
    assert perfect["f1_macro"] == perfect["precision_macro"] == perfect["recall_macro"] == 1.0
    assert perfect["f1_weighted"] == 1.0
    assert perfect["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert perfect["confusion_matrix"]["labels"] == ["a", "b", "c"]
    pred = ["a", "c", "b", "b"]  # "c" predicted but never in the references: averaged in, as scikit-learn does
    m = task.compute_metrics(pred, ref, info)
    assert m["f1_weighted"] == m["weighted_avg"]["f1"]
    for average, got in (("macro", {k: m[f"{k}_macro"] for k in ("precision", "recall", "f1")}),
                         ("weighted", m["weighted_avg"])):
        assert got["f1"] == pytest.approx(f1_score(ref, pred, average=average, zero_division=0))
        assert got["precision"] == pytest.approx(precision_score(ref, pred, average=average, zero_division=0))
        assert got["recall"] == pytest.approx(recall_score(ref, pred, average=average, zero_division=0))


# ============================================================================ NER words with no sub-word


class FakeTagger:
    """A stand-in for a token-classification model: the tag of each position follows its token id."""

    def __init__(self, tok, tags_by_token: dict[str, str], labels: list[str]):
        import torch

        self.torch = torch
        self.config = SimpleNamespace(id2label=dict(enumerate(labels)))
        self.by_id = {tok.convert_tokens_to_ids(t): labels.index(tag) for t, tag in tags_by_token.items()}
        self.n = len(labels)
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def parameters(self):
        yield self.weight

    def eval(self):
        return self

    def __call__(self, input_ids, **_):
        logits = self.torch.zeros(*input_ids.shape, self.n)
        for b in range(input_ids.shape[0]):
            for t in range(input_ids.shape[1]):
                logits[b, t, self.by_id.get(int(input_ids[b, t]), 0)] = 5.0
        return SimpleNamespace(logits=logits)


def test_a_word_with_no_sub_word_keeps_the_entity_whole_and_is_reported(tmp_path, tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    assert tok("\u200b", add_special_tokens=False)["input_ids"] == []  # the case at hand
    task = get_task("token-classification")
    words = ["good", "\u200b", "movie", "was"]
    tags = ["B-PER", "I-PER", "I-PER", "O"]
    path = write(tmp_path / "train.jsonl", json.dumps({"tokens": words, "tags": tags}) + "\n"
                 + json.dumps({"tokens": ["the", "film"], "tags": ["O", "B-PER"]}) + "\n"
                 + json.dumps({"tokens": ["a", "\u0301", "\x07"], "tags": ["O", "O", "O"]}) + "\n")
    prep = prepare_data(DataSpec(train=path, validation="none", test="none"), task, tok, 64, seed=0)
    reported = [w for w in prep.report.warnings if "no sub-word token" in w.message]
    assert [(w.file, w.line, w.column, w.value) for w in reported] == [(path, 1, "tokens", repr("\u200b")),
                                                                       (path, 3, "tokens", repr("\u0301"))]
    assert f"word 1 ({chr(0x200b)!r}) of 4" in reported[0].message
    assert f"words 1 ({chr(0x301)!r}), 2 ({chr(7)!r}) of 3" in reported[1].message
    assert prep.report.split("train").lengths.truncated == 0

    assert fill_empty_words(tok, [words]) == [["good", "[UNK]", "movie", "was"]]
    ds = task.encode(prep.splits["train"], tok, prep.info, max_seq_length=64)
    labelled = [i for i in ds["labels"][0] if i != IGNORE]
    assert [prep.info.labels[i] for i in labelled] == tags  # one label per word, the entity whole

    model = FakeTagger(tok, {"good": "B-PER", "[UNK]": "I-PER", "movie": "I-PER"}, prep.info.labels)
    out = task.predict(model, tok, [words, "good \u200b movie was"], max_seq_length=64)
    for result in out:
        assert result["tags"] == tags and result["truncated"] is False
        assert [(e["type"], e["words"]) for e in result["entities"]] == [("PER", [0, 3])]
    short = task.predict(model, tok, [words], max_seq_length=4)[0]  # [CLS] good [UNK] [SEP]: really cut
    assert short["truncated"] is True and short["tags"][:2] == ["B-PER", "I-PER"]


def test_references_of_a_word_with_no_sub_word_stay_in_the_metrics(tiny_bert):
    import numpy as np
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    task = get_task("token-classification")
    train = Examples("train", "t.jsonl", [{"tokens": ["good", "\u200b", "movie"], "tags": ["B-PER", "I-PER", "I-PER"]},
                                          {"tokens": ["the"], "tags": ["O"]}], [1, 2])
    task.check_rows(train)
    info = task.label_info(train)
    ds = task.encode(train, tok, info, 32)
    width = max(len(x) for x in ds["labels"])
    labels = np.array([x + [IGNORE] * (width - len(x)) for x in ds["labels"]])
    logits = np.eye(len(info.labels))[np.where(labels == IGNORE, 0, labels)]
    scores = task.trainer_metrics(info)(SimpleNamespace(predictions=logits, label_ids=labels))
    assert scores["f1"] == 1.0 and scores["accuracy"] == 1.0


def test_labels_written_two_ways_are_listed_with_the_row_errors(tmp_path):
    path = write(tmp_path / "train.csv", "text,label\na,1\nb,Infinity\nc,1.0\nd,0\n")
    prep = prepare_data(DataSpec(train=path, validation="none", test="none"), get_task("text-classification"),
                        None, 128, seed=0)
    assert sorted((e.line, e.value) for e in prep.report.errors) == [(2, "'1'"), (3, "'Infinity'"), (4, "'1.0'")]
