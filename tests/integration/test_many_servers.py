"""Many servers and workers on one database: a deployment runs on one server (its owner), either
server's scoring URL answers for it, keys and logs are the same on both, and when the owner is
SIGKILLed the other server takes the deployment over; six fine-tunes submitted through two servers
run on two workers, one of which is SIGKILLed mid-job, and each completes and registers once.

On the embedded default the processes share one FMHUB_HOME (one SQLite file, one artifact folder);
on the shared backend (PostgreSQL + S3) each process has its own FMHUB_HOME, as on separate
machines: nothing but the database and the bucket is shared."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from conftest import build_tiny_bert
from server_process import ServerProcess
from tiny_tasks import DATA_FILES

pytestmark = pytest.mark.integration

TAKEOVER_LIMIT_S = 30.0


def _home(tmp_path, name):
    """The FMHUB_HOME of one process: its own on the shared backend, else the one shared home."""
    shared = os.environ.get("FMHUB_ARTIFACTS_URL", "").startswith("s3://")
    return tmp_path / (f"home-{name}" if shared else "home")


def _finetune(home, root):
    """A fine-tuned tiny text classifier ``tc:1`` in ``home`` (before the servers start)."""
    from fmhub.config import Settings
    from fmhub.services.context import Context
    from fmhub.services.finetune import run_finetune
    from fmhub.services.models import import_model
    from fmhub.services.specs import FinetuneSpec

    ctx = Context.from_settings(Settings(home=home))
    task = next(iter(DATA_FILES))  # the text classification files
    import_model(ctx, build_tiny_bert(root / "tiny-bert"), name="tiny-bert", task=task)
    folder = root / "data"
    folder.mkdir()
    data = DATA_FILES[task](folder)
    data.update(validation="none", test="none")
    run_finetune(ctx, FinetuneSpec(model="tiny-bert:1", task=task, data=data, device="cpu",
                                   hyperparameters={"max_steps": 2, "per_device_train_batch_size": 4,
                                                    "max_seq_length": 32},
                                   registered_model_name="tc"))


def _score(url, key, texts, **headers):
    return httpx.post(f"{url}/endpoints/ep/score", json={"input_data": texts}, timeout=60,
                      headers={"Authorization": f"Bearer {key}", **headers})


def test_a_deployment_runs_once_answers_through_both_servers_and_is_taken_over(tmp_path):
    import fmhub

    _finetune(_home(tmp_path, "tuner"), tmp_path)
    a = ServerProcess(_home(tmp_path, "a"), extra_args=("--no-scheduler",)).start()
    b = ServerProcess(_home(tmp_path, "b"), extra_args=("--no-scheduler",)).start()
    try:
        client_a, client_b = fmhub.Client(url=a.url), fmhub.Client(url=b.url)
        client_a.endpoints.create("ep")
        shown = client_a.endpoints.deploy("ep", "tc:1", "blue")
        assert shown["deployments"][0]["state"] == "ready", shown
        key = client_a.endpoints.keys("ep")["primary_key"]
        texts = ["good movie", "bad film", "the plot"]

        direct = _score(a.url, key, texts)
        assert direct.status_code == 200, direct.text
        # B does not start its own copy: it forwards to A, and B's view names A as the owner.
        time.sleep(3)  # at least one ownership round on B
        forwarded = _score(b.url, key, texts)
        assert forwarded.status_code == 200, forwarded.text
        assert forwarded.json()["predictions"] == direct.json()["predictions"]
        on_b = client_b.endpoints.get("ep")["deployments"][0]
        assert on_b["state"] == "ready" and on_b["owner"].startswith("serve:") and on_b["owner_url"] == a.url

        # An error answered through B is written once to the shared log, and B shows A's lines.
        bad = _score(b.url, key, [{"not": "text"}])
        assert bad.status_code == 422, bad.text
        assert _score(b.url, "wrong-key", texts).status_code == 401
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = client_b.endpoints.logs("ep")
            if any("422" in line for line in lines):
                break
            time.sleep(0.5)
        assert sum("request answered 422" in line for line in lines) == 1, lines
        assert sum("deployment blue: starting" in line for line in lines) == 1, lines  # started once

        # A key regenerated through B stops working on A at once.
        new = client_b.endpoints.keys("ep", regenerate="primary")["primary_key"]
        assert _score(a.url, key, texts).status_code == 401
        assert _score(a.url, new, texts).status_code == 200

        # The owner dies: B takes the deployment over and answers again within the limit.
        a.kill()
        killed = time.monotonic()
        answer = None
        while time.monotonic() - killed < TAKEOVER_LIMIT_S:
            answer = _score(b.url, new, texts)
            if answer.status_code == 200:
                break
            assert answer.status_code == 503, answer.text
            time.sleep(0.5)
        took_s = time.monotonic() - killed
        assert answer is not None and answer.status_code == 200, answer.text if answer else None
        assert answer.json()["predictions"] == direct.json()["predictions"]
        assert took_s < TAKEOVER_LIMIT_S
        # B answers once one instance is up; the deployment reads "ready" when all of its instances
        # (one per core by default) are.
        settled = time.monotonic() + 60
        on_b = client_b.endpoints.get("ep")["deployments"][0]
        while on_b["state"] != "ready" and time.monotonic() < settled:
            time.sleep(0.5)
            on_b = client_b.endpoints.get("ep")["deployments"][0]
        assert on_b["owner_url"] == b.url and on_b["state"] == "ready", on_b
        assert any("taken by" in line for line in client_b.endpoints.logs("ep"))
    finally:
        a.stop()
        b.stop()


def _worker(env, home):
    import subprocess
    import sys

    home.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "fmhub", "worker", "--poll-s", "0.3"],
                            env={**env, "FMHUB_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_six_jobs_through_two_servers_and_two_workers_one_killed_complete_once(tmp_path):
    import signal

    import fmhub
    from conftest import write_sentiment_csv

    tiny = build_tiny_bert(tmp_path / "tiny")
    train = write_sentiment_csv(tmp_path / "train.csv", n=80)
    a = ServerProcess(_home(tmp_path, "a"), extra_args=("--no-scheduler",)).start()
    b = ServerProcess(_home(tmp_path, "b"), extra_args=("--no-scheduler",)).start()
    workers = [_worker(a.env, _home(tmp_path, "w1")), _worker(a.env, _home(tmp_path, "w2"))]
    try:
        client_a, client_b = fmhub.Client(url=a.url), fmhub.Client(url=b.url)
        imported = client_a.models.import_(tiny, name="tiny-bert", task="text-classification")
        assert client_a.jobs.wait(imported.id, timeout_s=120, poll_s=0.3).status.value == "completed"
        spec = {"model": "tiny-bert", "task": "text-classification",
                "data": {"train": str(train), "column_mapping": {"sentence1": "review", "label": "stars"},
                         "validation": "none", "test": "none"},
                "hyperparameters": {"max_steps": 40, "per_device_train_batch_size": 4, "save_steps": 5},
                "device": "cpu", "registered_model_name": "many"}
        jobs = [(client_a if i % 2 else client_b).finetune(spec) for i in range(6)]

        # SIGKILL the first worker once a job it runs has a checkpoint.
        victim = workers[0]
        deadline = time.monotonic() + 180
        killed_job = checkpoint_step = None
        while time.monotonic() < deadline and killed_job is None:
            for job in jobs:
                shown = client_a.jobs.get(job.id)
                if shown.status.value == "running" and (shown.worker or "").endswith(f":{victim.pid}"):
                    steps = [e.data["step"] for e in client_a.jobs.events(job.id) if e.kind == "checkpoint"]
                    if steps:
                        killed_job, checkpoint_step = job.id, steps[-1]
                        break
            time.sleep(0.2)
        assert killed_job is not None, "no job of the first worker reached a checkpoint"
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)

        done = [client_b.jobs.wait(job.id, timeout_s=300, poll_s=0.5) for job in jobs]
        assert [d.status.value for d in done] == ["completed"] * 6, [d.error for d in done]
        registered = sorted(int(d.outputs["registered_model"].split(":")[1]) for d in done)
        assert registered == [1, 2, 3, 4, 5, 6]  # each job registered once, no gap, no duplicate
        assert sorted(client_a.models.get("many")["versions"]) == [1, 2, 3, 4, 5, 6]
        resumed_job = next(d for d in done if d.id == killed_job)
        assert resumed_job.attempts == 2 and resumed_job.worker.endswith(f":{workers[1].pid}")
        for job in jobs:
            events = client_b.jobs.events(job.id)
            seqs = [e.seq for e in events]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (job.id, seqs)
        stages = [e.data for e in client_b.jobs.events(killed_job) if e.kind == "stage"]
        assert any(s["stage"] == "requeued" for s in stages)
        resuming = [s for s in stages if s["stage"] == "resuming"]
        assert len(resuming) == 1 and resuming[0]["from_step"] >= checkpoint_step
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)
        a.stop()
        b.stop()
