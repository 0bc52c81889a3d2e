"""Committed data files (tests/assets/data) read through the real readers and task checks.

Each asset is a few hand-written lines; every expected row, line, label and message fragment below
was worked out by hand from the file's bytes (the comments show the arithmetic where there is any).
The files are byte-exact on purpose (a BOM, Latin-1 bytes, raw U+2028, whitespace-only lines):
tests/assets/data/.gitattributes turns off end-of-line conversion for them.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

import pytest

from fmhub.data.readers import ENCODING_HINT, read_table
from fmhub.data.report import ValidationReport
from fmhub.errors import DataError
from fmhub.services.data_prep import check_examples, prepare_data, read_examples
from fmhub.services.specs import DataSpec
from fmhub.tasks import get_task

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "data"


def asset(name: str) -> Path:
    path = ASSETS / name
    assert path.is_file(), f"missing test asset {name}"
    return path


def read_and_check(name: str, task_name: str, on_invalid_row: str = "error", **spec: Any):
    """read_examples + check_examples on one asset, as prepare_data does for one split."""
    path = str(asset(name))
    task = get_task(task_name)
    report = ValidationReport(task=task.name)
    data_spec = DataSpec(train=path, validation="none", test="none", on_invalid_row=on_invalid_row, **spec)
    _, examples, mapping = read_examples(path, data_spec, task, report)
    kept, dropped = check_examples(examples, task, on_invalid_row, report)
    return path, kept, dropped, report, mapping


class RecordingTokenizer:
    """Stands in for a tokenizer in ``encode``: records the texts it is given, one id per text."""

    def __init__(self) -> None:
        self.sources: list[str] = []
        self.targets: list[str] = []

    def __call__(self, texts: list[str] | None = None, text_target: list[str] | None = None,
                 **kwargs: Any) -> dict[str, list[list[int]]]:
        batch = list(texts if texts is not None else text_target)
        (self.sources if texts is not None else self.targets).extend(batch)
        return {"input_ids": [[len(t)] for t in batch], "attention_mask": [[1] for _ in batch]}


# ============================================================================== readers: CSV / TSV


def test_csv_quoted_newline_comma_and_doubled_quotes_with_start_lines() -> None:
    table = read_table(asset("quoted_fields.csv"))
    assert table.format == "csv"
    assert table.columns == ["id", "text", "label"]
    assert table.rows == [
        {"id": "1", "text": "Rain came in\nafter lunch", "label": "wet"},   # lines 2-3
        {"id": "2", "text": "apples, pears, plums", "label": "fruit"},      # line 4
        {"id": "3", "text": 'she said "hello" twice', "label": "talk"},     # line 5
        {"id": "4", "text": 'one "two", three\nfour', "label": "mixed"},    # lines 6-7
        {"id": "5", "text": "plain words", "label": "plain"},               # line 8
    ]
    assert table.lines == [2, 4, 5, 6, 8]
    assert table.warnings == [] and table.skipped_blank_lines == 0


def test_tsv_keeps_bare_double_quotes_as_text() -> None:
    table = read_table(asset("bare_quotes.tsv"))
    assert table.format == "tsv"
    assert table.columns == ["src", "tgt"]
    assert table.rows == [
        {"src": '"Stop," he said', "tgt": '"Halt", sagte er'},
        {"src": 'a 3" pipe', "tgt": 'ein 3" Rohr'},
        {"src": '"whole cell"', "tgt": '"""'},  # no quote processing: the quotes are the text
    ]
    assert table.lines == [2, 3, 4]


