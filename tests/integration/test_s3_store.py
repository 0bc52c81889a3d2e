"""The artifact store in an S3-compatible bucket (a real ``moto_server`` on 127.0.0.1).

``FMHUB_TEST_S3_ENDPOINT_URL`` names the server (e.g. ``http://127.0.0.1:55433``); without it, or when
it does not answer, these tests are skipped, unless ``FMHUB_REQUIRE_SERVICES=1`` makes that a failure.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from conftest import write_sentiment_csv
from sinks import InterruptAt


def _reachable(url: str) -> bool:
    import httpx

    try:
        httpx.get(url, timeout=3.0)
    except httpx.HTTPError:
        return False
    return True


@pytest.fixture()
def s3_url(monkeypatch) -> str:
    """``s3://<a new bucket>/fmhub`` on the test S3 server, with the AWS variables pointing at it."""
    endpoint = os.environ.get("FMHUB_TEST_S3_ENDPOINT_URL", "")
    required = os.environ.get("FMHUB_REQUIRE_SERVICES") == "1"
    if not endpoint or not _reachable(endpoint):
        reason = (f"the S3 test server {endpoint} does not answer" if endpoint else
                  "FMHUB_TEST_S3_ENDPOINT_URL is not set (start `moto_server -H 127.0.0.1 -p 55433` and set it "
                  "to http://127.0.0.1:55433)")
        if required:
            pytest.fail(f"FMHUB_REQUIRE_SERVICES=1: {reason}")
        pytest.skip(reason)
    pytest.importorskip("s3fs")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ.get("AWS_ACCESS_KEY_ID", "testing"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import s3fs

    bucket = f"fmhub-test-{uuid.uuid4().hex[:12]}"
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)
    fs.mkdir(bucket)
    yield f"s3://{bucket}/fmhub"
    fs.rm(bucket, recursive=True)


