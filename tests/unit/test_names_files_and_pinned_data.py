"""A server reads a ``label_names`` / ``tag_names`` file only under its data roots, and a queued
spec holds no path of the submitting machine for them (the names are put inline) nor a moving
``NAME:latest`` data reference (pinned to the version that was latest at submit)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import write_sentiment_csv
from fmhub.errors import ForbiddenPathError
from fmhub.services.data_roots import DataRoots

OUTSIDE_NAMES = "/etc/passwd"


@pytest.fixture
def roots(tmp_path):
    """``root/`` holding ``train.csv`` (integer labels 0/1) and ``names.txt``; ``outside/names.txt``."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    write_sentiment_csv(root / "train.csv", n=40, labels=("0", "1"))
    (root / "names.txt").write_text("negative\npositive\n")
    (outside / "names.txt").write_text("secret-a\nsecret-b\n")
    return root, outside


@pytest.mark.parametrize("names", ["outside", OUTSIDE_NAMES])
def test_a_label_names_file_outside_the_roots_is_refused_by_every_service(ctx, roots, names):
    from fmhub.services.assets import create_data_asset, queued_data_refs, resolve_data_spec
    from fmhub.services.data_preview import preview
    from fmhub.services.specs import DataSpec, EvaluateDataSpec, ReadOptions

    root, outside = roots
    names = str(outside / "names.txt") if names == "outside" else names
    server = replace(ctx, data_roots=DataRoots.of([root]))
    train = str(root / "train.csv")
    with pytest.raises(ForbiddenPathError) as info:
        resolve_data_spec(server, DataSpec(train=train, label_names=names), "text-classification")
    assert [d["field"] for d in info.value.details] == ["data.label_names"]
    assert str(root) in info.value.hint and info.value.code == "forbidden_path"
    with pytest.raises(ForbiddenPathError):
        resolve_data_spec(server, EvaluateDataSpec(test=train, label_names=names), "text-classification")
    with pytest.raises(ForbiddenPathError):
        create_data_asset(server, train, "reviews", options=ReadOptions(label_names=names))
    with pytest.raises(ForbiddenPathError):
        preview(server, train, "text-classification", {"label_names": names})
    with pytest.raises(ForbiddenPathError):
        queued_data_refs(server, {"train": "none", "label_names": names})
    # inline names and a names file under a root are read; the local CLI reads any file
    assert resolve_data_spec(server, DataSpec(train=train, label_names=["a", "b"])).label_names == ["a", "b"]
    assert resolve_data_spec(server, DataSpec(train=train, label_names="negative,positive"))
    assert resolve_data_spec(server, DataSpec(train=train, label_names=str(root / "names.txt")))
    assert resolve_data_spec(ctx, DataSpec(train=train, label_names=names)).label_names == names


def test_a_names_file_stored_with_an_asset_is_checked_where_it_is_used(ctx, roots):
    from fmhub.services.assets import create_data_asset, resolve_data_spec
    from fmhub.services.specs import DataSpec, ReadOptions

    root, outside = roots
    asset, _ = create_data_asset(ctx, str(root / "train.csv"), "reviews",  # the local CLI: no roots
                                 options=ReadOptions(label_names=str(outside / "names.txt")))
    server = replace(ctx, data_roots=DataRoots.of([root]))
    with pytest.raises(ForbiddenPathError) as info:
        resolve_data_spec(server, DataSpec(train=asset.ref), "text-classification")
    assert [d["field"] for d in info.value.details] == ["data.label_names"]


def test_queued_names_files_become_inline_names(ctx, roots):
    from fmhub.services.assets import queued_data_refs

    root, _ = roots
    (root / "tags.json").write_text('["O", "B-PER", "I-PER"]')
    server = replace(ctx, data_roots=DataRoots.of([root]))
    queued = queued_data_refs(server, {"train": str(root / "train.csv"), "validation": "auto", "test": "none",
                                       "label_names": str(root / "names.txt"),
                                       "tag_names": str(root / "tags.json")})
    assert queued["label_names"] == ["negative", "positive"]
    assert queued["tag_names"] == ["O", "B-PER", "I-PER"]
    assert queued["train"].startswith("asset:")
    inline = queued_data_refs(server, {"train": "none", "label_names": "neg,pos", "tag_names": ["O"]})
    assert inline["label_names"] == "neg,pos" and inline["tag_names"] == ["O"]


