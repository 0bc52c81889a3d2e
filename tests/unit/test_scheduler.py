"""The scheduler: slots per compute target, exit causes, cancel, recovery of lost jobs."""

from __future__ import annotations

import sys
import time

import pytest

from fmhub.entities import JobStatus
from fmhub.services import jobs as jobs_service
from fmhub.runners import local as local_runner
from fmhub.services.scheduler import Scheduler, SchedulerOptions
from fmhub.store import jobs_repo


@pytest.fixture()
def fake_command(monkeypatch):
    """Job processes that sleep (or exit with a code) instead of training."""
    behaviour = {"code": None, "sleep_s": 30}

    def command(job_id):
        if behaviour["code"] is not None:
            return [sys.executable, "-c", f"import sys; sys.exit({behaviour['code']})"]
        return [sys.executable, "-c", f"import time; time.sleep({behaviour['sleep_s']})"]

    monkeypatch.setattr(local_runner, "job_command", command)
    return behaviour


def _wait(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _queue(ctx, device="cpu", kind="finetune"):
    return jobs_service.new_job(ctx, kind, {"model": "m", "device": device})


def test_one_cpu_slot_runs_one_job_at_a_time_and_gpu_jobs_use_their_own_slots(ctx, fake_command):
    sched = Scheduler(ctx, SchedulerOptions(cpu_slots=1, gpu_slots=1, gpus=2, stop_grace_s=1))
    a, b = _queue(ctx), _queue(ctx)
    g1, g2, g3 = _queue(ctx, "cuda"), _queue(ctx, "auto"), _queue(ctx, "cuda:1")
    imp = _queue(ctx, kind="import")
    try:
        sched.tick()
        running = {j.id for j in jobs_repo.running_jobs(ctx.db_url)}
        assert running == {a.id, g1.id, g2.id, imp.id}  # cuda:1 is taken by the 'auto' job
        targets = {h.job_id: h.target for h in sched.runners["local"].running()}
        assert targets == {a.id: "cpu", g1.id: "cuda:0", g2.id: "cuda:1", imp.id: "io"}
        assert jobs_repo.get_job(ctx.db_url, b.id).status == JobStatus.queued
        assert jobs_repo.get_job(ctx.db_url, g3.id).status == JobStatus.queued
        assert jobs_repo.get_job(ctx.db_url, a.id).attempts == 1
    finally:
        sched.stop()
    # stopping the scheduler requeues its running jobs to resume
    assert jobs_repo.get_job(ctx.db_url, a.id).status == JobStatus.queued
    assert jobs_repo.get_job(ctx.db_url, a.id).resume is True


def test_a_process_that_dies_without_a_result_fails_the_job_with_its_exit_cause(ctx, fake_command):
    fake_command["code"] = 3
    sched = Scheduler(ctx, SchedulerOptions(gpus=0))
    job = _queue(ctx)
    sched.tick()
    assert _wait(lambda: sched.runners["local"].procs[job.id].poll() is not None)
    sched.tick()
    done = jobs_repo.get_job(ctx.db_url, job.id)
    assert done.status == JobStatus.failed
    assert done.exit_cause == "exit code 3"
    assert "ended without a result (exit code 3)" in done.error


def test_cancel_stops_a_running_job_and_cancels_a_queued_one_at_once(ctx, fake_command):
    sched = Scheduler(ctx, SchedulerOptions(gpus=0, stop_grace_s=5, cancel_wait_s=0))
    running, queued = _queue(ctx), _queue(ctx)
    sched.tick()
    assert jobs_service.cancel_job(ctx, queued.id).status == JobStatus.canceled
    assert jobs_service.cancel_job(ctx, running.id).cancel_requested
    sched.tick()  # SIGTERM
    assert _wait(lambda: sched.runners["local"].procs[running.id].poll() is not None)
    sched.tick()
    done = jobs_repo.get_job(ctx.db_url, running.id)
    assert done.status == JobStatus.canceled and done.exit_cause == "killed by SIGTERM"
    from fmhub.errors import ConflictError

    with pytest.raises(ConflictError, match="already canceled"):
        jobs_service.cancel_job(ctx, running.id)


def test_a_job_whose_worker_is_gone_is_requeued_to_resume_then_failed_after_max_restarts(ctx):
    sched = Scheduler(ctx, SchedulerOptions(gpus=0, max_restarts=1))
    job = _queue(ctx)
    dead_worker = f"serve:{sched.runners['local'].host}:999999"  # no such process
    assert jobs_repo.claim(ctx.db_url, job.id, dead_worker)
    assert sched.recover() == [job.id]
    again = jobs_repo.get_job(ctx.db_url, job.id)
    assert again.status == JobStatus.queued and again.resume and again.attempts == 1
    assert "process was lost" in again.exit_cause
    assert [e.data["stage"] for e in jobs_service.job_events(ctx, job.id)] == ["requeued"]
    assert jobs_repo.claim(ctx.db_url, job.id, dead_worker)  # attempt 2 > max_restarts 1
    sched.recover()
    failed = jobs_repo.get_job(ctx.db_url, job.id)
    assert failed.status == JobStatus.failed and "giving up after 1 restarts" in failed.error


def test_a_live_worker_on_this_host_and_other_hosts_with_fresh_heartbeats_are_left_alone(ctx):
    import subprocess

    sched = Scheduler(ctx, SchedulerOptions(gpus=0, stale_after_s=60))
    mine, remote, stale = _queue(ctx), _queue(ctx), _queue(ctx)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "fmhub", "worker"])
    try:
        jobs_repo.claim(ctx.db_url, mine.id, f"worker:{sched.runners['local'].host}:{worker.pid}")
        jobs_repo.claim(ctx.db_url, remote.id, "worker:another-host:1")
        jobs_repo.claim(ctx.db_url, stale.id, "worker:third-host:1")
        from datetime import datetime, timedelta, timezone

        from sqlalchemy import update

        from fmhub.store.db import session_scope
        from fmhub.store.tables import JobRow

        with session_scope(ctx.db_url) as s:  # the third host stopped beating 5 minutes ago
            s.execute(update(JobRow).where(JobRow.id == stale.id)
                      .values(heartbeat_at=datetime.now(timezone.utc) - timedelta(minutes=5)))
        assert sched.recover() == [stale.id]
    finally:
        worker.kill()
        worker.wait()