def test_csv_utf8_bom_is_not_part_of_the_first_column_name() -> None:
    path = asset("bom_header.csv")
    assert path.read_bytes().startswith(codecs.BOM_UTF8)  # the asset really has the BOM
    for encoding in ("utf-8", "utf-8-sig"):
        table = read_table(path, encoding=encoding)
        assert table.columns == ["text", "label"]
        assert not table.columns[0].startswith("\ufeff")
        assert table.rows == [{"text": "sunny day", "label": "good"}, {"text": "wet socks", "label": "bad"}]
        assert table.lines == [2, 3]
    # so the first column is matched by name like any other
    _, kept, _, report, mapping = read_and_check("bom_header.csv", "text-classification")
    assert mapping == ["sentence1 <- text (auto)", "label <- label (auto)"]
    assert [r["sentence1"] for r in kept.rows] == ["sunny day", "wet socks"]
    assert report.ok


def test_csv_header_names_with_spaces_are_trimmed_with_a_warning_each() -> None:
    path = asset("spaced_header.csv")
    table = read_table(path)
    assert table.columns == ["text", "label"]
    assert table.rows == [{"text": "warm tea", "label": "cozy"}, {"text": "cold tea", "label": "sad"}]
    assert [(w.severity, w.file, w.line, w.column, w.value, w.message) for w in table.warnings] == [
        ("warning", str(path), 1, "text", "'  text '",
         "column name '  text ' has surrounding spaces; trimmed to 'text'"),
        ("warning", str(path), 1, "label", "' label'",
         "column name ' label' has surrounding spaces; trimmed to 'label'"),
    ]
    assert all(w.hint == "remove the spaces from the header" for w in table.warnings)
    # read_examples passes the reader's warnings into the report
    _, _, _, report, mapping = read_and_check("spaced_header.csv", "text-classification")
    assert [w.column for w in report.warnings] == ["text", "label"]
    assert mapping == ["sentence1 <- text (auto)", "label <- label (auto)"]


def test_csv_duplicate_header_name_is_an_error_naming_both_positions() -> None:
    path = asset("duplicate_header.csv")
    with pytest.raises(DataError) as info:
        read_table(path)
    err = info.value
    assert err.message == f"{path}:1: duplicate column name 'review' at positions 2 and 4"
    assert err.hint == "rename the columns so that every name is unique"
    assert [(d["line"], d["column"], d["message"]) for d in err.details] == [
        (1, "review", "duplicate column name at positions 2, 4")]


def test_latin1_csv_fails_as_utf8_naming_line_and_byte() -> None:
    path = asset("latin1.csv")
    with pytest.raises(DataError) as info:
        read_table(path)
    err = info.value
    # "text,label\n" = bytes 0-10, "plain tea,1\n" = bytes 11-22; line 3 starts at offset 23,
    # "caf" is 23-25, so the Latin-1 é (0xe9) is at offset 26, the 4th byte of line 3.
    assert err.message == f"{path}:3: cannot decode byte 0xe9 as utf-8 (byte 4 of the line, offset 26 in the file)"
    assert err.hint == ENCODING_HINT and "--encoding latin-1" in err.hint
    detail = err.details[0]
    assert (detail["line"], detail["value"], detail["byte_offset"], detail["byte_in_line"]) == (3, "0xe9", 26, 4)


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_latin1_csv_reads_exactly_with_its_encoding(encoding: str) -> None:
    table = read_table(asset("latin1.csv"), encoding=encoding)
    assert table.rows == [{"text": "plain tea", "label": "1"}, {"text": "café crème", "label": "2"}]
    assert table.lines == [2, 3]


def test_latin1_csv_through_the_data_spec_encoding() -> None:
    _, kept, _, report, _ = read_and_check("latin1.csv", "text-classification", encoding="latin-1")
    assert report.ok
    assert [(r["sentence1"], r["label"]) for r in kept.rows] == [("plain tea", "1"), ("café crème", "2")]


# ======================================================================================= JSONL


