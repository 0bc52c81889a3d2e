"""Column mapping: automatic matches, explicit --map, and every mistake reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmhub.data.mapping import ColumnMapping, apply_mapping, parse_map_options, resolve_mapping
from fmhub.data.readers import Table, read_table
from fmhub.errors import DataError
from fmhub.data.schema import TaskSchema

CLS = TaskSchema(
    required=("sentence1", "label"),
    optional=("sentence2",),
    aliases={"sentence1": ("text", "sentence", "review"), "label": ("labels", "class", "stars")},
)
QA = TaskSchema(
    required=("question", "context", "answers"),
    optional=("answers.text", "answers.answer_start"),
    list_keys=("answers.text", "answers.answer_start"),
)


def test_parse_map_options() -> None:
    assert parse_map_options(["sentence1=review", " label = stars ", "x=a=b"]) == {
        "sentence1": "review", "label": "stars", "x": "a=b"}
    assert parse_map_options([]) == {}


def test_parse_map_options_reports_every_malformed_item() -> None:
    with pytest.raises(DataError) as info:
        parse_map_options(["label", "=col", "ok=fine", "key=", "ok=other"])
    message = info.value.message
    for fragment in ("'label'", "'=col'", "'key='", "'ok' is mapped twice"):
        assert fragment in message
    assert "KEY=COLUMN" in message
    assert len(info.value.details) == 4


def test_auto_match_case_insensitive_and_by_alias() -> None:
    mapping = resolve_mapping(["ID", "Review", "LABEL"], CLS, {}, "train.csv")
    assert mapping.columns == {"sentence1": "Review", "label": "LABEL"}
    assert mapping.auto == ["sentence1", "label"]
    assert mapping.describe() == ["sentence1 <- Review (auto)", "label <- LABEL (auto)"]


def test_auto_match_trimmed_names_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{" Text ": "good", "label ": "pos", "sentence2": "fine"}\n', encoding="utf-8")
    table = read_table(path)
    mapping = resolve_mapping(table.columns, CLS, {}, str(path))
    assert mapping.columns == {"sentence1": " Text ", "label": "label ", "sentence2": "sentence2"}
    assert apply_mapping(table, mapping) == [{"sentence1": "good", "label": "pos", "sentence2": "fine"}]


def test_key_name_beats_alias_and_exact_case_beats_folded() -> None:
    # "text" is an alias of sentence1, but a column named "sentence1" is matched first.
    mapping = resolve_mapping(["text", "sentence1", "label", "Label"], CLS, {})
    assert mapping.columns == {"sentence1": "sentence1", "label": "label"}


def test_explicit_map_and_optional_key_not_auto_matched_without_column() -> None:
    mapping = resolve_mapping(["body", "text", "y"], CLS, {"sentence1": "body", "label": "y"})
    assert mapping.columns == {"sentence1": "body", "label": "y"}
    assert mapping.auto == []
    assert mapping.describe() == ["sentence1 <- body", "label <- y"]


def test_one_column_for_two_keys_only_when_explicit() -> None:
    # Auto matching never reuses a column the user already mapped.
    with pytest.raises(DataError, match="no column for required key 'label'"):
        resolve_mapping(["text"], CLS, {"sentence1": "text"})
    mapping = resolve_mapping(["text"], CLS, {"sentence1": "text", "label": "text"})
    assert mapping.columns == {"sentence1": "text", "label": "text"}


def test_unknown_key_lists_valid_keys() -> None:
    with pytest.raises(DataError) as info:
        resolve_mapping(["text", "label"], CLS, {"sentense1": "text"})
    assert "'sentense1'" in info.value.message
    assert "sentence1" in info.value.hint and "sentence2" in info.value.hint


def test_missing_column_names_file_lists_columns_and_suggests() -> None:
    with pytest.raises(DataError) as info:
        resolve_mapping(["Review", "stars"], CLS, {"sentence1": "reviews"}, "train.csv")
    err = info.value
    assert "'reviews'" in err.message and "train.csv" in err.message
    assert "['Review', 'stars']" in err.message
    assert err.hint == "did you mean --map sentence1=Review?"


def test_all_missing_keys_reported_together() -> None:
    with pytest.raises(DataError) as info:
        resolve_mapping(["lable", "body"], CLS, {}, "train.csv")
    err = info.value
    assert err.message == "no column for required keys 'sentence1', 'label' in train.csv; columns are ['lable', 'body']"
    assert err.hint == "--map sentence1=body --map label=lable"  # the one column left for the one key left


def test_single_missing_key_message_and_hint() -> None:
    with pytest.raises(DataError) as info:
        resolve_mapping(["text", "y"], CLS, {}, "d.csv")
    assert info.value.message == "no column for required key 'label' in d.csv; columns are ['text', 'y']"
    assert info.value.hint == "--map label=y"  # the only column left
    with pytest.raises(DataError) as info:
        resolve_mapping(["text", "x", "y"], CLS, {}, "d.csv")
    assert info.value.hint == "--map label=COLUMN"  # two columns left: no guess


def test_ambiguous_columns_reported() -> None:
    with pytest.raises(DataError) as info:
        resolve_mapping(["Text", "TEXT", "label"], CLS, {})
    assert "all match key 'sentence1'" in info.value.message
    assert "no column for required" not in info.value.message


def test_user_errors_reported_together() -> None:
    with pytest.raises(DataError) as info:
        resolve_mapping(["a", "b"], CLS, {"nope": "a", "label": "c"}, "f.csv")
    assert info.value.message.startswith("2 column mapping problems for f.csv")
    assert len(info.value.details) == 2


def _table(rows: list[dict]) -> Table:
    return Table(Path("t.jsonl"), "jsonl", list(rows[0]), rows, list(range(1, len(rows) + 1)), [])


def test_nested_answers_keys() -> None:
    rows = [
        {"q": "Who?", "ctx": "Ada wrote it.", "answer": ["Ada"], "start": [0], "extra": 1},
        {"q": "When?", "ctx": "Never.", "answer": [], "start": []},
    ]
    columns = ["q", "ctx", "answer", "start", "extra"]
    mapping = resolve_mapping(columns, QA, {"question": "q", "context": "ctx", "answers.text": "answer",
                                            "answers.answer_start": "start"})
    assert "answers" not in mapping.columns  # satisfied by its nested keys
    assert apply_mapping(_table(rows), mapping) == [
        {"question": "Who?", "context": "Ada wrote it.", "answers": {"text": ["Ada"], "answer_start": [0]}},
        {"question": "When?", "context": "Never.", "answers": {"text": [], "answer_start": []}},
    ]


def test_nested_keys_auto_matched_from_flat_columns() -> None:
    mapping = resolve_mapping(["question", "context", "answers.text", "answers.answer_start"], QA, {})
    assert mapping.columns == {"question": "question", "context": "context",
                               "answers.text": "answers.text", "answers.answer_start": "answers.answer_start"}
    # With a whole "answers" column, the nested keys are not matched as well.
    mapping = resolve_mapping(["question", "context", "answers", "answers.text"], QA, {})
    assert mapping.columns == {"question": "question", "context": "context", "answers": "answers"}


def test_apply_mapping_renames_and_drops_unmapped_and_fills_missing() -> None:
    table = _table([{"review": "good", "stars": "5", "id": 1}, {"review": "bad"}])
    mapping = ColumnMapping({"sentence1": "review", "label": "stars"}, ["sentence1"])
    assert apply_mapping(table, mapping) == [{"sentence1": "good", "label": "5"},
                                             {"sentence1": "bad", "label": None}]
