"""Readers: every format, the line each record starts on, and the problems users actually hit."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fmhub.data.fingerprint import sha256_file
from fmhub.data.problems import Problem, raise_if_errors
from fmhub.data.readers import detect_format, read_table
from fmhub.errors import DataError


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# ------------------------------------------------------------------------------------ formats


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.jsonl", "jsonl"), ("a.NDJSON", "jsonl"), ("a.json", "json"), ("a.csv", "csv"),
     ("a.tsv", "tsv"), ("a.tab", "tsv"), ("a.parquet", "parquet"), ("a.pq", "parquet")],
)
def test_detect_format_by_extension(name: str, expected: str) -> None:
    assert detect_format(Path(name)) == expected


def test_detect_format_explicit_wins_and_unknown_is_named() -> None:
    assert detect_format(Path("data.txt"), "TSV") == "tsv"
    with pytest.raises(DataError, match=r"data\.txt") as info:
        detect_format(Path("data.txt"))
    assert "--format" in info.value.hint
    with pytest.raises(DataError, match="xlsx"):
        detect_format(Path("a.csv"), "xlsx")


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not found: .*nope\.csv"):
        read_table(tmp_path / "nope.csv")


# ---------------------------------------------------------------------------------------- CSV


def test_csv_quoted_fields_and_start_lines(tmp_path: Path) -> None:
    text = (
        "text,label\n"                  # line 1
        '"first line\nsecond line",pos\n'  # lines 2-3
        '"a, b and ""c""",neg\n'        # line 4
        "plain,pos\n"                   # line 5
        '"x\n\ny",neg\n'                # lines 6-8 (an empty line inside the quotes)
        "last,pos\n"                    # line 9
    )
    table = read_table(write(tmp_path / "t.csv", text))
    assert table.format == "csv"
    assert table.columns == ["text", "label"]
    assert [r["text"] for r in table.rows] == ["first line\nsecond line", 'a, b and "c"', "plain", "x\n\ny", "last"]
    assert table.lines == [2, 4, 5, 6, 9]
    assert table.warnings == []
    assert table.skipped_blank_lines == 0


def test_csv_crlf_and_blank_lines_counted(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "t.csv", "a,b\r\n1,2\r\n\r\n3,4\r\n"))
    assert table.rows == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]
    assert table.lines == [2, 4]
    assert table.skipped_blank_lines == 1


def test_csv_empty_cell_is_none_but_none_text_stays(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "t.csv", 'a,b,c\n,None,NA\n"",x,\n'))
    assert table.rows == [{"a": None, "b": "None", "c": "NA"}, {"a": None, "b": "x", "c": None}]


def test_csv_bom_removed(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\nhi,1\n")
    table = read_table(path)
    assert table.columns == ["text", "label"]
    assert table.rows == [{"text": "hi", "label": "1"}]


def test_csv_header_trimmed_with_warning(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "t.csv", " text ,label\nhi,1\n"))
    assert table.columns == ["text", "label"]
    assert table.rows == [{"text": "hi", "label": "1"}]
    assert len(table.warnings) == 1
    warning = table.warnings[0]
    assert warning.severity == "warning"
    assert warning.line == 1 and warning.column == "text"
    assert "' text '" in warning.message