def test_jsonl_blank_and_whitespace_only_lines_are_skipped_and_counted() -> None:
    path = asset("blank_lines.jsonl")
    table = read_table(path)
    # line 2 empty, line 3 spaces and a tab, line 5 indented record, line 6 empty
    assert table.rows == [{"text": "first", "label": "a"}, {"text": "second", "label": "b"},
                          {"text": "third", "label": "a"}, {"text": "fourth", "label": "b"}]
    assert table.lines == [1, 4, 5, 7]
    assert table.skipped_blank_lines == 3
    assert table.columns == ["text", "label"]
    _, kept, _, report, _ = read_and_check("blank_lines.jsonl", "text-classification")
    assert f"{path}: skipped 3 blank line(s)" in report.notes
    assert kept.lines == [1, 4, 5, 7]


def test_json_array_in_a_jsonl_file_is_read_as_an_array_with_a_warning() -> None:
    path = asset("array_in_jsonl.jsonl")
    table = read_table(path)
    assert table.format == "json"  # it was read as what it is
    assert table.rows == [{"text": "north wind", "label": "cold"}, {"text": "south wind", "label": "warm"}]
    assert table.lines == [2, 3]  # "[" is line 1; the second object starts on line 3 and ends on 4
    assert table.columns == ["text", "label"]
    assert [(w.severity, w.line, w.message, w.hint) for w in table.warnings] == [
        ("warning", 1, "file is a JSON array, not JSON Lines; read as an array",
         "name it .json, or write one object per line")]
    _, _, _, report, _ = read_and_check("array_in_jsonl.jsonl", "text-classification")
    assert any("JSON array, not JSON Lines" in w.message for w in report.warnings)


def test_jsonl_keeps_u2028_and_u2029_inside_strings() -> None:
    path = asset("line_separators.jsonl")
    raw = path.read_text(encoding="utf-8")
    assert "\u2028" in raw and "\u2029" in raw  # raw characters, not \u escapes
    assert len(raw.splitlines()) == 5  # what a naive splitlines() would make of the 3 records
    table = read_table(path)
    assert [r["text"] for r in table.rows] == ["top line\u2028next line", "para one\u2029para two", "plain"]
    assert [r["label"] for r in table.rows] == ["x", "y", "x"]
    assert table.lines == [1, 2, 3]
    assert table.skipped_blank_lines == 0


def test_jsonl_record_longer_than_one_mib(tmp_path: Path) -> None:
    big = "fjord é " * 150_000  # 8 characters, 9 UTF-8 bytes each: 1,350,000 bytes
    big_line = json.dumps({"text": big, "label": "long"}, ensure_ascii=False)
    assert len(big_line.encode("utf-8")) > 1024 * 1024
    path = tmp_path / "long.jsonl"
    path.write_bytes(('{"text": "short", "label": "a"}\n' + big_line + "\n\n"
                      + '{"text": "after", "label": "b"}\n').encode("utf-8"))
    table = read_table(path)
    assert len(table.rows) == 3
    assert table.rows[1] == {"text": big, "label": "long"}
    assert [r["text"] for r in (table.rows[0], table.rows[2])] == ["short", "after"]
    assert table.lines == [1, 2, 4]
    assert table.skipped_blank_lines == 1


# ============================================================================ values and types


def test_csv_id_column_mixing_numbers_and_text_stays_text() -> None:
    table = read_table(asset("mixed_ids.csv"))
    assert [r["id"] for r in table.rows] == ["7", "A7", "007"]  # CSV cells are str; "007" keeps its zeros
    assert all(isinstance(r[c], str) for r in table.rows for c in table.columns)


def test_jsonl_numbers_stay_numbers_and_a_numeric_text_becomes_text_in_classification() -> None:
    table = read_table(asset("mixed_ids.jsonl"))
    ids = [r["id"] for r in table.rows]
    assert [(type(v), v) for v in ids] == [(int, 7), (str, "A7"), (float, 7.0)]
    assert table.rows[2]["text"] == 5 and type(table.rows[2]["text"]) is int
    assert table.rows[2]["label"] == 1 and type(table.rows[2]["label"]) is int
    # text-classification: a number in the text column is used as its text, a number label as its name
    _, kept, dropped, report, _ = read_and_check("mixed_ids.jsonl", "text-classification")
    assert report.ok and report.errors == [] and dropped == []
    assert kept.rows == [{"sentence1": "seven apples", "label": "fruit"},
                         {"sentence1": "a seat number", "label": "place"},
                         {"sentence1": "5", "label": "1"}]
    assert kept.lines == [1, 2, 3]


