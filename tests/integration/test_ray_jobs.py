"""Jobs on a Ray cluster: a scheduler with the ``ray`` runner runs fine-tunes as Ray tasks on the
test head (and on a two-node ``ray.cluster_utils.Cluster``): placement on a node, a killed Ray
worker retried from the last checkpoint, cancel, a resource only one node has, a cluster that goes
away mid-job. Tiny model, few steps, every wait bounded."""

from __future__ import annotations

import os
import signal
import time

import pytest

from conftest import write_sentiment_csv
from fmhub import raycluster
from fmhub.entities import JobStatus
from fmhub.runners.ray import RayRunner
from fmhub.services import jobs as jobs_service
from fmhub.services.finetune import submit_finetune
from fmhub.services.models import import_model
from fmhub.services.scheduler import Scheduler, SchedulerOptions
from fmhub.services.specs import FinetuneSpec

pytestmark = [pytest.mark.ray, pytest.mark.integration]

FINAL = (JobStatus.completed, JobStatus.failed, JobStatus.canceled)


def _spec(train, name="on-ray", max_steps=6, save_steps=3, **resources) -> FinetuneSpec:
    return FinetuneSpec(model="tiny-bert:1", task="text-classification",
                        data={"train": str(train), "validation": "none", "test": "none",
                              "column_mapping": {"sentence1": "review", "label": "stars"}},
                        hyperparameters={"max_steps": max_steps, "save_steps": save_steps, "logging_steps": 1,
                                         "per_device_train_batch_size": 4},
                        registered_model_name=name, device="cpu", compute="ray",
                        resources={"num_cpus": 1, **resources})


@pytest.fixture()
def train(ctx, tiny_bert, tmp_path):
    import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification")
    return write_sentiment_csv(tmp_path / "reviews.csv", n=40)


def _scheduler(ctx, address, **options) -> Scheduler:
    opts = {"poll_s": 0.2, "cancel_wait_s": 1.0, "stop_grace_s": 5.0, **options}
    return Scheduler(ctx, SchedulerOptions(**opts), runners={"ray": RayRunner(address=address, probe_every_s=1.0)})


