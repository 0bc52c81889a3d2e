"""The artifact store over a local folder: the layout stays what it always was; a queued job's data
files become data assets named ``asset:NAME:VERSION``."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_sentiment_csv
from fmhub.store.artifacts import MANIFEST, ArtifactStore, ArtifactStoreError, folder_manifest


def _folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text('{"a": 1}', encoding="utf-8")
    (root / "sub" / "w.bin").write_bytes(b"\x00\x01\x02")
    return root


def test_local_store_keeps_the_layout_and_returns_paths(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    assert store.is_local and store.url == str(tmp_path / "artifacts")
    url = store.model_url("m", 3)
    assert url == str(tmp_path / "artifacts" / "models" / "m" / "3") == str(store.model_dir("m", 3))
    assert store.put_dir(_folder(tmp_path / "src"), url) == url
    assert store.exists(url) and store.is_dir(url)
    assert store.list(url) == ["config.json", "sub"]
    assert store.list(url, recursive=True) == ["config.json", "sub/w.bin"]
    assert not (Path(url) / MANIFEST).exists()  # a local folder has no manifest
    assert store.local_path(url) == Path(url)  # read in place, never copied
    with pytest.raises(FileExistsError):
        store.put_dir(tmp_path / "src", url)
    data = store.data_url("d", 1, "train.csv")
    assert data == str(tmp_path / "artifacts" / "data" / "d" / "1" / "train.csv")
    src = tmp_path / "train.csv"
    src.write_text("a,b\n1,2\n", encoding="utf-8")
    store.put_file(src, data)
    assert store.read_bytes(data) == b"a,b\n1,2\n" and store.read_bytes(data, 4, 3) == b"1,2"
    assert store.size(data) == 8
    assert not list(Path(data).parent.glob(".tmp-*"))  # nothing half-written left behind
    store.delete(url)
    store.delete(data)
    assert not store.exists(url) and not store.exists(data)
    store.delete(url)  # deleting what is gone is fine


def test_file_urls_and_bad_schemes(tmp_path):
    store = ArtifactStore(f"file://{tmp_path / 'a'}")
    assert store.is_local and store.root == tmp_path / "a"
    with pytest.raises(ArtifactStoreError, match="unsupported artifact store URL"):
        ArtifactStore("ftp://host/x")
    with pytest.raises(ArtifactStoreError, match="job folders of a local store"):
        store.push_dir(tmp_path, str(tmp_path / "elsewhere"))
    assert store.push_dir(tmp_path / "a", str(tmp_path / "a")) == 0
    assert store.pull_dir(str(tmp_path / "a"), tmp_path / "b") == 0


def test_manifest_lists_every_file_with_its_hash(tmp_path):
    import hashlib

    manifest = folder_manifest(_folder(tmp_path / "f"))
    assert manifest["files"]["sub/w.bin"] == {"size": 3, "sha256": hashlib.sha256(b"\x00\x01\x02").hexdigest()}
    assert sorted(manifest["files"]) == ["config.json", "sub/w.bin"]


def test_settings_default_to_the_home_folder(tmp_path, monkeypatch):
    from fmhub.config import Settings

    monkeypatch.delenv("FMHUB_ARTIFACTS_URL", raising=False)
    s = Settings(home=tmp_path)
    assert s.artifacts_location == str(tmp_path / "artifacts")
    assert s.artifacts_cache_dir == tmp_path / "cache" / "artifacts"
    monkeypatch.setenv("FMHUB_ARTIFACTS_URL", "s3://bucket/prefix")
    assert Settings(home=tmp_path).artifacts_location == "s3://bucket/prefix"


def test_registered_versions_and_assets_record_local_paths(ctx, tiny_bert, tmp_path):
    from fmhub.services.assets import register_data_file
    from fmhub.services.models import import_model, resolve_model

    version = import_model(ctx, tiny_bert, name="tiny", task="text-classification")
    assert version.path == str(ctx.settings.home / "artifacts" / "models" / "tiny" / "1")
    assert resolve_model(ctx, "tiny:1").path == Path(version.path)
    asset = register_data_file(ctx, write_sentiment_csv(tmp_path / "r.csv"), name="reviews")
    assert asset.path == str(ctx.settings.home / "artifacts" / "data" / "reviews" / "1" / "r.csv")
    assert not (ctx.settings.home / "cache" / "artifacts").exists()  # a local store caches nothing


def test_queued_data_names_assets_read_as_the_spec_says(ctx, tmp_path):
    from fmhub.services.assets import create_data_asset, queued_data_refs, resolve_data_spec
    from fmhub.services.specs import DataSpec, ReadOptions

    (tmp_path / "data").mkdir()
    train = write_sentiment_csv(tmp_path / "data" / "train.csv")
    # The same content registered with a label type: a plain NAME:VERSION reference would apply it.
    create_data_asset(ctx, str(train), "data-train", task="text-classification",
                      options=ReadOptions(column_mapping={"sentence1": "review", "label": "stars"},
                                          label_type="string"))
    queued = queued_data_refs(ctx, {"train": str(train), "validation": "auto", "test": "none", "format": None,
                                    "encoding": "utf-8", "delimiter": None})
    assert queued["train"] == "asset:data-train:1" and queued["validation"] == "auto"
    spec = DataSpec(train=queued["train"], validation="none", test="none")
    resolved = resolve_data_spec(ctx, spec, "text-classification")
    assert resolved.train == str(ctx.settings.home / "artifacts" / "data" / "data-train" / "1" / "train.csv")
    assert resolved.label_type is None and resolved.column_mapping == {}  # the asset's own uses not applied
    plain = resolve_data_spec(ctx, DataSpec(train="data-train:1", validation="none", test="none"),
                              "text-classification")
    assert plain.label_type == "string"