def test_csv_empty_cell_is_missing_but_none_and_na_are_text() -> None:
    table = read_table(asset("none_na.csv"))
    assert [r["text"] for r in table.rows] == ["None", "NA", None, None, "null"]  # lines 4 and 5 empty
    assert table.lines == [2, 3, 4, 5, 6]


def test_empty_text_cells_are_the_rows_reported_by_classification() -> None:
    path, kept, _, report, _ = read_and_check("none_na.csv", "text-classification")
    assert [(e.file, e.line, e.column, e.value) for e in report.errors] == [
        (path, 4, "text", "''"), (path, 5, "text", "''")]
    assert all(e.message == "empty text for 'sentence1'" for e in report.errors)
    _, kept, dropped, report, _ = read_and_check("none_na.csv", "text-classification", on_invalid_row="drop")
    assert report.ok
    assert [r["sentence1"] for r in kept.rows] == ["None", "NA", "null"]
    assert kept.lines == [2, 3, 6]
    assert [p.line for p in dropped] == [4, 5]


def test_csv_list_cells_for_token_classification_and_a_bad_cell_names_line_and_column() -> None:
    path, kept, _, report, _ = read_and_check("ner_cells.csv", "token-classification")
    assert [(e.file, e.line, e.column, e.message) for e in report.errors] == [
        # '["broken", "cell"' is 17 characters: the missing ',' or ']' is expected at character 18
        (path, 4, "tokens",
         "'tokens' must be a list: not a valid JSON array (Expecting ',' delimiter at character 18)"),
        (path, 5, "tags", "'tags' must be a list: expected a JSON array such as [\"EU\", \"rejects\"]"),
    ]
    assert f"{path}:4, column 'tokens'" in str(report.errors[0])
    assert report.errors[1].value == "'O O'"
    _, kept, dropped, _, _ = read_and_check("ner_cells.csv", "token-classification", on_invalid_row="drop")
    assert [(r["tokens"], r["tags"]) for r in kept.rows] == [
        (["Ada", "Lovelace", "wrote"], ["B-PER", "I-PER", "O"]), (["Oslo", "is", "cold"], ["B-LOC", "O", "O"])]
    assert kept.lines == [2, 3]
    assert [(p.line, p.column) for p in dropped] == [(4, "tokens"), (5, "tags")]


def test_tsv_list_cells_for_token_classification() -> None:
    path, kept, _, report, _ = read_and_check("ner_cells.tsv", "token-classification")
    # '["Rome"' is 7 characters: ',' or ']' expected at character 8
    assert [(e.file, e.line, e.column, e.message) for e in report.errors] == [
        (path, 4, "tokens", "'tokens' must be a list: not a valid JSON array (Expecting ',' delimiter at character 8)")]
    _, kept, _, _, _ = read_and_check("ner_cells.tsv", "token-classification", on_invalid_row="drop")
    assert [r["tokens"] for r in kept.rows] == [["Ada", "Lovelace", "wrote"], ["Oslo", "is", "cold"]]
    assert [r["tags"] for r in kept.rows] == [["B-PER", "I-PER", "O"], ["B-LOC", "O", "O"]]
    assert kept.lines == [2, 3]


# ========================================================================== classification