def _context(home: Path, monkeypatch, artifacts_url: str, database: Path | None = None):
    """A context on ``home`` with the artifact store at ``artifacts_url`` (and, optionally, another
    home's SQLite database: a second machine sharing the registry)."""
    from fmhub.config import reset_settings
    from fmhub.services.context import Context

    monkeypatch.setenv("FMHUB_HOME", str(home))
    monkeypatch.setenv("FMHUB_ARTIFACTS_URL", artifacts_url)
    if database is None:
        monkeypatch.delenv("FMHUB_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("FMHUB_DATABASE_URL", f"sqlite:///{database.as_posix()}")
    reset_settings()
    return Context.from_settings()


class Downloads:
    """Counts the files a store downloads (wraps its filesystem's ``get_file``)."""

    def __init__(self, store, monkeypatch) -> None:
        self.count = 0
        original = store.fs.get_file

        def counted(*args, **kwargs):
            self.count += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(store.fs, "get_file", counted)


def test_bucket_store_puts_reads_lists_and_caches_by_content(s3_url, tmp_path, monkeypatch):
    from fmhub.store.artifacts import MANIFEST, ArtifactStore, ArtifactStoreError

    store = ArtifactStore(s3_url, cache_root=tmp_path / "cache", scratch_root=tmp_path / "scratch")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "config.json").write_text('{"x": 1}', encoding="utf-8")
    (src / "sub" / "w.bin").write_bytes(b"weights")
    url = store.model_url("m", 1)
    assert url == f"{s3_url}/models/m/1" and not store.exists(url)
    store.put_dir(src, url)
    assert store.exists(url) and store.is_dir(url)
    assert store.list(url) == ["config.json", "sub"] and store.list(url, recursive=True) == ["config.json", "sub/w.bin"]
    with pytest.raises(FileExistsError):
        store.put_dir(src, url)
    downloads = Downloads(store, monkeypatch)
    local = store.local_path(url)
    assert local.parent == tmp_path / "cache" and len(local.name) == 64  # keyed by the manifest's sha256
    assert (local / "sub" / "w.bin").read_bytes() == b"weights" and downloads.count == 2
    assert store.local_path(url) == local and downloads.count == 2  # second read: the cache
    assert (store.local_files(url) / "config.json").is_file()  # the full copy serves a peek too

    data = store.data_url("d", 1, "train.csv")
    (tmp_path / "train.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    store.put_file(tmp_path / "train.csv", data)
    assert store.read_bytes(data) == b"a,b\n1,2\n" and store.size(data) == 8
    cached = store.local_path(data)
    assert cached.name == "train.csv" and cached.read_text(encoding="utf-8") == "a,b\n1,2\n"
    before = downloads.count
    assert store.local_path(data) == cached and downloads.count == before  # remembered by ETag
    with pytest.raises(ArtifactStoreError, match="does not match its recorded sha256"):
        store.local_path(data, sha256="0" * 64)

    # An upload that never wrote its manifest is not a folder, and a new put replaces it.
    store.fs.pipe_file(store._key(store.model_url("m", 2)) + "/config.json", b"{}")
    assert not store.exists(store.model_url("m", 2))
    store.put_dir(src, store.model_url("m", 2))
    assert store.fs.isfile(store._key(store.model_url("m", 2)) + "/" + MANIFEST)
    store.delete(url)
    assert not store.exists(url) and store.list(url) == []
    with pytest.raises(ArtifactStoreError, match="is not in the artifact store"):
        store.local_path(url)


def test_job_folders_push_and_pull(s3_url, tmp_path):
    from fmhub.store.artifacts import ArtifactStore

    store = ArtifactStore(s3_url, cache_root=tmp_path / "cache", scratch_root=tmp_path / "scratch")
    job = tmp_path / "job"
    (job / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (job / "checkpoints" / "checkpoint-2" / "state.json").write_text("2", encoding="utf-8")
    (job / "log.txt").write_text("one\n", encoding="utf-8")
    url = store.job_url("j1")
    assert store.push_dir(job, url) == 2
    assert store.push_dir(job, url) == 0  # nothing changed, nothing sent
    with (job / "log.txt").open("a", encoding="utf-8") as f:
        f.write("two\n")
    assert store.push_dir(job, url, only="log.txt") == 1
    import shutil

    (job / "checkpoints" / "checkpoint-4").mkdir()
    (job / "checkpoints" / "checkpoint-4" / "state.json").write_text("4", encoding="utf-8")
    shutil.rmtree(job / "checkpoints" / "checkpoint-2")
    store.push_dir(job, url, only="checkpoints", mirror=True)
    assert store.list(store.job_url("j1", "checkpoints")) == ["checkpoint-4"]
    fresh = tmp_path / "elsewhere"
    assert store.pull_dir(url, fresh) == 2
    assert (fresh / "log.txt").read_text(encoding="utf-8") == "one\ntwo\n"
    assert (fresh / "checkpoints" / "checkpoint-4" / "state.json").read_text(encoding="utf-8") == "4"


def test_model_and_data_in_a_bucket_load_once_on_a_fresh_machine(s3_url, tiny_bert, tmp_path, monkeypatch):
    from fmhub.services.assets import asset_file, create_data_asset
    from fmhub.services.models import import_model
    from fmhub.services.predict import predict
    from fmhub.services.specs import ReadOptions

    first = _context(tmp_path / "home-a", monkeypatch, s3_url)
    version = import_model(first, tiny_bert, name="tiny", task="text-classification")
    assert version.path == f"{s3_url}/models/tiny/1"
    assert not (tmp_path / "home-a" / "artifacts" / "models").exists()  # nothing kept locally
    train = write_sentiment_csv(tmp_path / "reviews.csv")
    asset, _ = create_data_asset(first, str(train), "reviews", task="text-classification",
                                 options=ReadOptions(column_mapping={"sentence1": "review", "label": "stars"}))
    assert asset.path == f"{s3_url}/data/reviews/1/reviews.csv"

    second = _context(tmp_path / "home-b", monkeypatch, s3_url, database=tmp_path / "home-a" / "fmhub.db")
    downloads = Downloads(second.artifacts, monkeypatch)
    local = asset_file(second, asset)
    assert local == tmp_path / "home-b" / "cache" / "artifacts" / asset.sha256 / "reviews.csv"
    assert local.read_bytes() == train.read_bytes()
    # A classifier head never trained cannot predict; loading the files is what is checked here.
    from fmhub.errors import FmhubError

    with pytest.raises(FmhubError, match="never trained|fine-tune"):
        predict(second, "tiny:1", ["good movie"])
    cached = [p for p in (tmp_path / "home-b" / "cache" / "artifacts").iterdir() if (p / "config.json").is_file()]
    assert len(cached) == 1 and (cached[0] / "model.safetensors").is_file()
    files = downloads.count
    with pytest.raises(FmhubError, match="never trained|fine-tune"):
        predict(second, "tiny:1", ["good movie"])
    assert downloads.count == files  # the second load reads the cache


def _spec(train, **kw):
    from fmhub.services.specs import FinetuneSpec

    return FinetuneSpec(model="tiny:1", task="text-classification",
                        data={"train": str(train), "validation": "none", "test": "none",
                              "column_mapping": {"sentence1": "review", "label": "stars"}},
                        hyperparameters={"max_steps": 8, "save_steps": 4, "per_device_train_batch_size": 4,
                                         "logging_steps": 1},
                        registered_model_name="tuned", device="cpu", **kw)


def test_finetune_checkpoints_land_in_the_bucket_and_resume_on_another_machine(s3_url, tiny_bert, tmp_path,
                                                                             monkeypatch):
    from fmhub.entities import JobStatus
    from fmhub.errors import JobCanceledError
    from fmhub.services import jobs as jobs_service
    from fmhub.services.finetune import execute_finetune, run_finetune, submit_finetune
    from fmhub.services.models import import_model
    from fmhub.services.predict import predict

    first = _context(tmp_path / "home-a", monkeypatch, s3_url)
    import_model(first, tiny_bert, name="tiny", task="text-classification")
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=40)

    queued, _ = submit_finetune(first, _spec(train, register_model=False))
    assert queued.spec["data"]["train"].startswith("asset:")  # the queue names an asset, not a path
    assert first.artifacts.exists(first.artifacts.job_url(queued.id, "report.json"))
    train.unlink()  # the worker reads the data asset from the bucket, never the submitter's file
    worker = _context(tmp_path / "home-w", monkeypatch, s3_url, database=tmp_path / "home-a" / "fmhub.db")
    from fmhub.services.job_exec import execute_job
    from fmhub.store import jobs_repo

    assert jobs_repo.claim(worker.db_url, queued.id, "worker:test")
    execute_job(worker, queued.id)
    ran = jobs_service.get_job(worker, queued.id)
    assert ran.status == JobStatus.completed
    assert ran.outputs["model_folder"] == first.artifacts.job_url(queued.id, "model")
    assert "model.safetensors" in first.artifacts.list(ran.outputs["model_folder"])
    elsewhere = ran.model_copy(update={"folder": str(tmp_path / "not-here")})  # as another server sees it
    assert jobs_service.job_report(elsewhere, first)["ok"] is True
    first = _context(tmp_path / "home-a", monkeypatch, s3_url)
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=40)

    with pytest.raises(JobCanceledError):
        run_finetune(first, _spec(train), sink=InterruptAt(6))
    job = [j for j in jobs_service.list_jobs(first) if j.id != queued.id][0]
    assert job.spec["data"]["train"].startswith("asset:")  # with a bucket, a foreground run may resume elsewhere
    assert job.status == JobStatus.canceled
    store = first.artifacts
    assert store.list(store.job_url(job.id, "checkpoints")) == ["checkpoint-4"]
    assert "trainer_state.json" in store.list(store.job_url(job.id, "checkpoints", "checkpoint-4"))
    assert b"stage" in store.read_bytes(store.job_url(job.id, "events.jsonl"))
    assert store.size(store.job_url(job.id, "log.txt")) > 0

    # Another machine: a fresh FMHUB_HOME on the same registry; the job's folder is not there.
    second = _context(tmp_path / "home-b", monkeypatch, s3_url, database=tmp_path / "home-a" / "fmhub.db")
    text, _ = jobs_service.read_log(second, job.id)
    assert text  # read from the bucket (the recorded folder is the first machine's)
    jobs_service.resume_job(second, job.id)
    claimed = jobs_service.claim_queued_here(second, job.id)
    result = execute_finetune(second, claimed)
    assert result.job.status == JobStatus.completed and result.model_version.ref == "tuned:1"
    events = jobs_service.job_events(second, job.id)
    resuming = [e for e in events if e.kind == "stage" and e.data["stage"] == "resuming"]
    assert [e.data["from_step"] for e in resuming] == [4]
    assert (tmp_path / "home-b" / "jobs" / job.id / "log.txt").is_file()
    assert result.model_version.path == f"{s3_url}/models/tuned/1"
    assert store.list(store.job_url(job.id, "checkpoints")) == []  # the registered copy is what counts
    log = store.read_bytes(store.job_url(job.id, "log.txt")).decode("utf-8")
    assert "resuming" in log
    out = predict(second, "tuned:1", ["good movie"])
    assert out["predictions"][0][0]["label"] in ("neg", "pos")  # label names, read from the cached copy

    # An evaluation queued on one machine runs on another from the bucket: data asset and model.
    from fmhub.services.evaluate import submit_evaluate
    from fmhub.services.job_exec import execute_job
    from fmhub.services.specs import EvaluateSpec
    from fmhub.store import jobs_repo

    test = write_sentiment_csv(tmp_path / "test.csv", n=12)
    evaluation, _ = submit_evaluate(second, EvaluateSpec(model="tuned:1", data={"test": str(test)}, device="cpu"))
    assert evaluation.spec["data"]["test"].startswith("asset:")
    test.unlink()
    third = _context(tmp_path / "home-c", monkeypatch, s3_url, database=tmp_path / "home-a" / "fmhub.db")
    assert jobs_repo.claim(third.db_url, evaluation.id, "worker:test")
    result = execute_job(third, evaluation.id)
    assert 0.0 <= result["test"]["accuracy"] <= 1.0
    done = jobs_service.get_job(third, evaluation.id)
    assert done.outputs["predictions"] == store.job_url(evaluation.id, "predictions-test.jsonl")
    assert store.size(done.outputs["predictions"]) > 0 and store.size(store.job_url(evaluation.id, "metrics.json")) > 0


