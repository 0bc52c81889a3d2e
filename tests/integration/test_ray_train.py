"""Distributed data-parallel fine-tuning on the test Ray head (Ray Train's ``TorchTrainer``), run
in this process as a job process runs it: the job is created and claimed, then ``execute_finetune``
trains on 2 Ray Train workers of 1 CPU each, evaluates and registers once.

A tiny random BERT built from a config keeps each run to a few seconds of training; each Ray Train
run also pays for starting its worker processes (a few seconds each on 2 cores).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from conftest import write_sentiment_csv
from fmhub.entities import JobStatus
from fmhub.errors import JobCanceledError
from fmhub.services import jobs as jobs_service
from fmhub.services.finetune import _create_job, execute_finetune, run_finetune, validate
from fmhub.services.finetune_ray import RAY_PIDS_FILE
from fmhub.services.models import import_model
from fmhub.services.specs import FinetuneSpec
from fmhub.store import jobs_repo, models_repo

pytestmark = [pytest.mark.integration, pytest.mark.ray]

RUN_TIMEOUT_S = 240
"""Bound of one Ray Train run here: starting a group of 2 workers takes 60-80 s on 2 shared cores."""


@pytest.fixture(autouse=True)
def loopback_driver(monkeypatch):
    """A driver on this machine reaches a loopback head only with Ray's loopback switch (else Ray
    swaps 127.0.0.1 for the machine's address, where the head does not listen)."""
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture()
def data(ctx, tiny_bert, tmp_path):
    import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification", license="apache-2.0")
    train = write_sentiment_csv(tmp_path / "train.csv", n=64)
    valid = write_sentiment_csv(tmp_path / "valid.csv", n=40)
    return train, valid


def _spec(data, *, validation=True, compute="ray", workers=2, batch=4, **hp):
    train, valid = data
    extra = {"compute": "ray", "resources": {"num_workers": workers, "num_cpus": 1}} if compute == "ray" else {}
    return FinetuneSpec(model="tiny-bert:1", task="text-classification",
                        data={"train": str(train), "validation": str(valid) if validation else "none",
                              "test": "none", "column_mapping": {"sentence1": "review", "label": "stars"}},
                        hyperparameters={"per_device_train_batch_size": batch, "learning_rate": 5e-3,
                                         "logging_steps": 2, "seed": 7, **hp},
                        registered_model_name=f"sentiment-{compute}-{workers}", **extra)


def _execute(ctx, spec):
    """What a job process does: create and claim the job, then run it."""
    validated = validate(ctx, spec)
    job = _create_job(ctx, spec, validated[3], validated[4].report)
    job = jobs_service.claim_foreground(ctx, job)
    return job, lambda: execute_finetune(ctx, job, validated=validated)


def _bounded(fn, timeout_s=RUN_TIMEOUT_S):
    """Run ``fn`` in a thread and wait at most ``timeout_s`` seconds for it."""
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), f"the run took over {timeout_s} s"
    if "error" in box:
        raise box["error"]
    return box["result"]