def test_csv_duplicate_header_names_both_positions(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        read_table(write(tmp_path / "t.csv", "id,text,label,text\n1,a,b,c\n"))
    assert "'text' at positions 2 and 4" in info.value.message
    assert "t.csv:1" in info.value.message


def test_csv_duplicate_after_trimming(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="'text' at positions 1 and 2"):
        read_table(write(tmp_path / "t.csv", "text, text\na,b\n"))


def test_csv_ragged_rows_all_reported(tmp_path: Path) -> None:
    text = "a,b\n1,2\n1,2,3\nok,ok\nonly\n"
    with pytest.raises(DataError) as info:
        read_table(write(tmp_path / "t.csv", text))
    err = info.value
    assert err.message.startswith("2 problem(s) in ")
    assert [d["line"] for d in err.details] == [3, 5]
    assert "row has 3 field(s), the header has 2" in err.details[0]["message"]
    assert "row has 1 field(s), the header has 2" in err.details[1]["message"]
    assert "t.csv:3" in err.message and "t.csv:5" in err.message


def test_csv_unclosed_quote_reported(tmp_path: Path) -> None:
    # The quote opened on line 3 swallows the rest of the file into one field (1 column: no ragged row).
    with pytest.raises(DataError) as info:
        read_table(write(tmp_path / "t.csv", 'text\nfine\n"broken\nmore\nend\n'))
    assert info.value.details[0]["line"] == 3
    assert "never closed" in info.value.message


def test_csv_field_over_default_limit(tmp_path: Path) -> None:
    big = "x" * 300_000  # the csv module's default field limit is 131072
    table = read_table(write(tmp_path / "t.csv", f"text\n{big}\n"))
    assert table.rows[0]["text"] == big


def test_csv_header_only_has_no_rows_and_empty_file_errors(tmp_path: Path) -> None:
    assert read_table(write(tmp_path / "h.csv", "a,b\n")).rows == []
    with pytest.raises(DataError, match="empty"):
        read_table(write(tmp_path / "e.csv", ""))


# ---------------------------------------------------------------------------------------- TSV


def test_tsv_keeps_bare_quotes(tmp_path: Path) -> None:
    text = 'src\ttgt\n"Hi," she said\t"Hallo", sagte sie\nit\'s 5" long\tes ist 5" lang\n'
    table = read_table(write(tmp_path / "t.tsv", text))
    assert table.rows == [
        {"src": '"Hi," she said', "tgt": '"Hallo", sagte sie'},
        {"src": "it's 5\" long", "tgt": 'es ist 5" lang'},
    ]
    assert table.lines == [2, 3]


def test_tsv_ragged_row(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        read_table(write(tmp_path / "t.tsv", "a\tb\nx\ty\tz\n"))
    assert info.value.details[0]["line"] == 2


# ----------------------------------------------------------------------------------- encoding


def test_latin1_file_names_line_and_byte_then_reads_with_encoding(tmp_path: Path) -> None:
    path = write(tmp_path / "l.csv", "text,label\nok,1\ncafé au lait,2\n", encoding="latin-1")
    with pytest.raises(DataError) as info:
        read_table(path)
    err = info.value
    # "text,label\n" is 11 bytes, "ok,1\n" 5 more: line 3 starts at offset 16; "caf" puts é at 19.
    assert "l.csv:3" in err.message
    assert "0xe9" in err.message
    assert "byte 4 of the line" in err.message
    assert "offset 19" in err.message
    assert "--encoding latin-1" in err.hint
    assert err.details[0]["byte_offset"] == 19
    table = read_table(path, encoding="latin-1")
    assert table.rows[1] == {"text": "café au lait", "label": "2"}


def test_nul_characters_suggest_utf16(tmp_path: Path) -> None:
    path = tmp_path / "u16.csv"
    path.write_bytes("a,b\n1,2\n".encode("utf-16-le"))
    with pytest.raises(DataError) as info:
        read_table(path)
    assert "utf-16" in info.value.hint


def test_unknown_encoding(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown encoding 'klingon'"):
        read_table(write(tmp_path / "t.csv", "a\n1\n"), encoding="klingon")


# -------------------------------------------------------------------------------------- JSONL


def test_jsonl_blank_lines_counted_and_lines_kept(tmp_path: Path) -> None:
    text = '{"a": 1}\n\n   \n{"a": 2, "b": [1, 2]}\r\n\n{"c": null}\n'
    table = read_table(write(tmp_path / "t.jsonl", text))
    assert table.rows == [{"a": 1}, {"a": 2, "b": [1, 2]}, {"c": None}]
    assert table.lines == [1, 4, 6]
    assert table.skipped_blank_lines == 3
    assert table.columns == ["a", "b", "c"]


def test_jsonl_bad_lines_reported_with_line_numbers(tmp_path: Path) -> None:
    text = '{"a": 1}\n{"a": 2,}\n\n[1, 2]\n"text"\n{"a": 3}\n'
    with pytest.raises(DataError) as info:
        read_table(write(tmp_path / "t.jsonl", text))
    err = info.value
    assert err.message.startswith("3 problem(s)")
    assert [d["line"] for d in err.details] == [2, 4, 5]
    assert "not valid JSON" in err.details[0]["message"]
    assert "an array" in err.details[1]["message"]
    assert "a string" in err.details[2]["message"]


def test_jsonl_keeps_u2028_inside_strings(tmp_path: Path) -> None:
    text = '{"t": "one\u2028two\u2029three\x85four"}\n{"t": "next"}\n'
    table = read_table(write(tmp_path / "t.jsonl", text))
    assert table.rows[0]["t"] == "one\u2028two\u2029three\x85four"
    assert table.lines == [1, 2]


def test_jsonl_record_over_one_mib(tmp_path: Path) -> None:
    big = "w " * 700_000  # 1.4 MB of text in one record
    text = json.dumps({"t": "small"}) + "\n" + json.dumps({"t": big}) + "\n" + json.dumps({"t": "after"}) + "\n"
    table = read_table(write(tmp_path / "t.jsonl", text))
    assert len(table.rows) == 3
    assert table.rows[1]["t"] == big
    assert table.lines == [1, 2, 3]


def test_jsonl_that_is_a_json_array_is_read_with_a_warning(tmp_path: Path) -> None:
    text = '[\n  {"a": 1},\n  {"a": 2,\n   "b": 3}\n]\n'
    table = read_table(write(tmp_path / "t.jsonl", text))
    assert table.rows == [{"a": 1}, {"a": 2, "b": 3}]
    assert table.lines == [2, 3]
    assert table.columns == ["a", "b"]
    assert len(table.warnings) == 1
    assert "JSON array, not JSON Lines" in table.warnings[0].message
    assert table.warnings[0].severity == "warning"


def test_empty_jsonl_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty"):
        read_table(write(tmp_path / "t.jsonl", "\n  \n"))


# --------------------------------------------------------------------------------------- JSON


def test_json_array_lines_and_bad_elements(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "t.json", '[{"a": "x"},\n{"a": "y"}]'))
    assert table.rows == [{"a": "x"}, {"a": "y"}]
    assert table.lines == [1, 2]
    with pytest.raises(DataError) as info:
        read_table(write(tmp_path / "bad.json", '[\n{"a": 1},\n2,\n{"a": 3}\n]'))
    assert [d["line"] for d in info.value.details] == [3]


def test_json_object_with_records_inside_gets_a_hint(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        read_table(write(tmp_path / "t.json", '{"version": 1,\n "data": [{"a": 1}]}'))
    assert "'data'" in info.value.hint


def test_json_extension_holding_json_lines(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "t.json", '{"a": 1}\n{"a": 2}\n'))
    assert table.rows == [{"a": 1}, {"a": 2}]
    assert "JSON Lines" in table.warnings[0].message


# ------------------------------------------------------------------------------------ parquet


def test_parquet_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    data = {"text": ["a", None, "c"], "label": [1, 2, 3], "tags": [["O"], ["B-PER", "I-PER"], []]}
    pq.write_table(pa.table(data), path)
    table = read_table(path)
    assert table.format == "parquet"
    assert table.columns == ["text", "label", "tags"]
    assert table.rows == [
        {"text": "a", "label": 1, "tags": ["O"]},
        {"text": None, "label": 2, "tags": ["B-PER", "I-PER"]},
        {"text": "c", "label": 3, "tags": []},
    ]
    assert table.lines == [1, 2, 3]


def test_parquet_garbage_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="Parquet"):
        read_table(write(tmp_path / "t.parquet", "not parquet"))


# ----------------------------------------------------------------------------- problems, hash


def test_problem_formatting_and_raise_if_errors() -> None:
    problem = Problem("empty text", "train.csv", 12, "review", "''", "fill it in")
    assert problem.location() == "train.csv:12, column 'review'"
    assert str(problem) == "train.csv:12, column 'review': empty text (value '') — fill it in"
    assert Problem("x", value="y" * 200).value == "y" * 77 + "..."
    assert Problem("x", value=[1, 2]).value == "[1, 2]"
    raise_if_errors([Problem("just a warning", severity="warning")], "t.csv")  # no error
    problems = [Problem(f"bad {i}", "t.csv", i + 2) for i in range(25)]
    with pytest.raises(DataError) as info:
        raise_if_errors(problems, "t.csv")
    lines = info.value.message.splitlines()
    assert lines[0] == "25 problem(s) in t.csv:"
    assert lines[1] == "t.csv:2: bad 0"
    assert lines[-1] == "... and 5 more"
    assert len(lines) == 22
    assert len(info.value.details) == 25


def test_sha256_file(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", "abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    big = tmp_path / "big.bin"
    big.write_bytes(b"a" * (3 * 1024 * 1024 + 5))
    import hashlib

    assert sha256_file(big) == hashlib.sha256(big.read_bytes()).hexdigest()