def _drive(sched: Scheduler, until, timeout_s: float, every_s: float = 0.2):
    """Tick ``sched`` until ``until()`` is truthy (returned) or ``timeout_s`` passed (None)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sched.tick()
        value = until()
        if value:
            return value
        time.sleep(every_s)
    return None


def _final(ctx, job_id, sched=None):
    """The job once it ended (and, with ``sched``, once its runner reaped its task)."""
    job = jobs_service.get_job(ctx, job_id)
    if sched is not None and job_id in sched.runners["ray"].tasks:
        return None
    return job if job.status in FINAL else None


def _stages(ctx, job_id, stage):
    return [e.data for e in jobs_service.job_events(ctx, job_id) if e.kind == "stage" and e.data.get("stage") == stage]


@pytest.fixture()
def on_head(ray_env):
    """This process connected to the test head (dropped afterwards, so another test may connect
    to another cluster)."""
    yield ray_env
    raycluster.disconnect()


def test_a_one_worker_finetune_runs_on_the_cluster_registers_its_model_and_names_its_node(ctx, train, on_head):
    import ray

    job, _ = submit_finetune(ctx, _spec(train))
    assert job.compute == "ray"
    sched = _scheduler(ctx, on_head)
    try:
        done = _drive(sched, lambda: _final(ctx, job.id, sched), timeout_s=180)
    finally:
        sched.stop()
    assert done is not None, jobs_service.read_log(ctx, job.id)[0][-3000:]
    assert done.status == JobStatus.completed, (done.error, jobs_service.read_log(ctx, job.id)[0][-3000:])
    assert done.outputs["registered_model"] == "on-ray:1"
    placed = _stages(ctx, job.id, "placed")
    assert len(placed) == 1 and placed[0]["node_id"] in {n["NodeID"] for n in ray.nodes()}
    assert placed[0]["node_ip"] == "127.0.0.1" and placed[0]["compute"] == "ray"
    assert "exit code 0" in done.exit_cause
    shown = _cli(["jobs", "show", job.id, "--json"])
    assert shown["compute"] == "ray" and shown["resources"]["num_cpus"] == 1
    assert shown["node"]["node_id"] == placed[0]["node_id"]


def _cli(args):
    import json

    from typer.testing import CliRunner

    from fmhub.cli.app import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _events_of(ctx, job_id, kind):
    return [e.data for e in jobs_service.job_events(ctx, job_id) if e.kind == kind]


def test_a_killed_ray_worker_is_retried_and_the_job_resumes_from_its_checkpoint_and_registers_once(
        ctx, train, on_head):
    job, _ = submit_finetune(ctx, _spec(train, name="killed", max_steps=400, save_steps=10))
    sched = _scheduler(ctx, on_head)
    try:
        assert _drive(sched, lambda: _events_of(ctx, job.id, "checkpoint"), timeout_s=120, every_s=0.05), \
            jobs_service.read_log(ctx, job.id)[0][-3000:]
        placed = _stages(ctx, job.id, "placed")
        os.kill(placed[0]["ray_worker_pid"], signal.SIGKILL)  # the Ray worker running the job's task
        done = _drive(sched, lambda: _final(ctx, job.id, sched), timeout_s=240)
    finally:
        sched.stop()
    assert done is not None and done.status == JobStatus.completed, (done and done.error)
    placed = _stages(ctx, job.id, "placed")
    assert len(placed) == 2 and placed[0]["launch"] == placed[1]["launch"]
    assert placed[1]["ray_worker_pid"] != placed[0]["ray_worker_pid"]
    assert "was lost" in _stages(ctx, job.id, "requeued")[0]["reason"]
    resuming = _stages(ctx, job.id, "resuming")
    assert len(resuming) == 1 and resuming[0]["from_step"] > 0
    from fmhub.store.models_repo import list_versions

    assert [v.ref for v in list_versions(ctx.db_url, "killed")] == ["killed:1"]
    assert done.outputs["registered_model"] == "killed:1"


def test_cancel_of_a_running_ray_job_stops_it_within_30_s_and_frees_its_cpus(ctx, train, on_head):
    import ray

    sched = _scheduler(ctx, on_head, cancel_wait_s=0)  # ray.cancel at once (the job also sees its cancel)
    raycluster.connect(on_head)
    before = ray.available_resources().get("CPU", 0)
    job, _ = submit_finetune(ctx, _spec(train, name="canceled", max_steps=5000, save_steps=1000))
    try:
        assert _drive(sched, lambda: _events_of(ctx, job.id, "train"), timeout_s=120)
        assert ray.available_resources().get("CPU", 0) == before - 1
        asked = time.monotonic()
        jobs_service.cancel_job(ctx, job.id)
        done = _drive(sched, lambda: _final(ctx, job.id, sched), timeout_s=30)
        took = time.monotonic() - asked
    finally:
        sched.stop()
    assert done is not None and done.status == JobStatus.canceled, (done and done.error)
    assert done.error in ("canceled by the user", "canceled (interrupted)") and took < 30
    deadline = time.monotonic() + 10
    while ray.available_resources().get("CPU", 0) != before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == before


def test_more_gpus_than_the_cluster_has_is_refused_at_submit_naming_the_field(ctx, train, on_head):
    from fmhub.errors import SpecError

    with pytest.raises(SpecError) as err:
        submit_finetune(ctx, _spec(train, num_gpus=2))
    assert "resources.num_gpus: asked 2 GPUs" in err.value.message and "has 0" in err.value.message
    with pytest.raises(SpecError, match="resources.custom.special: asked 1 'special'.*no node declares it"):
        submit_finetune(ctx, _spec(train, custom={"special": 1}))
    assert jobs_service.list_jobs(ctx) == []


# -- two nodes on this machine ----------------------------------------------------------------------

@pytest.fixture()
def two_nodes(ray_address):
    """A two-node ``ray.cluster_utils.Cluster`` on 127.0.0.1: a head with 1 CPU and a node with
    1 CPU and the custom resource ``special``. Returns ``(cluster, special_node_id)``."""
    raycluster.disconnect()  # one cluster per process at a time
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    ray_constants.ENABLE_RAY_CLUSTER = False
    small = {"object_store_memory": 80 * 1024 * 1024, "node_ip_address": "127.0.0.1", "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, **small})
    special = cluster.add_node(num_cpus=1, resources={"special": 1}, **small)
    cluster.wait_for_nodes(timeout=60)
    try:
        yield cluster, special.node_id
    finally:
        raycluster.disconnect()
        _kill_cluster(cluster)


def _kill_cluster(cluster) -> None:
    """Kill every process of ``cluster`` at once, head included (``Cluster.shutdown`` refuses to
    remove the node this process is connected through: here the cluster must vanish under it)."""
    for node in list(cluster.worker_nodes):
        node.kill_all_processes(check_alive=False, allow_graceful=False)
        cluster.worker_nodes.remove(node)
    if cluster.head_node is not None:
        cluster.head_node.kill_all_processes(check_alive=False, allow_graceful=False)
        cluster.head_node = None


def test_a_job_asking_for_a_resource_only_one_node_has_lands_there_and_a_lost_cluster_fails_the_next(
        ctx, train, two_nodes, monkeypatch):
    cluster, special_id = two_nodes
    address = cluster.address
    monkeypatch.setenv("FMHUB_RAY_ADDRESS", address)
    from fmhub.config import get_settings

    get_settings.cache_clear()
    job, _ = submit_finetune(ctx, _spec(train, name="special", custom={"special": 1}))
    sched = _scheduler(ctx, address)
    try:
        done = _drive(sched, lambda: _final(ctx, job.id, sched), timeout_s=180)
        assert done is not None and done.status == JobStatus.completed, (done and done.error)
        assert _stages(ctx, job.id, "placed")[0]["node_id"] == special_id

        # the cluster goes away while a job runs: the job fails naming it, within bounded time
        long, _ = submit_finetune(ctx, _spec(train, name="orphan", max_steps=5000, save_steps=1000))
        assert _drive(sched, lambda: _events_of(ctx, long.id, "train"), timeout_s=120)
        gone = time.monotonic()
        _kill_cluster(cluster)
        failed = _drive(sched, lambda: _final(ctx, long.id, sched), timeout_s=45)
        took = time.monotonic() - gone
    finally:
        sched.stop()
        get_settings.cache_clear()
    assert failed is not None and failed.status == JobStatus.failed, (failed and failed.status)
    assert f"Ray cluster at {address} does not answer" in failed.error and took < 45
