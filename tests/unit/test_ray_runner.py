"""The ``ray`` runner and the submit checks of ``compute: ray``, without a cluster: nothing imports
ray until a Ray job exists, no cluster configured or one that does not answer fails queued jobs with
that cause (never a hang), resources are checked against what the cluster has, a retried task
resumes its job, and the CLI flags fill the spec."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from conftest import write_sentiment_csv
from fmhub import raycluster
from fmhub.entities import JobStatus
from fmhub.errors import ComputeUnavailableError, SpecError
from fmhub.raycluster import ClusterResources
from fmhub.runners.base import Runner
from fmhub.runners.ray import UNAVAILABLE, RayRunner, job_environment, unfit_reason
from fmhub.services import jobs as jobs_service
from fmhub.services.compute_checks import check_compute
from fmhub.services.compute_spec import ComputeResources
from fmhub.services.scheduler import Scheduler, SchedulerOptions
from fmhub.store import jobs_repo

CPU_ONLY = ClusterResources(address="127.0.0.1:1", nodes=2, cpus=4, gpus=0, custom={"special": 1.0})


@pytest.fixture()
def no_cluster(monkeypatch):
    """No ``FMHUB_RAY_ADDRESS``."""
    from fmhub.config import get_settings

    monkeypatch.delenv("FMHUB_RAY_ADDRESS", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture()
def fake_cluster(monkeypatch):
    """``FMHUB_RAY_ADDRESS`` set and :func:`raycluster.cluster_resources` answering ``CPU_ONLY``
    (no Ray connection is made)."""
    from fmhub.config import get_settings

    monkeypatch.setenv("FMHUB_RAY_ADDRESS", CPU_ONLY.address)
    get_settings.cache_clear()
    monkeypatch.setattr(raycluster, "cluster_resources", lambda address=None: CPU_ONLY)
    yield CPU_ONLY
    get_settings.cache_clear()


def _ray_job(ctx, **resources):
    return jobs_service.new_job(ctx, "finetune", {"model": "m", "device": "cpu", "resources": resources},
                                compute="ray")


def test_the_scheduler_builds_the_ray_runner_without_importing_ray():
    code = ("import sys\nfrom fmhub.services.scheduler import RUNNERS, make_runner\n"
            "r = make_runner('ray')\nassert 'ray' in RUNNERS and r.name == 'ray'\n"
            "assert 'ray' not in sys.modules, 'ray imported'\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
    assert isinstance(RayRunner(), Runner)


def _tick_until(sched, predicate, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sched.tick()
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_scheduler_with_no_cluster_configured_leaves_ray_jobs_queued_for_one_that_has_one(ctx, no_cluster):
    """A worker without FMHUB_RAY_ADDRESS (a GPU box of local jobs) must not take a Ray job and fail
    it: the job stays queued, and nothing blocks or connects."""
    runner = RayRunner()
    sched = Scheduler(ctx, SchedulerOptions(gpus=0), runners={"ray": runner})
    job = _ray_job(ctx)
    started = time.monotonic()
    for _ in range(5):
        sched.tick()
    assert time.monotonic() - started < 2.0
    assert jobs_service.get_job(ctx, job.id).status == JobStatus.queued
    assert runner.tasks == {} and runner._state == "idle"


def test_a_cluster_that_does_not_answer_fails_queued_ray_jobs_in_seconds(ctx, no_cluster):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runner = RayRunner(address=f"127.0.0.1:{port}")
    sched = Scheduler(ctx, SchedulerOptions(gpus=0), runners={"ray": runner})
    job = _ray_job(ctx)
    assert _tick_until(sched, lambda: jobs_service.get_job(ctx, job.id).status == JobStatus.failed, timeout_s=15)
    assert f"Ray cluster at 127.0.0.1:{port} does not answer" in jobs_service.get_job(ctx, job.id).error


def test_a_job_asking_more_than_the_cluster_has_in_all_is_placed_to_fail_with_the_reason(ctx, monkeypatch):
    assert unfit_reason({"num_workers": 1, "num_cpus": 1, "num_gpus": 0, "custom": {"special": 1}}, CPU_ONLY) is None
    too_many_gpus = unfit_reason({"num_workers": 1, "num_cpus": 1, "num_gpus": 1, "custom": {}}, CPU_ONLY)
    assert "asks for 1 GPUs" in too_many_gpus and "has 0 GPUs in all" in too_many_gpus
    workers = unfit_reason({"num_workers": 5, "num_cpus": 1, "num_gpus": 0, "custom": {}}, CPU_ONLY)
    assert "1 CPUs per worker x 5 workers" in workers
    unknown = unfit_reason({"num_workers": 1, "num_cpus": 1, "num_gpus": 0, "custom": {"tpu": 1}}, CPU_ONLY)
    assert "'tpu'" in unknown

    runner = RayRunner(address=CPU_ONLY.address)
    runner._state, runner._cluster, runner._cluster_at = "ready", CPU_ONLY, time.monotonic()
    monkeypatch.setattr(raycluster, "connected", lambda: True)  # as if connected: no cluster here
    placement = runner.place(_ray_job(ctx, num_gpus=2))
    assert placement.target == UNAVAILABLE and "has 0 GPUs" in placement.env["reason"]
    handle = runner.start(_ray_job(ctx, num_gpus=2), placement, "unused.log")
    assert runner.poll(handle) == 1 and "has 0 GPUs" in runner.describe_exit(1)
    assert runner.place(_ray_job(ctx, num_cpus=2)).target == "ray"


def test_a_ray_job_is_lost_only_when_its_scheduler_is_gone(ctx):
    runner = RayRunner()
    now = datetime.now(timezone.utc)
    job = _ray_job(ctx)
    dead = job.model_copy(update={"worker": f"serve:{runner.host}:999999", "heartbeat_at": now})
    assert runner.is_lost(dead, now)
    runner.tasks[job.id] = object()  # a task this runner watches is never lost
    assert not runner.is_lost(dead, now)
    runner.tasks.clear()
    fresh = job.model_copy(update={"worker": "worker:other-host:1", "heartbeat_at": now - timedelta(seconds=10)})
    stale = job.model_copy(update={"worker": "worker:other-host:1", "heartbeat_at": now - timedelta(minutes=5)})
    assert not runner.is_lost(fresh, now) and runner.is_lost(stale, now)


def test_the_job_process_gets_the_schedulers_settings_and_aws_variables(ctx, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("FMHUB_JOB_PARENT_PID", "1")
    monkeypatch.setenv("UNRELATED", "x")
    env = job_environment("127.0.0.1:6379")
    assert env["FMHUB_HOME"] == str(ctx.settings.home) and env["FMHUB_DATABASE_URL"] == ctx.db_url
    assert env["AWS_ACCESS_KEY_ID"] == "key" and env["FMHUB_RAY_ADDRESS"] == "127.0.0.1:6379"
    assert "UNRELATED" not in env and "FMHUB_JOB_PARENT_PID" not in env


def test_a_retried_ray_task_makes_its_job_resume_and_says_why(ctx):
    from fmhub.services.job_exec import record_placement

    job = _ray_job(ctx)
    node = {"node_id": "a" * 56, "node_ip": "127.0.0.1", "host": "h", "ray_worker_pid": 1}
    assert record_placement(ctx, job.id, {"launch": "one", **node}) is False
    assert not jobs_service.get_job(ctx, job.id).resume
    assert record_placement(ctx, job.id, {"launch": "one", **node, "ray_worker_pid": 2}) is True
    assert jobs_service.get_job(ctx, job.id).resume
    stages = [e.data for e in jobs_service.job_events(ctx, job.id) if e.kind == "stage"]
    assert [s["stage"] for s in stages] == ["placed", "requeued", "placed"]
    assert "was lost" in stages[1]["reason"] and stages[2]["attempt"] == 2
    jobs_repo.requeue(ctx.db_url, job.id, resume=False, from_status=(JobStatus.queued,))
    assert record_placement(ctx, job.id, {"launch": "two", **node}) is False  # a new start: not a retry


# -- submit checks ----------------------------------------------------------------------------------

def test_compute_ray_with_no_cluster_is_a_503_naming_the_setting(no_cluster):
    with pytest.raises(ComputeUnavailableError) as err:
        check_compute("ray", ComputeResources(), "auto")
    assert "FMHUB_RAY_ADDRESS" in err.value.message and err.value.http_status == 503
    assert check_compute("local", ComputeResources(), "cpu") == "cpu"  # local is as before


def test_resources_and_devices_beyond_the_cluster_are_refused_naming_the_field(fake_cluster):
    assert check_compute("ray", ComputeResources(num_cpus=4, custom={"special": 1}), "cpu") == "cpu"
    with pytest.raises(SpecError) as err:
        check_compute("ray", ComputeResources(num_gpus=2, num_cpus=8, custom={"tpu": 1}), "auto")
    message = err.value.message
    assert "resources.num_gpus: asked 2 GPUs per worker, the cluster has 0" in message
    assert "resources.num_cpus: asked 8 CPUs" in message and "resources.custom.tpu" in message
    with pytest.raises(SpecError, match="resources.num_workers: 5 workers x 1 CPUs = 5, the cluster has 4"):
        check_compute("ray", ComputeResources(num_workers=5), "auto")
    with pytest.raises(SpecError, match="no CUDA GPU is available .*Ray cluster 127.0.0.1:1: 2 nodes, 4 CPUs"):
        check_compute("ray", ComputeResources(), "cuda")


# -- the CLI -------------------------------------------------------------------------------------------

@pytest.fixture()
def tiny_model(ctx, tiny_bert):
    from fmhub.services.models import import_model

    import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification")
    return "tiny-bert:1"


def _finetune_args(train, *extra):
    return ["finetune", "--model", "tiny-bert:1", "--task", "text-classification", "--train", str(train),
            "--map", "sentence1=review", "--map", "label=stars", "--validation", "none", "--test", "none",
            "--max-steps", "2", *extra]


def test_cli_compute_ray_without_a_cluster_exits_1_naming_the_setting_before_reading_data(
        ctx, tiny_model, tmp_path, no_cluster):
    from fmhub.cli.app import app

    result = CliRunner().invoke(app, _finetune_args(tmp_path / "missing.csv", "--compute", "ray"))
    assert result.exit_code == 1
    assert "FMHUB_RAY_ADDRESS is not set" in result.output and "missing.csv" not in result.output
    result = CliRunner().invoke(app, ["evaluate", "--model", "tiny-bert:1", "--test", str(tmp_path / "t.csv"),
                                      "--compute", "ray", "--json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["error"]["code"] == "compute_unavailable"
    assert jobs_service.list_jobs(ctx) == []


def test_cli_compute_ray_in_the_foreground_queues_the_job_for_the_cluster(ctx, tiny_model, tmp_path, fake_cluster):
    from fmhub.cli.app import app

    train = write_sentiment_csv(tmp_path / "reviews.csv", n=20)
    result = CliRunner().invoke(app, _finetune_args(train, "--compute", "ray", "--num-cpus", "2", "--resource",
                                                    "special=1", "--max-failures", "3", "--device", "cpu"))
    assert result.exit_code == 0, result.output
    [job] = jobs_service.list_jobs(ctx)
    assert job.status == JobStatus.queued and job.compute == "ray"
    assert job.spec["resources"] == {"num_workers": 1, "num_cpus": 2.0, "num_gpus": 0.0, "custom": {"special": 1.0},
                                     "max_failures": 3}
    assert f"job {job.id} queued for the Ray cluster at {fake_cluster.address}" in result.output
    assert f"fmhub jobs show {job.id}" in result.output
    shown = CliRunner().invoke(app, ["jobs", "show", job.id])
    assert "compute: ray (num_workers 1, num_cpus 2.0" in shown.output
    bad = CliRunner().invoke(app, _finetune_args(train, "--compute", "ray", "--resource", "special"))
    assert bad.exit_code == 1 and "--resource 'special' is not NAME=AMOUNT" in bad.output
    local = CliRunner().invoke(app, _finetune_args(train, "--num-gpus", "1"))
    assert local.exit_code == 1 and "resources apply to compute 'ray' only" in local.output


def test_cli_help_names_the_ray_flags_and_their_defaults():
    from fmhub.cli.app import app

    text = " ".join(CliRunner().invoke(app, ["finetune", "--help"]).output.split())  # unwrapped
    for flag in ("--compute", "--num-workers", "--num-cpus", "--num-gpus", "--resource", "--max-failures"):
        assert flag in text
    assert "Ray's num_cpus; default 1" in text and "max_retries; default 2" in text
    text = CliRunner().invoke(app, ["evaluate", "--help"]).output
    assert "--compute" in text and "--num-gpus" in text


def test_evaluate_flags_fill_compute_and_resources():
    from fmhub.cli.evaluate import EvaluateFlags, build_evaluate_spec

    spec = build_evaluate_spec("m:1", EvaluateFlags(test="t.csv", compute="ray",
                                                    resources=(("num_cpus", 2.0), ("resource", ("gpu_node=1",)))))
    assert spec.compute == "ray" and spec.resources.num_cpus == 2 and spec.resources.custom == {"gpu_node": 1.0}


# -- the REST API ----------------------------------------------------------------------------------

def _body(train):
    return {"model": "tiny-bert:1", "task": "text-classification", "device": "cpu",
            "data": {"train": str(train), "validation": "none", "test": "none",
                     "column_mapping": {"sentence1": "review", "label": "stars"}},
            "hyperparameters": {"max_steps": 2}, "compute": "ray",
            "resources": {"num_cpus": 2, "custom": {"special": 1}, "max_failures": 1}}


def test_the_jobs_api_takes_compute_and_resources_and_answers_503_without_a_cluster(
        ctx, tiny_model, tmp_path, monkeypatch):
    from local_client import local_client

    from fmhub.api.app import create_app
    from fmhub.config import get_settings

    train = write_sentiment_csv(tmp_path / "reviews.csv", n=20)
    monkeypatch.delenv("FMHUB_RAY_ADDRESS", raising=False)
    get_settings.cache_clear()
    from dataclasses import replace

    from fmhub.services.data_roots import DataRoots

    server_ctx = replace(ctx, data_roots=DataRoots.of([tmp_path]))
    with local_client(create_app(server_ctx), raise_server_exceptions=False) as api:
        refused = api.post("/api/v1/jobs/finetune", json=_body(train))
        assert refused.status_code == 503 and "FMHUB_RAY_ADDRESS" in refused.json()["error"]["message"]
        evaluate = api.post("/api/v1/jobs/evaluate", json={"model": "tiny-bert:1", "compute": "ray",
                                                           "data": {"test": str(train)}})
        assert evaluate.status_code == 503
        monkeypatch.setenv("FMHUB_RAY_ADDRESS", CPU_ONLY.address)
        get_settings.cache_clear()
        monkeypatch.setattr(raycluster, "cluster_resources", lambda address=None: CPU_ONLY)
        taken = api.post("/api/v1/jobs/finetune", json=_body(train))
        assert taken.status_code == 202, taken.text
        job = taken.json()["job"]
        assert job["compute"] == "ray" and job["spec"]["resources"]["custom"] == {"special": 1.0}
        too_big = api.post("/api/v1/jobs/finetune", json={**_body(train), "resources": {"num_gpus": 1}})
        assert too_big.status_code == 422 and "resources.num_gpus" in too_big.json()["error"]["message"]
    get_settings.cache_clear()
