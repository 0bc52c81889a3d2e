"""Data intake for a job: mapping, row errors with file/line/column, automatic splits, report."""

from __future__ import annotations

import pytest

from conftest import write_sentiment_csv
from fmhub.services.data_prep import prepare_data
from fmhub.services.specs import DataSpec
from fmhub.tasks import get_task


def test_auto_split_80_10_10_stratified_and_reported(tmp_path):
    f = write_sentiment_csv(tmp_path / "reviews.csv", n=100)
    spec = DataSpec(train=str(f), column_mapping={"sentence1": "review", "label": "stars"})
    prep = prepare_data(spec, get_task("text-classification"), None, 128, seed=42)
    assert prep.report.ok
    assert {k: len(v) for k, v in prep.splits.items()} == {"train": 80, "validation": 10, "test": 10}
    # stratified: 50/50 labels stay 50/50 in every split
    assert prep.report.split("validation").distribution == {"neg": 5, "pos": 5}
    assert prep.report.split("train").distribution == {"neg": 40, "pos": 40}
    assert "auto" in prep.report.split("test").source
    # the same seed gives the same split; lines still point into the user's file
    again = prepare_data(spec, get_task("text-classification"), None, 128, seed=42)
    assert again.splits["test"].lines == prep.splits["test"].lines
    assert all(2 <= line <= 101 for line in prep.splits["test"].lines)


def test_sizes_are_configurable_and_test_none_means_no_test(tmp_path):
    f = write_sentiment_csv(tmp_path / "reviews.csv", n=50)
    spec = DataSpec(train=str(f), test="none", validation_size=0.2)
    prep = prepare_data(spec, get_task("text-classification"), None, 128, seed=1)
    assert {k: len(v) for k, v in prep.splits.items()} == {"train": 40, "validation": 10}
    assert any("no test data" in n for n in prep.report.notes)


def test_columns_matched_automatically_are_shown(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "good", "label": 1}\n{"text": "bad", "label": 0}\n' * 10, encoding="utf-8")
    prep = prepare_data(DataSpec(train=str(f), validation="none", test="none"), get_task("text-classification"),
                        None, 128, seed=0)
    assert prep.report.mapping == ["sentence1 <- text (auto)", "label <- label (auto)"]
    assert prep.info.labels == ["0", "1"]


def test_all_row_errors_are_reported_together_with_file_line_column(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("review,stars\ngood movie,pos\n,neg\nbad movie,\nfine,pos\nawful,neg\n", encoding="utf-8")
    prep = prepare_data(DataSpec(train=str(f), validation="none", test="none"), get_task("text-classification"),
                        None, 128, seed=0)
    assert not prep.report.ok
    where = [(e.file, e.line, e.column) for e in prep.report.errors]
    assert where == [(str(f), 3, "review"), (str(f), 4, "stars")]


def test_drop_policy_keeps_going_and_lists_dropped_rows(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("review,stars\ngood movie,pos\n,neg\nbad movie,\nfine,pos\nawful,neg\n", encoding="utf-8")
    spec = DataSpec(train=str(f), validation="none", test="none", on_invalid_row="drop")
    prep = prepare_data(spec, get_task("text-classification"), None, 128, seed=0)
    assert prep.report.ok
    train = prep.report.split("train")
    assert (train.rows_read, train.rows_kept) == (5, 3)
    assert [p.line for p in train.dropped] == [3, 4]


def test_label_only_in_validation_file_is_an_error(tmp_path):
    train = write_sentiment_csv(tmp_path / "train.csv", n=10)
    val = tmp_path / "val.csv"
    val.write_text("review,stars\ngood,pos\nmeh,neutral\n", encoding="utf-8")
    prep = prepare_data(DataSpec(train=str(train), validation=str(val), test="none"),
                        get_task("text-classification"), None, 128, seed=0)
    assert [(e.file, e.line, e.value) for e in prep.report.errors] == [(str(val), 3, "'neutral'")]


def test_missing_mapped_column_names_file_and_columns(tmp_path):
    from fmhub.errors import DataError

    f = write_sentiment_csv(tmp_path / "reviews.csv", n=10)
    with pytest.raises(DataError) as exc:
        prepare_data(DataSpec(train=str(f), column_mapping={"sentence1": "reveiw"}), get_task("text-classification"),
                     None, 128, seed=0)
    assert "reveiw" in exc.value.message and "reviews.csv" in exc.value.message
    assert "review" in (exc.value.message + exc.value.hint)


def test_token_length_statistics_count_truncation(tmp_path, tiny_bert):
    from transformers import AutoTokenizer

    f = write_sentiment_csv(tmp_path / "reviews.csv", n=20)
    prep = prepare_data(DataSpec(train=str(f), validation="none", test="none"), get_task("text-classification"),
                        AutoTokenizer.from_pretrained(str(tiny_bert)), max_seq_length=4, seed=0)
    lengths = prep.report.split("train").lengths
    # texts are 2-4 known words -> 4-6 tokens with [CLS]/[SEP]; "love this plot", "wonderful acting"...
    words = [len(r["sentence1"].split()) for r in prep.splits["train"].rows]
    assert lengths.max == max(words) + 2 == 6 and lengths.max_seq_length == 4
    assert lengths.truncated == sum(1 for n in words if n + 2 > 4) > 0