def test_latest_data_references_are_pinned_in_a_queued_spec(ctx, tmp_path):
    from fmhub.services.assets import create_data_asset, queued_data_refs

    first, second, third = (write_sentiment_csv(tmp_path / f"reviews-{n}.csv", n=n) for n in (20, 24, 28))
    create_data_asset(ctx, str(first), "reviews")
    latest, created = create_data_asset(ctx, str(second), "reviews")
    assert created and latest.version == 2
    queued = queued_data_refs(ctx, {"train": "reviews:latest", "validation": "asset:reviews:latest",
                                    "test": "reviews:1"})
    assert queued["train"] == "reviews:2" and queued["validation"] == "asset:reviews:2"
    assert queued["test"] == "reviews:1"
    create_data_asset(ctx, str(third), "reviews")  # a version registered later
    assert queued_data_refs(ctx, {"train": "reviews:latest"})["train"] == "reviews:3"


def test_the_rest_api_refuses_an_outside_label_names_file_and_queues_inline_names(ctx, tiny_bert, roots):
    from local_client import local_client

    from fmhub.api.app import create_app
    from fmhub.services.models import import_model

    import_model(ctx, tiny_bert, "tiny", "text-classification")
    root, outside = roots
    server = replace(ctx, data_roots=DataRoots.of([root]))
    spec = {"model": "tiny:1", "task": "text-classification", "device": "cpu",
            "data": {"train": str(root / "train.csv"), "validation": "auto", "test": "none",
                     "column_mapping": {"sentence1": "review", "label": "stars"}},
            "hyperparameters": {"max_steps": 1}}
    with local_client(create_app(server, serve_endpoints=False), raise_server_exceptions=False) as client:
        for names in (OUTSIDE_NAMES, str(outside / "names.txt")):
            refused = client.post("/api/v1/jobs/finetune", json={**spec, "data": {**spec["data"], "label_names": names}})
            assert refused.status_code == 403, refused.text
            error = refused.json()["error"]
            assert error["code"] == "forbidden_path" and str(root) in error["hint"]
            assert "root:" not in refused.text  # no line of the file is shown
            refused = client.post("/api/v1/jobs/evaluate", json={
                "model": "tiny:1", "task": "text-classification", "device": "cpu",
                "data": {"test": str(root / "train.csv"), "label_names": names}})
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_path"
            refused = client.post("/api/v1/data", json={"name": "r", "path": str(root / "train.csv"),
                                                        "label_names": names})
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_path"
        assert client.get("/api/v1/jobs").json()["total"] == 0
        queued = client.post("/api/v1/jobs/finetune",
                             json={**spec, "data": {**spec["data"], "label_names": str(root / "names.txt")}})
        assert queued.status_code == 202, queued.text
        data = queued.json()["job"]["spec"]["data"]
        assert data["label_names"] == ["negative", "positive"] and data["train"].startswith("asset:")


def test_submit_from_the_cli_sends_names_files_as_their_names(tmp_path):
    from fmhub.cli.submit import absolute_data_paths

    (tmp_path / "labels.txt").write_text("negative\npositive\n")
    (tmp_path / "tags.json").write_text('["O", "B-PER"]')
    sent = absolute_data_paths({"data": {"train": "reviews:1", "label_names": str(tmp_path / "labels.txt"),
                                         "tag_names": str(tmp_path / "tags.json")}})
    assert sent["data"] == {"train": "reviews:1", "label_names": ["negative", "positive"], "tag_names": ["O", "B-PER"]}