@pytest.mark.parametrize("name", ["labels_one_and_one_point_zero.csv", "labels_one_and_one_point_zero.jsonl"])
def test_labels_1_and_1_0_stop_the_job_unless_a_label_type_says_how_to_read_them(name: str) -> None:
    path = str(asset(name))
    task = get_task("text-classification")
    prep = prepare_data(DataSpec(train=path, validation="none", test="none"), task, None, 128, seed=0)
    first = 2 if name.endswith(".csv") else 1  # the CSV header is line 1
    assert [(e.severity, e.file, e.line, e.column, e.value) for e in prep.report.errors] == [
        ("error", path, first, "label", "'1'"), ("error", path, first + 2, "label", "'1.0'")]
    assert prep.report.errors[0].message == (f"labels '1', '1.0' are the number 1 written differently: "
                                             f"'1' on line {first}")
    assert "--label-type number" in prep.report.errors[0].hint and "--label-type string" in prep.report.errors[0].hint
    as_string = prepare_data(DataSpec(train=path, validation="none", test="none", label_type="string"), task, None,
                             128, seed=0)
    assert as_string.report.ok and as_string.report.warnings == []
    assert as_string.report.split("train").distribution == {"0": 2, "1": 1, "1.0": 1}
    as_number = prepare_data(DataSpec(train=path, validation="none", test="none", label_type="number"), task, None,
                             128, seed=0)
    assert as_number.report.ok and as_number.info.labels == ["0", "1"]
    assert as_number.report.split("train").distribution == {"0": 2, "1": 2}


@pytest.mark.parametrize("split", ["validation", "test"])
def test_label_only_in_a_held_out_file_is_an_error_naming_label_and_line(split: str) -> None:
    train, held_out = str(asset("cls_train.csv")), str(asset("cls_heldout.csv"))
    other = "test" if split == "validation" else "validation"
    spec = DataSpec(train=train, **{split: held_out, other: "none"})
    prep = prepare_data(spec, get_task("text-classification"), None, 128, seed=0)
    assert not prep.report.ok
    # 'meh' is on lines 3 and 5 of the held-out file: reported once, at its first line
    assert [(e.file, e.line, e.value, e.message) for e in prep.report.errors] == [
        (held_out, 3, "'meh'", f"label 'meh' in the {split} data does not occur in the training data")]
    assert prep.report.errors[0].hint == "known labels: neg, pos; fix the label or add training rows for it"
    assert prep.report.errors[0].column == "sentiment"  # the user's column, not the task key


# ====================================================================== token classification


def test_tokens_and_tags_of_different_lengths_name_the_line() -> None:
    path, _, _, report, _ = read_and_check("ner_mismatch.jsonl", "token-classification")
    assert [(e.file, e.line, e.column, e.message, e.value) for e in report.errors] == [
        (path, 2, "tags", "3 tokens but 2 tags", "['B-LOC', 'O']"),
        (path, 3, "tags", "1 tokens but 2 tags", "['O', 'O']"),
    ]
    assert all(e.hint == "every token needs exactly one tag" for e in report.errors)
    _, kept, _, _, _ = read_and_check("ner_mismatch.jsonl", "token-classification", on_invalid_row="drop")
    assert kept.lines == [1] and kept.rows[0]["tags"] == ["B-PER", "O"]


def test_tag_only_in_the_test_file_is_an_error() -> None:
    train, test = str(asset("ner_train.jsonl")), str(asset("ner_test.jsonl"))
    prep = prepare_data(DataSpec(train=train, validation="none", test=test), get_task("token-classification"),
                        None, 128, seed=0)
    assert prep.info.labels == ["O", "B-LOC", "B-PER", "I-PER"]
    # line 2 has B-ORG and I-ORG; line 3 repeats B-ORG (reported once)
    assert [(e.file, e.line, e.value, e.message) for e in prep.report.errors] == [
        (test, 2, "'B-ORG'", "tag 'B-ORG' in the test data does not occur in the training data"),
        (test, 2, "'I-ORG'", "tag 'I-ORG' in the test data does not occur in the training data"),
    ]
    assert prep.report.errors[0].hint == "known tags: O, B-LOC, B-PER, I-PER; fix the tag or add training rows for it"