def test_two_workers_register_once_with_ray_lineage_and_match_a_local_run(ctx, data, ray_env):
    """The whole path: the job is submitted and a scheduler's ``ray`` runner starts it as a Ray task
    (the coordinator), whose job process trains on 2 Ray Train workers, evaluates and registers.

    Two workers with 4 rows each per step against a local run with 8 rows per step: the same
    global batch, steps, learning rate, seed and initial weights; only which rows share a step
    differs (the sampler's batches are dealt to the workers in turn). On 40 validation rows, an
    accuracy difference of one standard error of a binomial proportion near 0.9 is sqrt(0.09/40)
    ~ 0.05; 0.15 (3 standard errors) is the tolerance, and both runs must learn the task (> 0.8).
    """
    from fmhub import raycluster
    from fmhub.runners.ray import RayRunner
    from fmhub.services.finetune import submit_finetune
    from fmhub.services.scheduler import Scheduler, SchedulerOptions

    t0 = time.perf_counter()
    local = run_finetune(ctx, _spec(data, compute="local", batch=8, max_steps=60))
    local_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    job, _ = submit_finetune(ctx, _spec(data, batch=4, max_steps=60))
    sched = Scheduler(ctx, SchedulerOptions(poll_s=0.2),
                      runners={"ray": RayRunner(address=ray_env, probe_every_s=1.0)})
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            sched.tick()
            done = jobs_service.get_job(ctx, job.id)
            if done.status in (JobStatus.completed, JobStatus.failed, JobStatus.canceled) \
                    and job.id not in sched.runners["ray"].tasks:
                break
            time.sleep(0.2)
    finally:
        sched.stop()
        raycluster.disconnect()
    ray_s = time.perf_counter() - t0
    print(f"\nlocal run {local_s:.1f} s; 2-worker Ray job {ray_s:.1f} s")
    log_tail = jobs_service.read_log(ctx, job.id)[0][-3000:]
    assert done.status == JobStatus.completed, (done.error, log_tail)
    assert done.outputs["train"]["workers"] == 2 and done.outputs["train"]["global_step"] == 60
    versions = models_repo.list_versions(ctx.db_url, "sentiment-ray-2")
    assert [v.ref for v in versions] == [done.outputs["registered_model"]]  # registered once
    lineage = versions[0].lineage
    assert lineage["compute"] == {"compute": "ray", "num_workers": 2, "num_cpus": 1.0, "num_gpus": 0.0, "custom": {}}
    assert lineage["train"]["workers"] == 2
    assert local.model_version.lineage["compute"] == {"compute": "local"}

    ray_acc = done.outputs["metrics"]["validation"]["accuracy"]
    local_acc = local.metrics["validation"]["accuracy"]
    print(f"validation accuracy: local {local_acc:.3f}, 2 Ray workers {ray_acc:.3f}")
    assert local_acc > 0.8 and ray_acc > 0.8
    assert abs(ray_acc - local_acc) <= 0.15

    events = jobs_service.job_events(ctx, job.id)
    assert [e.data["compute"] for e in events if e.kind == "stage" and e.data.get("stage") == "placed"] == ["ray"]
    train_events = [e.data for e in events if e.kind == "train"]
    assert train_events and {"step", "loss", "eta_s", "total"} <= set(train_events[-1])  # from the rank-0 worker
    assert train_events[-1]["total"] == 60
    assert not (Path(done.folder) / "ray-train").exists()  # checkpoints go once the model is registered


