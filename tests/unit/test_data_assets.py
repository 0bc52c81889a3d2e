"""Data assets: `fmhub data create` semantics (validated, versioned, identical content reused) and
``NAME:VERSION`` references wherever a data path is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmhub.errors import DataError, NotFoundError
from fmhub.services.assets import create_data_asset, get_data_asset, list_assets, resolve_data_ref
from fmhub.services.specs import ReadOptions

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "data"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_create_validates_copies_and_reuses_identical_content(ctx, tmp_path):
    data = write(tmp_path / "reviews.csv", "review,stars\ngood film,pos\nbad film,neg\nfun plot,pos\n")
    asset, created = create_data_asset(ctx, str(data), "reviews", task="text-classification")
    assert created and asset.ref == "reviews:1" and asset.rows == 3 and asset.columns == ["review", "stars"]
    assert asset.task == "text-classification" and asset.column_mapping == {"sentence1": "review", "label": "stars"}
    assert asset.report["ok"] and asset.report["splits"][0]["distribution"] == {"neg": 1, "pos": 2}
    assert Path(asset.path).read_bytes() == data.read_bytes() and Path(asset.path) != data
    again, created = create_data_asset(ctx, str(data), "reviews", task="text-classification")
    assert not created and again.ref == "reviews:1"
    write(data, "review,stars\ngood film,pos\nbad film,neg\n")
    changed, created = create_data_asset(ctx, str(data), "reviews", task="text-classification")
    assert created and changed.ref == "reviews:2" and changed.rows == 2
    assert Path(asset.path).read_text(encoding="utf-8").count("\n") == 4  # version 1 is unchanged
    assert [a.ref for a in list_assets(ctx, "reviews")] == ["reviews:2", "reviews:1"]
    assert get_data_asset(ctx, "reviews").ref == "reviews:2" and get_data_asset(ctx, "reviews:1").rows == 3


def test_create_refuses_data_with_errors_and_registers_nothing(ctx):
    with pytest.raises(DataError) as info:
        create_data_asset(ctx, str(ASSETS / "ner_mismatch.jsonl"), "ner", task="token-classification")
    assert "3 tokens but 2 tags" in str(info.value)
    assert list_assets(ctx) == []


def test_create_keeps_reading_options(ctx):
    asset, _ = create_data_asset(ctx, str(ASSETS / "latin1.csv"), "latin", options=ReadOptions(encoding="latin-1"))
    assert asset.read_options == {"format": "csv", "encoding": "latin-1"} and asset.task is None


def test_references_resolve_and_files_win(ctx, tmp_path, monkeypatch):
    data = write(tmp_path / "reviews.csv", "review,stars\ngood film,pos\nbad film,neg\n")
    create_data_asset(ctx, str(data), "reviews")
    assert resolve_data_ref(ctx, "reviews:1").path.endswith("reviews.csv")
    assert resolve_data_ref(ctx, "reviews:latest").version == 1
    assert resolve_data_ref(ctx, str(data)) is None and resolve_data_ref(ctx, "auto") is None
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "reviews:1", "a file with that name wins")
    assert resolve_data_ref(ctx, "reviews:1") is None
    with pytest.raises(NotFoundError, match="no data asset 'other' version 2"):
        resolve_data_ref(ctx, "other:2")


def test_finetune_validation_reads_an_asset_reference(ctx, tmp_path, tiny_bert):
    from fmhub.services.finetune import validate
    from fmhub.services.models import import_model
    from fmhub.services.specs import FinetuneSpec

    import_model(ctx, tiny_bert, name="tiny", task="text-classification")
    rows = "".join(f"{w} movie,{'pos' if w in ('good', 'fun') else 'neg'}\n" for w in ["good", "bad", "fun", "dull"] * 5)
    data = write(tmp_path / "reviews.csv", "review,stars\n" + rows)
    create_data_asset(ctx, str(data), "reviews", task="text-classification")
    spec = FinetuneSpec(model="tiny:1", task="text-classification", data={"train": "reviews:1", "test": "none"})
    *_, prepared = validate(ctx, spec)
    assert prepared.report.ok
    assert prepared.report.splits[0].source.startswith("reviews:1 (")
    assert len(prepared.splits["train"]) + len(prepared.splits["validation"]) == 20


@pytest.mark.parametrize("bad", ["../../escape", "a/../y", "x:2", ""])
def test_asset_names_cannot_leave_the_store_or_look_like_references(ctx, tmp_path, bad):
    from fmhub.errors import SpecError

    data = write(tmp_path / "reviews.csv", "review,stars\ngood film,pos\nbad film,neg\n")
    with pytest.raises(SpecError, match="invalid data asset name"):
        create_data_asset(ctx, str(data), bad)
    assert list_assets(ctx) == []


def test_the_stored_mapping_and_label_options_are_used_and_new_options_make_a_new_version(ctx, tmp_path):
    from fmhub.services.assets import resolve_data_spec
    from fmhub.services.specs import DataSpec

    data = write(tmp_path / "odd.csv", "foo,bar\ngood film,1\nbad film,0\nfun,1.0\n")
    with pytest.raises(DataError, match="labels '1', '1.0' are the number 1 written differently"):
        create_data_asset(ctx, str(data), "odd", task="text-classification",
                          options=ReadOptions(column_mapping={"sentence1": "foo", "label": "bar"}))
    first, _ = create_data_asset(ctx, str(data), "odd", task="text-classification",
                                 options=ReadOptions(column_mapping={"sentence1": "foo", "label": "bar"},
                                                     label_type="string"))
    assert first.read_options["label_type"] == "string"
    assert first.report["splits"][0]["distribution"] == {"0": 1, "1": 1, "1.0": 1}
    second, created = create_data_asset(ctx, str(data), "odd", task="text-classification",
                                        options=ReadOptions(column_mapping={"sentence1": "foo", "label": "bar"},
                                                            label_type="int"))
    assert created and second.ref == "odd:2" and second.read_options["label_type"] == "int"
    assert second.report["splits"][0]["distribution"] == {"0": 1, "1": 2}
    spec = resolve_data_spec(ctx, DataSpec(train="odd:2"), "text-classification")
    assert spec.column_mapping == {"sentence1": "foo", "label": "bar"} and spec.label_type == "int"
    assert resolve_data_spec(ctx, DataSpec(train="odd:2"), "summarization").column_mapping == {}