# ======================================================================== question answering

QA_CONTEXT = "Mira planted tulips by the river. The river froze in January."


def test_answer_start_is_corrected_only_when_the_answer_occurs_once() -> None:
    # "tulips" is at 13 (right); "January" at 53, not 50 (unique: corrected); "river" at 27 and 38,
    # not 5 (ambiguous: error); "snow" does not occur (error).
    assert QA_CONTEXT.index("tulips") == 13 and QA_CONTEXT.index("January") == 53
    path, kept, _, report, _ = read_and_check("qa_offsets.jsonl", "question-answering")
    assert [(w.file, w.line, w.column, w.value, w.message) for w in report.warnings] == [
        (path, 2, "answers.answer_start", "50",
         "answer_start 50 does not point at 'January'; corrected to 53 (the only occurrence)")]
    assert [(e.file, e.line, e.column, e.value, e.message) for e in report.errors] == [
        (path, 3, "answers.answer_start", "5",
         "answer_start 5 does not point at the answer 'river', which occurs several times"),
        (path, 4, "answers.answer_start", "0",
         "answer_start 0 does not point at the answer 'snow', which does not occur in the context"),
    ]
    assert kept.rows[0]["answers"] == {"text": ["tulips"], "answer_start": [13]}
    assert kept.rows[1]["answers"] == {"text": ["January"], "answer_start": [53]}
    assert QA_CONTEXT[53:53 + len("January")] == "January"


def test_answer_start_rows_that_cannot_be_corrected_are_dropped_on_request() -> None:
    _, kept, dropped, report, _ = read_and_check("qa_offsets.jsonl", "question-answering", on_invalid_row="drop")
    assert report.ok
    assert kept.lines == [1, 2]
    assert [r["answers"]["answer_start"] for r in kept.rows] == [[13], [53]]
    assert [(p.line, p.severity) for p in dropped] == [(3, "warning"), (4, "warning")]
    assert [w.line for w in report.warnings] == [2]


# =================================================================== summarization / translation


def test_summaries_with_empty_targets_or_no_document_are_reported_and_left_out_of_training() -> None:
    path = str(asset("summaries.jsonl"))
    task = get_task("summarization")
    prep = prepare_data(DataSpec(train=path, validation="none", test="none"), task, None, 128, seed=0)
    assert prep.report.ok and prep.report.errors == []
    train = prep.splits["train"]
    assert [(r["document"], r["summary"]) for r in train.rows] == [
        ("The bakery opened at dawn and sold out of rye by nine.", "Rye sold out early."),
        ("Volunteers cleaned the beach on Sunday.", ""),
        ("The library extended its hours for exams.", ""),
        ("A storm delayed the ferry by two hours.", "Ferry delayed by storm."),
    ]
    assert train.lines == [1, 2, 5, 6]
    assert [(w.line, w.column, w.value) for w in prep.report.warnings] == [
        (2, "summary", "''"), (5, "summary", "'   '")]
    assert all(w.message == "empty summary: left out of training and of the metrics, still predicted"
               for w in prep.report.warnings)
    split = prep.report.split("train")
    assert (split.rows_read, split.rows_kept) == (6, 4)
    assert [(p.line, p.column, p.value, p.message) for p in split.dropped] == [
        (3, "document", "'   '", "empty document: row left out (nothing to summarize)"),
        (4, "document", "''", "empty document: row left out (nothing to summarize)"),
    ]
    assert split.distribution == {"with summary": 2, "without summary": 2}
    # training pairs: only rows with a summary, each document with its own summary
    tok = RecordingTokenizer()
    ds = task.encode(train, tok, prep.info, 64)
    assert tok.sources == ["The bakery opened at dawn and sold out of rye by nine.",
                           "A storm delayed the ferry by two hours."]
    assert tok.targets == ["Rye sold out early.", "Ferry delayed by storm."]
    assert len(ds) == 2


