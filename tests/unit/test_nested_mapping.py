"""Nested JSON fields in a column mapping (``--map sentence1=review.body``), and every ``--map`` that
an error suggests is a mapping that works (taken from the error and run again)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fmhub.data.json_records import get_path, nested_paths
from fmhub.data.mapping import apply_mapping, parse_map_options, resolve_mapping
from fmhub.data.readers import read_table
from fmhub.errors import DataError
from fmhub.services.data_prep import prepare_data
from fmhub.services.specs import DataSpec
from fmhub.tasks import get_task
from fmhub.data.schema import TaskSchema

CLS = get_task("text-classification")
POS = ["good movie", "great film", "love this plot", "wonderful acting"]
NEG = ["bad movie", "awful film", "hate this plot", "boring acting"]


def nested_jsonl(path: Path, n: int = 24, label_key: str = "verdict") -> Path:
    """Reviews as ``{"id", "review": {"body", "meta": {<label_key>}}}``, one per line."""
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            text, label = (POS[i % 4], "pos") if i % 2 else (NEG[i % 4], "neg")
            f.write(json.dumps({"id": i, "review": {"body": text, "meta": {label_key: label, "lang": "en"}}}) + "\n")
    return path


def spec(path: Path, mapping: dict[str, str] | None = None, **kw) -> DataSpec:
    return DataSpec(train=str(path), validation="none", test="none", column_mapping=mapping or {}, **kw)


def suggested_maps(hint: str) -> dict[str, str]:
    """The ``--map KEY=COLUMN`` options a hint suggests."""
    return parse_map_options(re.findall(r"--map (\S+?=\S+?)(?:\?|,|\s|$)", hint))


def test_nested_paths_and_get_path() -> None:
    rows = [{"a": {"b": 1, "c": {"d": 2}}, "x": 3}, {"a": {"e": None}, "k.y": {"z": 4}}]
    assert nested_paths(rows) == ["a.b", "a.c", "a.c.d", "a.e", "k.y.z"]
    assert get_path(rows[0], "a.c.d") == 2 and get_path(rows[0], "a.q") is None
    assert get_path(rows[1], "k.y.z") == 4 and get_path(rows[0], "x.y") is None


def test_jsonl_table_lists_nested_columns(tmp_path: Path) -> None:
    table = read_table(nested_jsonl(tmp_path / "r.jsonl", n=2))
    assert table.columns == ["id", "review"]
    assert table.nested_columns == ["review.body", "review.meta", "review.meta.verdict", "review.meta.lang"]


def test_dotted_path_maps_a_nested_field(tmp_path: Path) -> None:
    table = read_table(nested_jsonl(tmp_path / "r.jsonl", n=2))
    mapping = resolve_mapping(table.columns, CLS.schema,
                              {"sentence1": "review.body", "label": "review.meta.verdict"},
                              file="r.jsonl", nested=table.nested_columns)
    assert apply_mapping(table, mapping) == [{"sentence1": "bad movie", "label": "neg"},
                                             {"sentence1": "great film", "label": "pos"}]


def test_nested_jsonl_validates_with_dotted_paths(tmp_path: Path) -> None:
    path = nested_jsonl(tmp_path / "r.jsonl")
    prepared = prepare_data(spec(path, {"sentence1": "review.body", "label": "review.meta.verdict"}),
                            CLS, None, 128, 42)
    assert prepared.report.ok, prepared.report.errors
    assert prepared.report.mapping == ["sentence1 <- review.body", "label <- review.meta.verdict"]
    assert prepared.splits["train"].rows[1] == {"sentence1": "great film", "label": "pos"}
    assert prepared.report.splits[0].distribution == {"neg": 12, "pos": 12}


def test_nested_json_array_and_missing_field_is_none(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps([{"review": {"body": "good", "stars": "pos"}}, {"review": {"stars": "neg"}}]))
    table = read_table(path)
    mapping = resolve_mapping(table.columns, CLS.schema, {"sentence1": "review.body"}, nested=table.nested_columns)
    assert mapping.columns == {"sentence1": "review.body", "label": "review.stars"} and mapping.auto == ["label"]
    assert [r["sentence1"] for r in apply_mapping(table, mapping)] == ["good", None]


def test_automatic_mapping_offers_a_nested_field_by_its_name(tmp_path: Path) -> None:
    path = nested_jsonl(tmp_path / "r.jsonl", label_key="label")
    table = read_table(path)
    with pytest.raises(DataError) as info:  # review is an object: not taken for sentence1
        resolve_mapping(table.columns, CLS.schema, {}, file=str(path), nested=table.nested_columns)
    assert "'sentence1'" in info.value.message and "'label'" not in info.value.message
    assert suggested_maps(info.value.hint) == {"sentence1": "review.body"}


def test_a_top_level_column_wins_over_a_nested_one(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"text": "good", "label": "pos", "meta": {"label": "x"}}) + "\n")
    table = read_table(path)
    mapping = resolve_mapping(table.columns, CLS.schema, {}, nested=table.nested_columns)
    assert mapping.columns == {"sentence1": "text", "label": "label"}


def test_mapping_an_object_column_suggests_a_field_inside_it(tmp_path: Path) -> None:
    path = nested_jsonl(tmp_path / "r.jsonl")
    with pytest.raises(DataError) as info:
        prepare_data(spec(path, {"sentence1": "review", "label": "review.meta.verdict"}), CLS, None, 128, 42)
    assert "holds objects" in info.value.message and "review.body" in info.value.message
    fixed = {"label": "review.meta.verdict", **suggested_maps(info.value.hint)}
    assert prepare_data(spec(path, fixed), CLS, None, 128, 42).report.ok


QA_ROWS = [{"q": {"text": "who?"}, "ctx": "Ann went home.", "answers": {"text": ["Ann"], "answer_start": [0]}}]


# Each case: a file, the task, the user's --map, and the error that names a fix. Taking the fix from
# the error's hint (joined to the user's own maps) must validate.
CASES = {
    "nested label by its alias": ({"review": {"body": "good movie", "stars": "pos"}}, "text-classification",
                                  {}, None),
    "typo in a dotted path": ({"review": {"body": "good movie", "stars": "pos"}}, "text-classification",
                              {"sentence1": "review.bdy"}, None),
    "leaf name without its parent": ({"review": {"body": "good movie"}, "y": "pos"}, "text-classification",
                                     {"sentence1": "body"}, None),
    "typo in a flat column": ({"reviewtext": "good movie", "label": "pos"}, "text-classification",
                              {"sentence1": "review_text"}, None),
    "two keys, two distinct suggestions": ({"sentence": "good movie", "labl": "pos"}, "text-classification",
                                           {"sentence1": "sentense", "label": "lable"}, None),
    "ambiguous columns": ({"TEXT": "good movie", "Text": "good movie", "label": "pos"}, "text-classification",
                          {}, None),
    "nested question": (QA_ROWS[0], "question-answering", {"context": "ctx"}, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_suggested_mapping_works(tmp_path: Path, case: str) -> None:
    row, task_name, user_map, _ = CASES[case]
    task = get_task(task_name)
    path = tmp_path / "data.jsonl"
    rows = [row] * 4 if task_name != "text-classification" else \
        [row, {**json.loads(json.dumps(row).replace("good movie", "bad film").replace('"pos"', '"neg"'))}] * 2
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError) as info:
        prepare_data(spec(path, user_map), task, None, 128, 42)
    hints = [info.value.hint] + [d.get("hint", "") for d in info.value.details or [] if isinstance(d, dict)]
    suggested: dict[str, str] = {}
    for hint in hints:
        suggested.update(suggested_maps(hint))
    assert suggested, f"no --map suggested: {info.value.message} / {hints}"
    assert "COLUMN" not in suggested.values()
    fixed = {**user_map, **suggested}
    prepared = prepare_data(spec(path, fixed), task, None, 128, 42)
    assert prepared.report.ok, [str(p) for p in prepared.report.errors]


def test_fine_tune_on_a_nested_jsonl_with_dotted_paths(ctx, tiny_bert, tmp_path: Path) -> None:
    from fmhub.services.finetune import run_finetune
    from fmhub.services.models import import_model
    from fmhub.services.specs import FinetuneSpec

    import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification", license="apache-2.0")
    train = nested_jsonl(tmp_path / "reviews.jsonl", n=40)
    job = FinetuneSpec(model="tiny-bert:1", task="text-classification",
                       data={"train": str(train), "test": "none",
                             "column_mapping": {"sentence1": "review.body", "label": "review.meta.verdict"}},
                       hyperparameters={"max_steps": 2, "per_device_train_batch_size": 8},
                       registered_model_name="nested", device="cpu")
    result = run_finetune(ctx, job)
    assert result.model_version.ref == "nested:1"
    assert result.model_version.lineage["labels"] == ["neg", "pos"]
    assert 0.0 <= result.metrics["validation"]["accuracy"] <= 1.0


def test_wizard_mapping_offers_nested_fields(ctx, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the app's default data root: the folder it was started from
    from local_client import local_client

    from fmhub.api.app import create_app

    path = nested_jsonl(tmp_path / "r.jsonl", n=4, label_key="stars")
    with local_client(create_app(ctx, serve_endpoints=False)) as client:
        page = client.post("/ui/wizard/mapping", data={
            "wizard.source": "data.train", "wizard.part": "mapping", "task": "text-classification",
            "data.train": str(path), "data.column_mapping.sentence1": "review.body"})
    assert page.status_code == 200, page.text
    assert '<option value="review.body" selected>' in page.text
    assert '<option value="review.meta.stars" selected>' in page.text  # label matched by its name