def test_a_checkpoint_is_uploaded_with_its_trainer_state_last(s3_url, tmp_path, monkeypatch):
    from fmhub.store.artifacts import ArtifactStore

    store = ArtifactStore(s3_url, cache_root=tmp_path / "cache", scratch_root=tmp_path / "scratch")
    folder = tmp_path / "job" / "checkpoints" / "checkpoint-4"
    folder.mkdir(parents=True)
    for name in ("model.safetensors", "trainer_state.json", "training_args.bin", "zz.bin"):
        (folder / name).write_bytes(name.encode())
    sent = []
    original = store.fs.put_file
    monkeypatch.setattr(store.fs, "put_file", lambda src, dest, **kw: (sent.append(Path(src).name),
                                                                        original(src, dest, **kw)))
    store.push_dir(tmp_path / "job", store.job_url("j2"), only="checkpoints")
    assert sent[-1] == "trainer_state.json" and sorted(sent) == sorted(p.name for p in folder.iterdir())


def test_an_import_job_runs_on_another_machine_from_the_folder_uploaded_at_submit(s3_url, tiny_bert, tmp_path,
                                                                                  monkeypatch):
    import shutil

    from fmhub.services import jobs as jobs_service
    from fmhub.services.job_exec import execute_job, submit_import
    from fmhub.store import jobs_repo

    folder = tmp_path / "to-import"
    shutil.copytree(tiny_bert, folder)
    first = _context(tmp_path / "home-a", monkeypatch, s3_url)
    job = submit_import(first, str(folder), name="imported", task="text-classification")
    staged = job.spec["path"]
    assert staged.startswith(f"{s3_url}/imports/")  # the spec names the store, not the submitter's folder
    shutil.rmtree(folder)  # the submitting machine's files are gone

    second = _context(tmp_path / "home-b", monkeypatch, s3_url, database=tmp_path / "home-a" / "fmhub.db")
    assert jobs_repo.claim(second.db_url, job.id, jobs_service.worker_id("worker"))
    outputs = execute_job(second, job.id)
    assert outputs["registered_model"] == "imported:1"
    assert jobs_service.get_job(second, job.id).status.value == "completed"
    assert not second.artifacts.exists(staged)  # the upload is removed once the version holds its copy
    assert second.artifacts.exists(f"{s3_url}/models/imported/1")