def test_translation_pairs_missing_a_side_are_reported_and_the_rest_stay_aligned() -> None:
    path = str(asset("pairs_en_de.tsv"))
    task = get_task("translation")
    prep = prepare_data(DataSpec(train=path, validation="none", test="none"), task, None, 128, seed=0)
    assert prep.report.ok
    # the two language-code columns: the first is the source
    assert [m.split(" (")[0] for m in prep.report.mapping] == ["source <- en", "target <- de"]
    train = prep.splits["train"]
    assert [(r["source"], r["target"]) for r in train.rows] == [
        ("The door is open.", "Die Tür ist offen."), ("The lamp is off.", ""), ("Good night.", "Gute Nacht.")]
    assert train.lines == [2, 4, 6]
    assert prep.info.extra == {"source_lang": "en", "target_lang": "de"}
    assert [(w.line, w.column, w.message) for w in prep.report.warnings] == [
        (4, "de", "empty target: left out of training and of the metrics, still predicted")]
    split = prep.report.split("train")
    assert (split.rows_read, split.rows_kept) == (5, 3)
    assert [(p.line, p.column, p.value) for p in split.dropped] == [(3, "en", "''"), (5, "en", "'   '")]
    assert all(p.message == "empty source: row left out (nothing to translate)" for p in split.dropped)
    tok = RecordingTokenizer()
    task.encode(train, tok, prep.info, 64)
    assert list(zip(tok.sources, tok.targets)) == [("The door is open.", "Die Tür ist offen."),
                                                   ("Good night.", "Gute Nacht.")]


# ====================================================================== label options


def test_label_type_int_merges_one_and_one_point_zero_and_names_non_integers() -> None:
    path = str(asset("labels_int.csv"))
    task = get_task("text-classification")
    as_text = prepare_data(DataSpec(train=path, validation="none", test="none", on_invalid_row="drop",
                                    label_type="string"), task, None, 128, seed=0)
    assert as_text.info.labels == ["0", "1", "1.0", "2.5", "pos"]
    prep = prepare_data(DataSpec(train=path, validation="none", test="none", label_type="int"), task, None, 128,
                        seed=0)
    assert [(e.line, e.value, e.message) for e in prep.report.errors] == [
        (5, "'2.5'", "label '2.5' is not a whole number"), (6, "'pos'", "label 'pos' is not a whole number")]
    assert "--label-type string" in prep.report.errors[0].hint
    dropped = prepare_data(DataSpec(train=path, validation="none", test="none", label_type="int",
                                    on_invalid_row="drop"), task, None, 128, seed=0)
    assert dropped.info.labels == ["0", "1"]
    assert [r["label"] for r in dropped.splits["train"].rows] == ["1", "0", "1"]
    assert [p.line for p in dropped.report.split("train").dropped] == [5, 6]


@pytest.mark.parametrize("names", [str(asset("ner_tag_names.txt")), "O,B-PER,I-PER,B-LOC",
                                   ["O", "B-PER", "I-PER", "B-LOC"]])
