"""Data roots: a server reads user files only under its roots (``..`` and symlinks resolved first);
the local CLI (a context without roots) reads what its user names."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from fmhub.config import Settings
from fmhub.errors import ForbiddenPathError, HTTP_STATUS_BY_CODE, SpecError
from fmhub.services.data_roots import DataRoots, check_paths, is_tag_names_file, resolve_path

CSV = "review,stars\ngood movie,pos\nbad film,neg\nfine plot,pos\nawful,neg\n"


@pytest.fixture
def tree(tmp_path):
    """``root/`` with a data file and two symlinks out of it, and ``outside/secret.csv``."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "sub" / "train.csv").write_text(CSV)
    (outside / "secret.csv").write_text(CSV)
    (root / "link.csv").symlink_to(outside / "secret.csv")
    (root / "outdir").symlink_to(outside, target_is_directory=True)
    (root / "inner.csv").symlink_to(root / "sub" / "train.csv")
    return root, outside


def test_files_under_a_root_are_accepted_and_outside_refused(tree):
    root, outside = tree
    roots = DataRoots.of([root])
    assert roots.contains(root / "sub" / "train.csv")
    assert roots.contains(root)  # the root itself (a model folder may be one)
    assert roots.contains(root / "sub" / "not-yet.csv")  # a missing file under a root: the reader says it is missing
    assert roots.contains(root / "inner.csv")  # a symlink that stays inside
    assert not roots.contains(outside / "secret.csv")
    assert not roots.contains(root.parent / "root-sibling" / "x.csv")  # a name prefix is not a folder


def test_dotdot_and_symlinks_out_of_a_root_count_as_outside(tree):
    root, outside = tree
    roots = DataRoots.of([root])
    assert not roots.contains(f"{root}/sub/../../outside/secret.csv")
    assert not roots.contains(root / "link.csv")  # a file symlink pointing out
    assert not roots.contains(root / "outdir" / "secret.csv")  # a folder symlink pointing out
    assert not roots.contains(root / "outdir" / "missing.csv")  # even for a file that does not exist
    assert resolve_path(root / "link.csv") == (outside / "secret.csv").resolve()


def test_a_symlink_loop_is_refused_not_an_exception(tree):
    root, _ = tree
    (root / "loop").symlink_to(root / "loop")
    found = DataRoots.of([root]).contains(root / "loop" / "x.csv")  # never raises
    assert found is False or sys.version_info >= (3, 13)  # 3.13 resolves a loop like a missing file, in place
    assert DataRoots.of([root]).contains(root / "sub" / "train.csv")


def test_relative_paths_are_taken_from_the_working_folder(tree, monkeypatch):
    root, _ = tree
    monkeypatch.chdir(root / "sub")
    roots = DataRoots.of([root])
    assert roots.contains("train.csv")
    assert not roots.contains("../../outside/secret.csv")


def test_the_error_is_403_naming_every_refused_field_the_roots_and_the_upload_route(tree):
    root, outside = tree
    roots = DataRoots.of([root])
    with pytest.raises(ForbiddenPathError) as info:
        roots.check({"data.train": str(root / "sub" / "train.csv"), "data.validation": str(outside / "secret.csv"),
                     "data.test": str(root / "link.csv")}, "data file")
    exc = info.value
    assert exc.code == "forbidden_path" and exc.http_status == 403 and HTTP_STATUS_BY_CODE["forbidden_path"] == 403
    assert [d["field"] for d in exc.details] == ["data.validation", "data.test"]
    assert str(outside / "secret.csv") in exc.message and "resolved to" in exc.message  # the symlink's target
    assert str(root.resolve()) in exc.hint and "PUT /api/v1/data/{name}/upload" in exc.hint
    assert "--data-root" in exc.hint