# -- a bucket that cannot be used: one line naming the URL, with what to do ------------------------------


def _missing_bucket(s3_url: str) -> str:
    """``s3://<a bucket nobody created>/fmhub`` on the same server as ``s3_url``."""
    return f"s3://fmhub-missing-{uuid.uuid4().hex[:12]}/fmhub"


def _assert_one_line(error, url: str, hint: str) -> None:
    assert url in error.message and "\n" not in error.message
    assert hint in error.hint and error.http_status == 503
    assert os.environ.get("AWS_SECRET_ACCESS_KEY", "?") not in f"{error.message} {error.hint}"


def test_a_missing_bucket_is_said_with_its_url_and_what_to_do(s3_url, tmp_path):
    from fmhub.store.artifacts import ArtifactStore, ArtifactStoreError

    url = _missing_bucket(s3_url)
    store = ArtifactStore(url, cache_root=tmp_path / "cache", scratch_root=tmp_path / "scratch")
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text("{}", encoding="utf-8")
    model = store.model_url("m", 1)
    calls = [store.check, lambda: store.exists(model), lambda: store.put_dir(src, model),
             lambda: store.put_file(src / "config.json", store.data_url("d", 1, "config.json")),
             lambda: store.list(model), lambda: store.local_path(model), lambda: store.delete(model),
             lambda: store.pull_dir(store.job_url("j"), tmp_path / "job"),
             lambda: store.push_dir(src, store.job_url("j"))]
    for call in calls:
        with pytest.raises(ArtifactStoreError) as caught:
            call()
        _assert_one_line(caught.value, url, "aws s3 mb s3://")
        assert "does not exist" in caught.value.message


