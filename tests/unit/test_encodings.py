"""Encodings: a Windows-1252 file is recognised and suggested (not latin-1), and decoding never
turns bytes 0x80-0x9F into C1 control characters in silence."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmhub.data.encodings import C1_CONTROLS, is_cp1252
from fmhub.data.readers import ENCODING_HINT, read_table
from fmhub.errors import DataError
from fmhub.services.data_prep import prepare_data
from fmhub.services.specs import DataSpec
from fmhub.tasks import get_task

# "text,label" / "“great” film,pos" / "bad film – dull,neg" in Windows-1252: 0x93 0x94 are curly
# quotes, 0x96 an en dash; latin-1 maps all three to C1 control characters.
CP1252 = b"text,label\n\x93great\x94 film,pos\nbad film \x96 dull,neg\n"


def cp1252_csv(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv"
    path.write_bytes(CP1252)
    return path


def test_cp1252_file_read_as_utf8_suggests_cp1252_naming_line_and_byte(tmp_path: Path) -> None:
    path = cp1252_csv(tmp_path)
    with pytest.raises(DataError) as info:
        read_table(path)
    err = info.value
    assert f"{path}:2" in err.message and "0x93" in err.message
    assert "--encoding cp1252" in err.hint and "latin-1" not in err.hint
    assert err.details[0]["line"] == 2 and err.details[0]["value"] == "0x93"


def test_cp1252_file_reads_correctly_with_encoding_cp1252(tmp_path: Path) -> None:
    table = read_table(cp1252_csv(tmp_path), encoding="cp1252")
    assert table.rows == [{"text": "\u201cgreat\u201d film", "label": "pos"},
                          {"text": "bad film \u2013 dull", "label": "neg"}]
    assert not table.warnings


def test_the_suggested_encoding_works(tmp_path: Path) -> None:
    path = cp1252_csv(tmp_path)
    with pytest.raises(DataError) as info:
        read_table(path)
    suggested = info.value.hint.split("--encoding ", 1)[1].split(",")[0].split()[0]
    table = read_table(path, encoding=suggested)
    assert not any(C1_CONTROLS.search(row["text"]) for row in table.rows)


@pytest.mark.parametrize("encoding", ["latin-1", "iso-8859-1", "latin1"])
def test_latin1_on_a_cp1252_file_is_reported_not_silent(tmp_path: Path, encoding: str) -> None:
    path = cp1252_csv(tmp_path)
    with pytest.raises(DataError) as info:
        read_table(path, encoding=encoding)
    err = info.value
    assert "3 C1 control character(s)" in err.message and str(path) in err.message
    assert "U+0093 at column 1" in err.message and "(2 on this line)" in err.message
    assert "U+0096 at column 10" in err.message
    assert "--encoding cp1252" in err.hint
    first, second = err.details
    assert (first["file"], first["line"], first["value"]) == (str(path), 2, r"'\x93'")
    assert (second["line"], second["value"]) == (3, r"'\x96'")


def test_latin1_through_a_job_spec_stops_before_training(tmp_path: Path) -> None:
    spec = DataSpec(train=str(cp1252_csv(tmp_path)), validation="none", test="none", encoding="latin-1")
    with pytest.raises(DataError, match="C1 control"):
        prepare_data(spec, get_task("text-classification"), None, 128, 42)


def test_a_latin1_file_without_windows_bytes_keeps_the_latin1_hint(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\u00e9,pos\n".encode("latin-1"))
    with pytest.raises(DataError) as info:
        read_table(path)
    assert info.value.hint == ENCODING_HINT
    assert read_table(path, encoding="latin-1").rows == [{"text": "caf\u00e9", "label": "pos"}]


def test_bytes_undefined_in_cp1252_are_not_called_cp1252(tmp_path: Path) -> None:
    assert is_cp1252(b"\x93a\x94") and not is_cp1252(b"caf\xe9") and not is_cp1252(b"a\x81b\x93")
    path = tmp_path / "odd.csv"
    path.write_bytes(b"text,label\na\x81b,pos\n")
    with pytest.raises(DataError) as info:
        read_table(path)
    assert "cp1252" not in info.value.hint
    with pytest.raises(DataError) as info:
        read_table(path, encoding="latin-1")  # U+0081: still reported, no cp1252 suggestion
    assert "U+0081" in info.value.message and "cp1252" in info.value.hint
    assert "pass --encoding cp1252:" not in info.value.hint


def test_c1_characters_stored_in_a_utf8_file_are_a_warning_naming_the_place(tmp_path: Path) -> None:
    path = tmp_path / "mojibake.jsonl"
    path.write_text('{"text": "ok", "label": "a"}\n{"text": "\u0093bad\u0094", "label": "b"}\n', encoding="utf-8")
    table = read_table(path)
    assert len(table.rows) == 2
    [warning] = table.warnings
    assert warning.severity == "warning" and warning.line == 2 and warning.value == r"'\x93'"
    assert "U+0093 at column 11" in warning.message


def test_c1_warning_reaches_the_validation_report(tmp_path: Path) -> None:
    path = tmp_path / "mojibake.csv"
    path.write_text("text,label\n\u0093good\u0094,pos\nbad,neg\n", encoding="utf-8")
    spec = DataSpec(train=str(path), validation="none", test="none")
    report = prepare_data(spec, get_task("text-classification"), None, 128, 42).report
    assert report.ok
    assert any("C1 control character U+0093" in w.message and w.line == 2 for w in report.warnings)