def test_server_roots_default_to_the_start_folder_plus_uploads_and_artifacts(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.chdir(tmp_path)
    roots = DataRoots.for_server(Settings(home=home))
    assert roots.roots == (tmp_path.resolve(), (home / "uploads").resolve(), (home / "artifacts").resolve())
    given = tmp_path / "data"
    given.mkdir()
    flagged = DataRoots.for_server(Settings(home=home), [given])
    assert flagged.roots[0] == given.resolve() and not flagged.contains(tmp_path / "x.csv")
    assert flagged.contains(home / "uploads" / "tmp1" / "x.csv") and flagged.contains(home / "artifacts" / "data")
    assert not flagged.contains(home / "fmhub.db")  # the server's own database is no data root
    # started from the folder holding FMHUB_HOME: its state stays out, its uploads and artifacts in
    assert roots.contains(tmp_path / "train.csv") and not roots.contains(home / "fmhub.db")
    assert not roots.contains(home / "jobs" / "x" / "log.txt") and not roots.contains(home)
    assert roots.contains(home / "artifacts" / "data" / "a" / "1" / "a.csv")


def test_fmhub_data_roots_env_is_read_and_flags_win(tmp_path, monkeypatch):
    a, b, c = (tmp_path / n for n in "abc")
    for folder in (a, b, c):
        folder.mkdir()
    monkeypatch.setenv("FMHUB_DATA_ROOTS", os.pathsep.join([str(a), str(b)]))
    settings = Settings(home=tmp_path / "home")
    assert settings.data_roots is not None
    assert DataRoots.for_server(settings).roots[:2] == (a.resolve(), b.resolve())
    assert DataRoots.for_server(settings, [c]).roots[0] == c.resolve()
    with pytest.raises(SpecError, match="not a folder"):
        DataRoots.for_server(settings, [tmp_path / "missing"])


def test_the_local_cli_context_has_no_roots_and_reads_any_path(ctx, tree):
    _, outside = tree
    assert ctx.data_roots is None
    check_paths(ctx, {"data.train": str(outside / "secret.csv")})  # no error: the CLI reads what its user names
    server = replace(ctx, data_roots=DataRoots.of([tree[0]]))
    check_paths(server, {"data.train": "auto", "data.test": "none", "data.validation": None})  # no files named
    with pytest.raises(ForbiddenPathError):
        check_paths(server, {"data.train": str(outside / "secret.csv")})


def test_tag_names_read_as_a_file_only_when_not_a_list(tmp_path):
    names = tmp_path / "tags.txt"
    names.write_text("O\nB-PER\n")
    assert is_tag_names_file(str(names)) and is_tag_names_file("tags.txt")
    assert not is_tag_names_file("O,B-PER,I-PER") and not is_tag_names_file(["O", "B-PER"])
    assert not is_tag_names_file(None)


def test_services_refuse_paths_outside_a_server_context_roots(ctx, tree, tmp_path):
    from fmhub.services.assets import create_data_asset, resolve_data_spec
    from fmhub.services.data_preview import preview
    from fmhub.services.job_exec import submit_import
    from fmhub.services.specs import DataSpec, ReadOptions

    root, outside = tree
    server = replace(ctx, data_roots=DataRoots.of([root]))
    with pytest.raises(ForbiddenPathError) as info:
        resolve_data_spec(server, DataSpec(train=str(root / "sub" / "train.csv"), test=str(outside / "secret.csv"),
                                           tag_names=str(outside / "tags.txt")))
    assert [d["field"] for d in info.value.details] == ["data.test", "data.tag_names"]
    ok = resolve_data_spec(server, DataSpec(train=str(root / "sub" / "train.csv")))
    assert ok.train == str(root / "sub" / "train.csv")
    with pytest.raises(ForbiddenPathError):
        preview(server, str(root / "link.csv"), "text-classification")
    assert preview(server, str(root / "sub" / "train.csv"), "text-classification")["total_rows"] == 4
    with pytest.raises(ForbiddenPathError):
        create_data_asset(server, f"{root}/../outside/secret.csv", "secret")
    with pytest.raises(ForbiddenPathError):
        create_data_asset(server, str(root / "sub" / "train.csv"), "t",
                          options=ReadOptions(tag_names=str(outside / "tags.txt")))
    asset, created = create_data_asset(server, str(root / "sub" / "train.csv"), "reviews")
    assert created and asset.rows == 4
    # an asset lives in the artifact store: named by its reference it is read wherever the roots are
    assert resolve_data_spec(replace(ctx, data_roots=DataRoots.of([tmp_path / "elsewhere"])),
                             DataSpec(train=asset.ref)).train == asset.path
    with pytest.raises(ForbiddenPathError, match="model folder"):
        submit_import(server, str(root / "outdir"), "m", "text-classification")


def test_an_app_reads_only_under_its_roots_on_the_api_and_the_ui_wizards(ctx, tiny_bert, tmp_path, monkeypatch):
    from local_client import local_client

    from fmhub.api.app import create_app
    from fmhub.services.models import import_model

    import_model(ctx, tiny_bert, "tiny", "text-classification")
    start, outside = tmp_path / "start", tmp_path / "outside"
    start.mkdir(), outside.mkdir()
    (outside / "reviews.csv").write_text(CSV)
    (start / "reviews.csv").write_text(CSV)
    monkeypatch.chdir(start)  # an app without roots given reads under the folder it was started from
    wizard = {"task": "text-classification", "wizard.source": "data.train", "wizard.part": "mapping"}
    with local_client(create_app(ctx, serve_endpoints=False), raise_server_exceptions=False) as client:
        refused = client.post("/api/v1/data", json={"name": "r", "path": str(outside / "reviews.csv")})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_path"
        assert client.post("/api/v1/data", json={"name": "r", "path": "reviews.csv"}).status_code == 201
        page = client.post("/ui/wizard/mapping", data={**wizard, "data.train": str(outside / "reviews.csv")})
        assert page.status_code == 403 and "data roots" in page.text
        page = client.post("/ui/wizard/mapping", data={**wizard, "data.train": "../outside/reviews.csv"})
        assert page.status_code == 403
        assert client.post("/ui/wizard/mapping", data={**wizard, "data.train": "reviews.csv"}).status_code == 200
        form = {"model": "tiny:1", "task": "text-classification", "data.train": str(outside / "reviews.csv"),
                "wizard.validation": "auto", "wizard.test": "none", "device": "cpu",
                "data.column_mapping.sentence1": "review", "data.column_mapping.label": "stars"}
        submitted = client.post("/ui/models/tiny:1/finetune/submit", data=form, headers={"HX-Request": "true"})
        assert submitted.status_code == 403 and "data roots" in submitted.text
        uploaded = client.put("/api/v1/data/up/upload", params={"filename": "reviews.csv"},
                              content=(outside / "reviews.csv").read_bytes())
        assert uploaded.status_code == 201, uploaded.text  # the upload area is a root
        assert client.get("/api/v1/jobs").json()["total"] == 0
    assert ctx.data_roots is None  # the caller's context is left as it was: the app works on a copy
