"""The data preview behind the wizards' mapping step (``services.data_preview``), its REST twin, and
the fine-tune form -> ``FinetuneSpec`` conversion."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

import pytest
import yaml

from fmhub.errors import NotFoundError, SpecError
from fmhub.services.assets import create_data_asset
from fmhub.services.data_preview import preview


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


REVIEWS = "review,stars,comment\n" + "".join(
    f"{'good film' if i % 2 else 'bad film'} {i},{'pos' if i % 2 else 'neg'},{'x' if i == 3 else ''}\n"
    for i in range(12))


def test_columns_are_matched_by_name_and_rows_checked(ctx, tmp_path):
    data = write(tmp_path / "reviews.csv", REVIEWS)
    out = preview(ctx, str(data), "text-classification")
    assert out["columns"] == ["review", "stars", "comment"] and out["total_rows"] == 12
    assert out["column_mapping"] == {"sentence1": "review", "label": "stars"}
    keys = {k["key"]: k for k in out["keys"]}
    assert keys["sentence1"]["auto"] and keys["label"]["required"] and not keys["sentence2"]["required"]
    assert keys["sentence2"]["column"] is None
    assert len(out["rows"]) == 5 and out["rows"][0] == {"review": "bad film 0", "stars": "neg", "comment": None}
    report = out["report"]
    assert report["ok"] and report["errors"] == []
    assert report["splits"][0]["distribution"] == {"neg": 6, "pos": 6}
    assert out["key_problems"] == {}


def test_a_required_key_without_a_column_is_an_error_not_an_exception(ctx, tmp_path):
    data = write(tmp_path / "texts.csv", "review,comment\ngood,a\nbad,b\n")
    out = preview(ctx, str(data), "text-classification")
    assert out["column_mapping"] == {"sentence1": "review"}
    assert not out["report"]["ok"]
    assert [p["message"] for p in out["key_problems"]["label"]] == [
        "no column for required key 'label'; columns are ['review', 'comment']"]
    assert out["rows"][1] == {"review": "bad", "comment": "b"}  # the rows are still shown


def test_a_column_not_in_the_file_is_reported_for_its_key(ctx, tmp_path):
    data = write(tmp_path / "reviews.csv", REVIEWS)
    out = preview(ctx, str(data), "text-classification", {"column_mapping": {"label": "rating"}})
    assert not out["report"]["ok"]
    messages = [p["message"] for p in out["key_problems"]["label"]]
    assert any("column 'rating' (for key 'label') is not in" in m for m in messages)


def test_bad_label_rows_are_reported_with_their_lines(ctx, tmp_path):
    data = write(tmp_path / "reviews.csv", REVIEWS)
    out = preview(ctx, str(data), "text-classification", {"column_mapping": {"label": "comment"}})
    report = out["report"]
    assert not report["ok"]
    missing = [e for e in report["errors"] if e["message"] == "missing label"]
    assert [e["line"] for e in missing] == [2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13]  # row 3 (line 5) has one
    assert {e["column"] for e in missing} == {"comment"}
    group = out["key_problems"]["label"][0]
    assert group["message"] == "missing label" and group["count"] == 11 and group["lines"] == [2, 3, 4, 6, 7]
    assert "sentence1" not in out["key_problems"]


def test_dropping_bad_rows_turns_errors_into_dropped_rows(ctx, tmp_path):
    data = write(tmp_path / "reviews.csv", "review,stars\ngood,pos\nbad,\nfine,pos\nawful,neg\n")
    out = preview(ctx, str(data), "text-classification", {"on_invalid_row": "drop"})
    split = out["report"]["splits"][0]
    assert out["report"]["ok"] and split["rows_kept"] == 3 and split["dropped"][0]["line"] == 3


def test_a_data_asset_is_named_by_its_reference(ctx, tmp_path):
    data = write(tmp_path / "reviews.csv", "review,stars\ngood,pos\nbad,\n")
    asset, _ = create_data_asset(ctx, str(data), "reviews")
    out = preview(ctx, asset.ref, "text-classification", rows=1)
    assert out["data"] == "reviews:1" and out["file"] == "reviews.csv" and len(out["rows"]) == 1
    error = out["report"]["errors"][0]
    assert error["file"] == "reviews:1" and error["line"] == 3
    assert out["report"]["splits"][0]["source"] == "reviews:1"
    with pytest.raises(NotFoundError):
        preview(ctx, "reviews:7", "text-classification")


def test_unknown_task_and_options_are_spec_errors(ctx, tmp_path):
    data = write(tmp_path / "reviews.csv", REVIEWS)
    with pytest.raises(SpecError):
        preview(ctx, str(data), "text-generation-xl")
    with pytest.raises(SpecError, match="on_invalid_row"):
        preview(ctx, str(data), "text-classification", {"on_invalid_row": "skip"})


def test_preview_api_accepts_data_assets_only(ctx, tmp_path):
    from local_client import local_client

    from fmhub.api.app import create_app

    data = write(tmp_path / "reviews.csv", REVIEWS)
    create_data_asset(ctx, str(data), "reviews")
    with local_client(create_app(ctx)) as client:
        ok = client.post("/api/v1/data/preview", json={"data": "reviews:1", "task": "text-classification",
                                                        "column_mapping": {"label": "stars"}, "rows": 2})
        assert ok.status_code == 200, ok.text
        assert ok.json()["column_mapping"] == {"sentence1": "review", "label": "stars"} and len(ok.json()["rows"]) == 2
        path = client.post("/api/v1/data/preview", json={"data": str(data), "task": "text-classification"})
        assert path.status_code == 422 and "data asset" in path.json()["error"]["message"]


def form(query: str) -> dict[str, list[str]]:
    return parse_qs(query, keep_blank_values=True)


def test_the_fine_tune_form_becomes_a_spec_with_only_the_fields_given():
    from fmhub.ui.finetune_form import build_finetune_spec, spec_yaml

    spec = build_finetune_spec(form(
        "model=tiny-bert:1&task=text-classification&data.train=reviews:1"
        "&data.column_mapping.sentence1=review&data.column_mapping.label=stars&data.column_mapping.sentence2="
        "&data.on_invalid_row=&wizard.validation=auto&data.validation_size=0.2&data.validation=other:1"
        "&wizard.test=none&data.test_size=0.1&compute=local&device=cpu"
        "&hyperparameters.learning_rate=3e-5&hyperparameters.num_train_epochs=1&hyperparameters.max_steps=6"
        "&hyperparameters.seed=&registered_model_name=tiny-bert-text-classification&register_model=false"))
    assert spec.data.column_mapping == {"sentence1": "review", "label": "stars"}
    assert spec.data.validation == "auto" and spec.data.validation_size == 0.2 and spec.data.test == "none"
    assert spec.hyperparameters.learning_rate == 3e-5 and spec.hyperparameters.max_steps == 6
    assert spec.register_model is False and spec.device == "cpu"
    text = spec_yaml(spec)
    data = yaml.safe_load(text)
    assert data["data"] == {"train": "reviews:1", "validation": "auto", "test": "none", "validation_size": 0.2,
                            "column_mapping": {"sentence1": "review", "label": "stars"}}
    assert data["hyperparameters"] == {"learning_rate": 3e-5, "num_train_epochs": 1.0, "max_steps": 6}
    assert "seed" not in text and "on_invalid_row" not in text  # defaults stay out


def test_nested_mapping_keys_and_chosen_files_keep_their_names():
    from fmhub.ui.finetune_form import build_finetune_spec

    spec = build_finetune_spec(form(
        "model=m&task=question-answering&data.train=squad:1&data.column_mapping.answers.text=answer"
        "&wizard.validation=file&data.validation=squad-dev:2&wizard.test=file&data.test=squad-test:1"
        "&register_model=false&register_model=true"))
    assert spec.data.column_mapping == {"answers.text": "answer"}
    assert (spec.data.validation, spec.data.test) == ("squad-dev:2", "squad-test:1")
    assert spec.register_model is True


def test_form_problems_name_their_fields():
    from fmhub.ui.finetune_form import build_finetune_spec

    with pytest.raises(SpecError) as info:
        build_finetune_spec(form("model=m&task=text-classification&wizard.validation=file&wizard.test=auto"
                                 "&hyperparameters.learning_rate=fast&hyperparameters.per_device_train_batch_size=0"))
    fields = {d["field"] for d in info.value.details}
    assert fields == {"data.train", "data.validation", "hyperparameters.learning_rate",
                      "hyperparameters.per_device_train_batch_size"}