def _watch(ctx, job_id, until, timeout_s=RUN_TIMEOUT_S, every_s=0.05):
    """Poll the job's events until ``until(events)`` returns a value; return it (None on timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = until(jobs_service.job_events(ctx, job_id))
        if value:
            return value
        time.sleep(every_s)
    return None


def test_a_killed_worker_is_restarted_from_the_last_checkpoint_and_the_job_completes_once(ctx, data, ray_env):
    """Ray Train keeps a reported checkpoint once its controller has taken it (it looks every 2 s
    and then writes its snapshot): the worker is killed after that, so the restart has a
    checkpoint to go on from."""
    spec = _spec(data, validation=False, max_steps=300, save_steps=10)
    job, run = _execute(ctx, spec)
    killed: dict = {}
    snapshot = Path(job.folder) / "ray-train" / job.id / "checkpoint_manager_snapshot.json"

    def taken(events):
        if not snapshot.is_file() or "checkpoint_" not in snapshot.read_text(encoding="utf-8"):
            return None
        return max((e.data["step"] for e in events if e.kind == "checkpoint"), default=None)

    def killer():
        step = _watch(ctx, job.id, taken)
        pids = Path(job.folder) / RAY_PIDS_FILE
        if step and pids.is_file():
            ranks = dict(line.split() for line in pids.read_text().splitlines())
            killed.update(step=step, pid=int(ranks["1"]))  # not the rank that sends the events
            os.kill(killed["pid"], signal.SIGKILL)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    result = _bounded(run, 2 * RUN_TIMEOUT_S)  # two worker groups start
    print(f"\nrun with a killed worker: {time.perf_counter() - t0:.1f} s; killed {killed}")
    thread.join(5)
    assert killed, "no worker was killed (training ended before Ray Train took a checkpoint?)"
    assert result.job.status == JobStatus.completed and result.train["global_step"] == 300
    resumed = [e.data for e in jobs_service.job_events(ctx, job.id)
               if e.kind == "stage" and e.data.get("stage") == "resuming"]
    assert resumed and resumed[0]["restarted"] and resumed[0]["from_step"] >= 10
    trains = [e.data for e in jobs_service.job_events(ctx, job.id) if e.kind == "stage"
              and e.data.get("stage") == "training"]
    assert len(trains) == 2 and trains[1]["step"] == resumed[0]["from_step"] > 0  # not again from step 0
    assert [v.ref for v in models_repo.list_versions(ctx.db_url, "sentiment-ray-2")] == [result.model_version.ref]


def test_a_cancel_stops_every_worker_and_the_job_ends_canceled(ctx, data, ray_env, monkeypatch):
    spec = _spec(data, validation=False, max_steps=400)
    job, run = _execute(ctx, spec)

    def canceler():
        if _watch(ctx, job.id, lambda evs: any(e.kind == "train" and e.data["step"] >= 6 for e in evs)):
            jobs_repo.request_cancel(ctx.db_url, job.id)

    threading.Thread(target=canceler, daemon=True).start()
    with pytest.raises(JobCanceledError, match="canceled by the user"):
        _bounded(run)
    job = jobs_repo.get_job(ctx.db_url, job.id)
    assert job.status == JobStatus.canceled
    checkpoints = [e.data["step"] for e in jobs_service.job_events(ctx, job.id) if e.kind == "checkpoint"]
    assert checkpoints and checkpoints[-1] < 400  # the cancel's checkpoint, kept for a resume


RAY_HAS_S3 = os.environ.get("FMHUB_TEST_RAY_S3", "") == "1"
"""The test Ray head was started with the test S3 server's ``AWS_*`` variables (each Ray process
reaches a bucket with its own credentials, never the job process's)."""


@pytest.mark.skipif(not RAY_HAS_S3, reason="the test Ray head has no S3 credentials (start it with the AWS_* "
                                           "variables of the test S3 server and set FMHUB_TEST_RAY_S3=1)")
def test_with_a_bucket_store_ray_train_keeps_its_checkpoints_in_the_bucket(tiny_bert, tmp_path, monkeypatch, ray_env):
    from fmhub.config import reset_settings
    from fmhub.services.context import Context
    from shared_backend import use_shared_artifacts

    monkeypatch.setenv("FMHUB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FMHUB_DATABASE_URL", raising=False)
    url = use_shared_artifacts(monkeypatch)
    reset_settings()
    ctx = Context.from_settings()
    assert not ctx.artifacts.is_local
    import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification", license="apache-2.0")
    data = (write_sentiment_csv(tmp_path / "train.csv", n=64), None)
    job, run = _execute(ctx, _spec(data, validation=False, max_steps=12, save_steps=4))
    seen: list[str] = []

    def look():  # the run's checkpoints while it trains
        prefix = ctx.artifacts.job_url(job.id, "ray-train", job.id)
        found = _watch(ctx, job.id, lambda evs: [p for p in ctx.artifacts.list(prefix) if "checkpoint_" in p],
                       every_s=0.2)
        seen.extend(found or [])

    thread = threading.Thread(target=look, daemon=True)
    thread.start()
    result = _bounded(run)
    thread.join(10)
    reset_settings()
    assert result.job.status == JobStatus.completed and result.train["global_step"] == 12
    assert seen, f"no Ray Train checkpoint appeared under {url}/jobs/{job.id}/ray-train"
    assert ctx.artifacts.list(ctx.artifacts.job_url(job.id, "ray-train"), recursive=True) == []  # removed once registered