def test_a_missing_object_in_an_existing_bucket_is_still_not_an_error_for_exists(s3_url, tmp_path):
    from fmhub.store.artifacts import ArtifactStore, ArtifactStoreError

    store = ArtifactStore(s3_url, cache_root=tmp_path / "cache", scratch_root=tmp_path / "scratch")
    store.check()  # an existing, empty bucket is fine
    url = store.model_url("nothing", 1)
    assert not store.exists(url) and not store.is_dir(url) and store.list(url) == []
    with pytest.raises(ArtifactStoreError, match="is not in the artifact store") as caught:
        store.local_path(url)
    assert caught.value.http_status == 404


@pytest.fixture()
def refusing_s3(s3_url, tmp_path, monkeypatch) -> str:
    """The endpoint of a second S3 server that refuses every request's credentials."""
    import shutil
    import socket
    import subprocess
    import sys
    import time

    server = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not Path(server).is_file():
        pytest.skip("moto_server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)],
                            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _reachable(endpoint):
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.skip("a second moto_server did not start")
            time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_refused_credentials_are_said_without_showing_them(refusing_s3, s3_url, tmp_path, monkeypatch):
    from fmhub.store.artifacts import ArtifactStore, ArtifactStoreError

    monkeypatch.setenv("AWS_ENDPOINT_URL", refusing_s3)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "never-shown-secret-4711")
    store = ArtifactStore(s3_url, cache_root=tmp_path / "cache", scratch_root=tmp_path / "scratch")
    for call in (store.check, lambda: store.exists(store.model_url("m", 1)),
                 lambda: store.write_bytes(store.job_url("j", "log.txt"), b"x")):
        with pytest.raises(ArtifactStoreError) as caught:
            call()
        _assert_one_line(caught.value, s3_url, "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
        assert "access denied" in caught.value.message


def test_an_unreachable_endpoint_fails_quickly_in_one_line(s3_url, tmp_path, monkeypatch):
    import time

    from fmhub.store.artifacts import ArtifactStore, ArtifactStoreError

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    store = ArtifactStore(s3_url, cache_root=tmp_path / "cache", scratch_root=tmp_path / "scratch")
    for call in (store.check, lambda: store.exists(store.model_url("m", 1))):
        started = time.monotonic()
        with pytest.raises(ArtifactStoreError) as caught:
            call()
        assert time.monotonic() - started < 10
        _assert_one_line(caught.value, s3_url, "AWS_ENDPOINT_URL / the network")
        assert "cannot reach" in caught.value.message


def _fmhub_cli(home: Path, artifacts_url: str, *args: str, timeout_s: float = 120):
    import subprocess
    import sys

    env = {**os.environ, "FMHUB_HOME": str(home), "FMHUB_ARTIFACTS_URL": artifacts_url, "HF_HUB_OFFLINE": "1"}
    env.pop("FMHUB_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "fmhub", *args], env=env, capture_output=True, text=True,
                          timeout=timeout_s)


def test_cli_import_and_worker_on_a_missing_bucket_say_error_not_unexpected(s3_url, tiny_bert, tmp_path):
    url = _missing_bucket(s3_url)
    imported = _fmhub_cli(tmp_path / "home", url, "models", "import", str(tiny_bert), "--name", "tiny",
                          "--task", "text-classification")
    worker = _fmhub_cli(tmp_path / "home", url, "worker", "--poll-s", "0.3", timeout_s=60)
    for proc in (imported, worker):
        assert proc.returncode == 1, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and "unexpected error" not in proc.stderr, proc.stderr
        assert url in errors[0] and "does not exist" in errors[0] and "aws s3 mb" in proc.stderr


def test_ray_replicas_read_a_bucket_model_through_their_own_cache(s3_url, tiny_bert, tmp_path, monkeypatch):
    import pickle

    from fmhub.config import reset_settings
    from fmhub.services.models import import_model
    from fmhub.services.replica_files import StoreFiles
    from fmhub.services.serving import EndpointRuntime

    server = _context(tmp_path / "home-a", monkeypatch, s3_url)
    version = import_model(server, tiny_bert, name="tiny", task="text-classification")
    backend = EndpointRuntime(server).backend("ray")  # no cluster needed to make it
    assert backend.loads_from_store and backend.resolve_files == StoreFiles(s3_url)
    resolve = pickle.loads(pickle.dumps(backend.resolve_files))  # it travels to the replicas
    monkeypatch.setenv("FMHUB_HOME", str(tmp_path / "node"))  # a cluster node of its own
    reset_settings()
    folder = Path(resolve(version.path))
    assert folder.is_relative_to(tmp_path / "node" / "cache" / "artifacts")
    assert (folder / "config.json").read_bytes() == (tiny_bert / "config.json").read_bytes()