def test_resume_only_for_failed_or_canceled_finetune_jobs(ctx):
    from fmhub.errors import ConflictError

    job = _queue(ctx)
    with pytest.raises(ConflictError, match="queued"):
        jobs_service.resume_job(ctx, job.id)
    jobs_repo.set_status(ctx.db_url, job.id, JobStatus.failed, error="boom")
    resumed = jobs_service.resume_job(ctx, job.id)
    assert resumed.status == JobStatus.queued and resumed.resume and resumed.error is None
    other = _queue(ctx, kind="evaluate")
    jobs_repo.set_status(ctx.db_url, other.id, JobStatus.failed)
    with pytest.raises(ConflictError, match="only fine-tune jobs resume"):
        jobs_service.resume_job(ctx, other.id)


def test_api_keys_are_hashed_checked_and_revoked(ctx):
    from fmhub.services.keys import KeyChecker, create_key, list_keys, revoke_key

    made = create_key(ctx, "ci")
    assert made["key"].startswith("fmk_") and made["prefix"] == made["key"][:12]
    checker = KeyChecker(ctx, ttl_s=0.0)
    assert checker.check(made["key"]) and not checker.check(made["key"] + "x")
    assert "key" not in list_keys(ctx)[0]
    revoke_key(ctx, made["id"])
    assert not checker.check(made["key"])



def test_a_job_of_an_unknown_compute_fails_naming_the_known_ones(ctx, fake_command):
    sched = Scheduler(ctx, SchedulerOptions(gpus=0))
    job = jobs_repo.create_job(ctx.db_url, "marsjob00001", "finetune", {"model": "m"}, str(ctx.settings.jobs_dir),
                               compute="mars")
    sched.tick()
    done = jobs_repo.get_job(ctx.db_url, job.id)
    assert done.status == JobStatus.failed
    assert "unknown compute 'mars'" in done.error and "local" in done.error and "ray" in done.error
    assert sched.runners["local"].running() == []


def test_a_canceled_job_first_gets_time_to_stop_by_itself(ctx, fake_command):
    sched = Scheduler(ctx, SchedulerOptions(gpus=0, cancel_wait_s=30, stop_grace_s=1))
    job = _queue(ctx)
    try:
        sched.tick()
        jobs_service.cancel_job(ctx, job.id)
        sched.tick()
        time.sleep(0.3)
        assert sched.runners["local"].procs[job.id].poll() is None  # no signal yet
        sched._cancel_seen[job.id] -= 31  # the wait is over: the runner stops it
        sched.tick()
        assert _wait(lambda: sched.runners["local"].procs[job.id].poll() is not None)
        sched.tick()
        done = jobs_repo.get_job(ctx.db_url, job.id)
        assert done.status == JobStatus.canceled and done.error == "canceled by the user"
    finally:
        sched.stop()


def test_the_local_runner_offers_its_slots_as_capacity():
    from fmhub.runners.base import Runner
    from fmhub.runners.local import LocalRunner

    runner = LocalRunner(cpu_slots=2, gpus=2)
    assert isinstance(runner, Runner)
    capacity = runner.capacity()
    assert capacity.slots == {"cpu": 2, "io": 2, "cuda:0": 1, "cuda:1": 1}
    assert capacity.devices == ["cpu", "cuda:0", "cuda:1"] and capacity.gpus == ["cuda:0", "cuda:1"]
    assert runner.host in capacity.description and "cuda:1" in capacity.description


def test_a_jobs_device_is_checked_against_its_runners_capacity(monkeypatch):
    from fmhub.errors import SpecError
    from fmhub.runners.base import Capacity
    from fmhub.services import finetune_options, scheduler

    monkeypatch.setattr(scheduler, "_CAPACITY", {"local": Capacity({"cpu": 1, "io": 2, "cuda:0": 1, "cuda:1": 1},
                                                                   "a machine with two GPUs")})
    finetune_options.job_devices.cache_clear()
    try:
        assert finetune_options.check_device("local", "CUDA:1") == "cuda:1"
        assert [d["value"] for d in finetune_options.local_devices()] == ["auto", "cpu", "cuda:0", "cuda:1"]
        with pytest.raises(SpecError, match="'cuda:2' does not exist .*two GPUs"):
            finetune_options.check_device("local", "cuda:2")
        with pytest.raises(SpecError, match="unknown device 'tpu'"):
            finetune_options.check_device("local", "tpu")
        monkeypatch.setitem(scheduler._CAPACITY, "local", Capacity({"cpu": 1, "io": 2}, "a CPU-only cluster"))
        with pytest.raises(SpecError, match="no CUDA GPU is available .*CPU-only cluster"):
            finetune_options.check_device("local", "cuda")
        with pytest.raises(SpecError, match="unknown compute 'mars'"):
            finetune_options.check_device("mars", "cpu")
    finally:
        finetune_options.job_devices.cache_clear()
