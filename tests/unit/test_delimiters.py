"""CSV delimiters: `;`, `|` and tab headers are detected, `--delimiter` overrides, and the report
and the data preview say which delimiter was used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmhub.data.readers import parse_delimiter, read_table, sniff_delimiter
from fmhub.errors import DataError, SpecError
from fmhub.services.data_prep import prepare_data
from fmhub.services.specs import DataSpec, ReadOptions, build_spec
from fmhub.tasks import get_task

ROWS = [("a fine film; really", "pos"), ("dull, and long", "neg"), ("good", "pos"), ("bad", "neg")]


def write_csv(path: Path, sep: str) -> Path:
    """A review CSV separated by ``sep``; cells holding the separator are quoted."""
    lines = [sep.join(["text", "label"])]
    for text, label in ROWS:
        cell = f'"{text}"' if sep in text else text
        lines.append(sep.join([cell, label]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("sep", "name"), [(";", "semicolon"), ("|", "pipe"), ("\t", "tab"), (",", "comma")])
def test_delimiter_is_detected_from_the_header(tmp_path: Path, sep: str, name: str) -> None:
    table = read_table(write_csv(tmp_path / f"{name}.csv", sep))
    assert table.columns == ["text", "label"] and table.delimiter == sep
    assert [(r["text"], r["label"]) for r in table.rows] == ROWS


@pytest.mark.parametrize(("sep", "name"), [(";", "semicolon"), ("|", "pipe"), ("\t", "tab")])
def test_validation_report_names_the_delimiter(tmp_path: Path, sep: str, name: str) -> None:
    path = write_csv(tmp_path / "reviews.csv", sep)
    spec = DataSpec(train=str(path), validation="none", test="none")
    prepared = prepare_data(spec, get_task("text-classification"), None, 128, 42)
    assert prepared.report.ok
    assert prepared.splits["train"].rows[0] == {"sentence1": "a fine film; really", "label": "pos"}
    [note] = [n for n in prepared.report.notes if "separated by" in n]
    assert f"{path}: fields separated by {sep!r} ({name}), detected from the header" in note
    assert note in prepared.report.to_dict()["notes"]


def test_header_counts_only_delimiters_outside_quotes() -> None:
    assert sniff_delimiter('"a;b;c",label\n') == ","
    assert sniff_delimiter('"a,b";label;x\n') == ";"
    assert sniff_delimiter("text\n") == ","


def write_plain(path: Path, sep: str) -> Path:
    """Like :func:`write_csv` with texts that hold no delimiter at all."""
    path.write_text("\n".join(sep.join(r) for r in [("text", "label"), ("good", "pos"), ("bad", "neg")]) + "\n",
                    encoding="utf-8")
    return path


def test_delimiter_option_overrides_detection(tmp_path: Path) -> None:
    path = write_plain(tmp_path / "semi.csv", ";")
    forced = read_table(path, delimiter=",")
    assert forced.columns == ["text;label"] and forced.delimiter == ","
    assert read_table(path, delimiter="semicolon").columns == ["text", "label"]
    spec = DataSpec(train=str(path), validation="none", test="none", delimiter=";")
    report = prepare_data(spec, get_task("text-classification"), None, 128, 42).report
    assert any("';' (semicolon), as given by --delimiter" in n for n in report.notes)


def test_a_header_read_as_one_column_suggests_the_delimiter_that_works(tmp_path: Path) -> None:
    path = write_plain(tmp_path / "semi.csv", ";")
    spec = DataSpec(train=str(path), validation="none", test="none", delimiter=",")
    with pytest.raises(DataError) as err:
        prepare_data(spec, get_task("text-classification"), None, 128, 42)
    hint = err.value.hint or ""
    assert "--delimiter semicolon" in hint and "--map" not in hint, hint
    followed = DataSpec(train=str(path), validation="none", test="none", delimiter="semicolon")
    assert prepare_data(followed, get_task("text-classification"), None, 128, 42).report.ok  # the hint works


def test_delimiter_option_on_a_tsv_file(tmp_path: Path) -> None:
    path = tmp_path / "data.tsv"
    path.write_text("text|label\ngood|pos\n", encoding="utf-8")
    assert read_table(path).columns == ["text|label"]
    assert read_table(path, delimiter="|").rows == [{"text": "good", "label": "pos"}]


def test_ragged_row_hint_names_the_detected_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("text;label\ngood;pos\nbad;neg;extra\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_table(path)
    assert info.value.details[0]["line"] == 3 and "';' (semicolon)" in info.value.hint


def test_delimiter_names_and_invalid_values() -> None:
    assert [parse_delimiter(v) for v in (None, "auto", "tab", "\\t", "\t", "PIPE", ";")] == \
        [None, None, "\t", "\t", "\t", "|", ";"]
    for bad in ("ab", '"', "\n"):
        with pytest.raises(DataError, match="delimiter"):
            parse_delimiter(bad)
    assert ReadOptions(delimiter="semicolon").delimiter == ";"
    with pytest.raises(SpecError, match="delimiter: invalid delimiter"):
        build_spec(DataSpec, {"train": "x.csv", "delimiter": "::"}, "the flags")


def test_cli_data_validate_detects_and_takes_delimiter(tmp_path: Path, monkeypatch) -> None:
    from fmhub.cli.app import app

    monkeypatch.setenv("FMHUB_HOME", str(tmp_path / "home"))
    path = write_plain(tmp_path / "semi.csv", ";")
    runner = CliRunner()
    args = ["data", "validate", str(path), "--task", "text-classification", "--validation", "none",
            "--test", "none", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert any("';' (semicolon)" in n for n in report["notes"])
    forced = runner.invoke(app, [*args, "--delimiter", ","])
    assert forced.exit_code != 0 and "text;label" in forced.output


def test_preview_shows_the_delimiter(ctx, tmp_path: Path) -> None:
    from fmhub.services.data_preview import preview

    path = write_plain(tmp_path / "pipe.csv", "|")
    shown = preview(ctx, str(path), "text-classification")
    assert shown["delimiter"] == "|" and shown["columns"] == ["text", "label"]
    assert shown["report"]["ok"]
    assert preview(ctx, str(path), "text-classification", {"delimiter": ","})["columns"] == ["text|label"]


def test_data_asset_keeps_the_delimiter_for_later_jobs(ctx, tmp_path: Path) -> None:
    from fmhub.services.assets import create_data_asset, resolve_data_spec

    path = write_csv(tmp_path / "semi.csv", ";")
    asset, _ = create_data_asset(ctx, str(path), "semi", task="text-classification")
    assert asset.read_options["delimiter"] == ";" and asset.columns == ["text", "label"]
    spec = resolve_data_spec(ctx, DataSpec(train=asset.ref, validation="none", test="none"), "text-classification")
    assert spec.delimiter == ";"


def test_wizard_mapping_shows_and_changes_the_delimiter(ctx, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the app's default data root: the folder it was started from
    from local_client import local_client

    from fmhub.api.app import create_app

    path = write_plain(tmp_path / "semi.csv", ";")
    with local_client(create_app(ctx, serve_endpoints=False)) as client:
        base = {"wizard.source": "data.train", "wizard.part": "mapping", "task": "text-classification",
                "data.train": str(path)}
        page = client.post("/ui/wizard/mapping", data=base)
        assert page.status_code == 200, page.text
        assert "fields separated by <code>;</code>" in page.text
        assert 'name="data.delimiter"' in page.text and "as detected (semicolon)" in page.text
        assert '<option value="text" selected>' in page.text  # columns read with ';'
        forced = client.post("/ui/wizard/mapping", data={**base, "data.delimiter": ","})
        assert '<option value="text;label"' in forced.text
        assert '<option value="," selected>' in forced.text


def test_delimiter_flag_reaches_the_finetune_and_evaluate_specs() -> None:
    from fmhub.cli.evaluate import EvaluateFlags, build_evaluate_spec
    from fmhub.cli.finetune import build_finetune_spec
    from fmhub.ui.evaluate_form import cli_command

    finetune = build_finetune_spec(None, {"model": "all-MiniLM-L6-v2", "task": "text-classification",
                                          "train": "t.csv", "delimiter": "semicolon"})
    assert finetune.data.delimiter == ";"
    assert build_finetune_spec(None, {"model": "m", "task": "text-classification", "train": "t.csv"}).data.delimiter is None
    evaluate = build_evaluate_spec("m:1", EvaluateFlags(test="t.csv", task="text-classification", delimiter="|"))
    assert evaluate.data.delimiter == "|"
    assert "--delimiter '|'" in cli_command([evaluate])