def test_integer_tags_become_names_from_tag_names_and_unknown_ids_name_the_line(names) -> None:
    path = str(asset("ner_int_tags.jsonl"))
    task = get_task("token-classification")
    prep = prepare_data(DataSpec(train=path, validation="none", test="none", tag_names=names), task, None, 128,
                        seed=0)
    assert [(e.line, e.value) for e in prep.report.errors] == [(3, "7")]
    assert "tag id 7 has no name (--tag-names gives 4: 0-3)" == prep.report.errors[0].message
    ok = prepare_data(DataSpec(train=path, validation="none", test="none", tag_names=names, on_invalid_row="drop"),
                      task, None, 128, seed=0)
    assert [r["tags"] for r in ok.splits["train"].rows] == [["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "O"]]
    assert ok.info.labels == ["O", "B-LOC", "B-PER", "I-PER"]  # by entity type, B before I


def test_integer_tags_without_names_say_how_to_name_them() -> None:
    prep = prepare_data(DataSpec(train=str(asset("ner_int_tags.jsonl")), validation="none", test="none"),
                        get_task("token-classification"), None, 128, seed=0)
    assert [e.line for e in prep.report.errors] == [1, 3]
    assert "--tag-names" in prep.report.errors[0].hint


def test_missing_tag_names_file_is_a_data_error() -> None:
    from fmhub.errors import DataError

    with pytest.raises(DataError, match="tag names file not found: no-such-names.txt"):
        prepare_data(DataSpec(train=str(asset("ner_int_tags.jsonl")), validation="none", test="none",
                              tag_names="no-such-names.txt"), get_task("token-classification"), None, 128, seed=0)


def test_labels_differing_in_case_are_flagged_and_booleans_are_not_integers(tmp_path) -> None:
    path = tmp_path / "case.jsonl"
    path.write_text('{"text": "a", "label": "Neg"}\n{"text": "b", "label": "neg"}\n{"text": "c", "label": "pos"}\n'
                    '{"text": "d", "label": true}\n{"text": ["e", "f"], "label": "pos"}\n', encoding="utf-8")
    task = get_task("text-classification")
    prep = prepare_data(DataSpec(train=str(path), validation="none", test="none", on_invalid_row="drop"), task,
                        None, 128, seed=0)
    assert [w.message for w in prep.report.warnings] == ["labels ['Neg', 'neg'] differ only in upper/lower case"]
    assert [(p.line, p.message) for p in prep.report.split("train").dropped] == [
        (5, "'sentence1' must be a text, not a list or object")]
    as_int = prepare_data(DataSpec(train=str(path), validation="none", test="none", label_type="int"), task,
                          None, 128, seed=0)
    assert (4, "label True is not a whole number") in [(e.line, e.message) for e in as_int.report.errors]


def test_a_held_out_label_equal_to_a_known_one_as_a_number_suggests_label_type_number(tmp_path) -> None:
    train = tmp_path / "train.csv"
    train.write_text("text,label\ngood,1\nbad,0\nfun,1\n", encoding="utf-8")
    test = tmp_path / "test.csv"
    test.write_text("text,label\nnice,1.0\n", encoding="utf-8")
    prep = prepare_data(DataSpec(train=str(train), validation="none", test=str(test)),
                        get_task("text-classification"), None, 128, seed=0)
    assert [(e.file, e.line, e.value) for e in prep.report.errors] == [(str(train), 2, "'1'"), (str(test), 2, "'1.0'")]
    assert prep.report.errors[0].message.endswith("'1' on lines 2, 4")
    assert "--label-type number" in prep.report.errors[0].hint


def test_a_split_too_small_to_stratify_says_so_and_is_not_called_stratified(tmp_path) -> None:
    path = tmp_path / "tiny.csv"
    path.write_text("text,label\n" + "".join(f"t{i},{'pos' if i % 2 else 'neg'}\n" for i in range(8)),
                    encoding="utf-8")
    prep = prepare_data(DataSpec(train=str(path)), get_task("text-classification"), None, 128, seed=0)
    assert any("too small to keep every label's share" in n for n in prep.report.notes)
    assert "stratified" not in prep.report.split("test").source


def test_tags_that_are_not_iob2_are_flagged(tmp_path) -> None:
    path = tmp_path / "tags.jsonl"
    path.write_text('{"tokens": ["Ada", "ran"], "tags": ["PER", "O"]}\n{"tokens": ["Bo"], "tags": ["B-PER"]}\n',
                    encoding="utf-8")
    prep = prepare_data(DataSpec(train=str(path), validation="none", test="none"),
                        get_task("token-classification"), None, 128, seed=0)
    assert prep.report.ok and [w.message for w in prep.report.warnings] == ["tags ['PER'] are not IOB2 (O, B-TYPE, I-TYPE)"]
