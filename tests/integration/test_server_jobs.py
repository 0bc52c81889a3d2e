"""A real ``fmhub serve`` on 127.0.0.1 driven through the Python client: fine-tune with progress
events, survive SIGKILL (resume from a checkpoint), cancel and resume, and 4xx answers for bad
requests."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from conftest import build_tiny_bert, write_sentiment_csv
from server_process import ServerProcess, running_server

pytestmark = pytest.mark.integration

MAPPING = {"sentence1": "review", "label": "stars"}


def _spec(train: Path, **over):
    spec = {"model": "tiny-bert", "task": "text-classification",
            "data": {"train": str(train), "column_mapping": MAPPING},
            "hyperparameters": {"max_steps": 12, "per_device_train_batch_size": 8, "save_steps": 6},
            "device": "cpu"}
    for key, value in over.items():
        spec[key] = {**spec[key], **value} if isinstance(value, dict) and key in spec else value
    return spec


def _import_tiny(client, folder: Path) -> None:
    import fmhub  # noqa: F401 - the client is what is tested

    job = client.models.import_(folder, name="tiny-bert", task="text-classification")
    done = client.jobs.wait(job.id, timeout_s=120, poll_s=0.3)
    assert done.status.value == "completed", done.error
    assert done.outputs["registered_model"] == "tiny-bert:1"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import fmhub

    root = tmp_path_factory.mktemp("served")
    tiny = build_tiny_bert(root / "tiny")
    train = write_sentiment_csv(root / "train.csv", n=80)
    with running_server(root / "home") as server:
        client = fmhub.Client(url=server.url)
        _import_tiny(client, tiny)
        yield server, client, train
        client.close()


def test_finetune_through_the_client_with_progress_events_and_registered_model(served):
    server, client, train = served
    job = client.finetune(_spec(train, registered_model_name="served-model"))
    assert job.status.value == "queued"
    events = list(client.jobs.follow(job.id, poll_s=0.3, timeout_s=240))
    done = client.jobs.get(job.id)
    assert done.status.value == "completed", done.error
    kinds = [e.kind for e in events]
    train_steps = [e.data["step"] for e in events if e.kind == "train"]
    assert train_steps and train_steps[-1] == 12 and train_steps == sorted(train_steps)
    first = next(e for e in events if e.kind == "train")
    assert {"step", "total", "epoch", "loss", "learning_rate", "samples_per_s", "eta_s"} <= set(first.data)
    assert "checkpoint" in kinds and kinds[-1] == "done"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    ref = done.outputs["registered_model"]
    assert ref == "served-model:1"
    shown = client.models.get(ref)
    assert shown["version"]["lineage"]["job_id"] == job.id
    assert set(shown["version"]["metrics"]) == {"validation", "test"}
    log = client.jobs.logs(job.id)
    assert "training finished" in log["text"] and log["next_offset"] > 0
    listed = client.models.list(registry="workspace", task="text-classification")
    assert "served-model" in [c.name for c in listed]
    predictions = client.models.predict(ref, ["a good movie"])
    assert predictions["predictions"][0][0]["label"] in ("neg", "pos")


def test_cancel_keeps_checkpoints_and_resume_finishes(served):
    server, client, train = served
    spec = _spec(train, registered_model_name="canceled-model",
                 hyperparameters={"max_steps": 4000, "per_device_train_batch_size": 4, "save_steps": 50},
                 data={"validation": "none", "test": "none"})
    job = client.finetune(spec)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(e.kind == "checkpoint" for e in client.jobs.events(job.id)):
            break
        time.sleep(0.3)
    canceled = client.jobs.cancel(job.id)
    assert canceled.cancel_requested or canceled.status.value == "canceled"
    done = client.jobs.wait(job.id, timeout_s=60, poll_s=0.3)
    assert done.status.value == "canceled"
    assert list((Path(done.folder) / "checkpoints").glob("checkpoint-*"))
    with pytest.raises(Exception) as info:
        client.jobs.cancel(job.id)
    assert getattr(info.value, "http_status", None) == 409
    last_step = max(e.data["step"] for e in client.jobs.events(job.id) if e.kind == "checkpoint")
    resumed = client.jobs.resume(job.id)
    assert resumed.status.value == "queued" and resumed.resume
    # Resuming from the checkpoint shows in the events; then cancel again to keep the test short.
    deadline = time.monotonic() + 120
    seen = []
    while time.monotonic() < deadline:
        seen = [e for e in client.jobs.events(job.id) if e.kind == "stage" and e.data.get("stage") == "resuming"]
        if seen:
            break
        time.sleep(0.3)
    assert seen and seen[-1].data["from_step"] == last_step
    client.jobs.cancel(job.id)
    assert client.jobs.wait(job.id, timeout_s=60, poll_s=0.3).status.value == "canceled"


def test_bad_requests_get_4xx_with_the_error_body(served):
    server, client, train = served
    api = server.url + "/api/v1"

    def check(response, status, code):
        assert response.status_code == status, response.text
        body = response.json()["error"]
        assert body["code"] == code and body["message"]
        return body

    body = check(httpx.post(api + "/jobs/finetune", json=_spec(train, model="no-such-model")), 404, "not_found")
    assert "no-such-model" in body["message"]
    bad_map = _spec(train, data={"column_mapping": {"sentence1": "nope", "label": "stars"}})
    body = check(httpx.post(api + "/jobs/finetune", json=bad_map), 422, "invalid_data")
    assert "nope" in body["message"] or "nope" in str(body.get("details"))
    body = check(httpx.post(api + "/jobs/finetune", json=_spec(train, hyperparameters={"learning_rate": -1})),
                 422, "invalid_request")
    assert "hyperparameters.learning_rate" in body["message"]
    check(httpx.post(api + "/jobs/finetune", json={**_spec(train), "epochs": 3}), 422, "invalid_request")
    check(httpx.post(api + "/jobs/finetune", content=b"{not json", headers={"content-type": "application/json"}),
          422, "invalid_request")
    check(httpx.get(api + "/jobs/nope"), 404, "not_found")
    check(httpx.get(api + "/models?task=dancing"), 422, "invalid_spec")
    check(httpx.get(api + "/models?limit=0"), 422, "invalid_request")
    check(httpx.get(api + "/models/no-such-model"), 404, "not_found")
    check(httpx.post(api + "/models/import", json={"path": str(train.parent / "missing"), "name": "x",
                                                    "task": "text-classification"}), 422, "import_refused")
    check(httpx.get(server.url + "/nowhere"), 404, "not_found")
    assert client.jobs.list(status="queued") == []  # nothing was queued by the bad requests


def test_api_keys_are_required_when_asked_and_health_stays_open(tmp_path):
    import fmhub

    home = tmp_path / "home"
    with running_server(home, extra_args=("--require-api-key",)) as server:
        assert httpx.get(server.url + "/health").status_code == 200
        r = httpx.get(server.url + "/api/v1/models")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
        assert httpx.get(server.url + "/api/v1/models", headers={"Authorization": "Bearer fmk_wrong"}).status_code == 401
        import subprocess
        import sys

        made = subprocess.run([sys.executable, "-m", "fmhub", "keys", "create", "--name", "test", "--json"],
                              env=server.env, capture_output=True, text=True, check=True)
        import json

        key = json.loads(made.stdout)["key"]
        if server.env.get("FMHUB_DATABASE_URL"):  # the shared backend: what the database holds
            import sqlalchemy as sa

            engine = sa.create_engine(server.env["FMHUB_DATABASE_URL"], poolclass=sa.pool.NullPool)
            with engine.connect() as c:
                db = repr(c.execute(sa.text("SELECT * FROM api_keys")).all()).encode()
            engine.dispose()
            assert b"test" in db
        else:
            db = (home / "fmhub.db").read_bytes()
        assert key.encode() not in db  # stored hashed
        with fmhub.Client(url=server.url, api_key=key) as client:
            assert client.models.page(limit=1)["total"] >= 1


def test_sigkill_mid_training_resumes_from_the_checkpoint(tmp_path):
    import fmhub

    tiny = build_tiny_bert(tmp_path / "tiny")
    train = write_sentiment_csv(tmp_path / "train.csv", n=80)
    server = ServerProcess(tmp_path / "home").start()
    try:
        client = fmhub.Client(url=server.url)
        _import_tiny(client, tiny)
        spec = _spec(train, registered_model_name="survivor",
                     hyperparameters={"max_steps": 600, "per_device_train_batch_size": 4, "save_steps": 50},
                     data={"validation": "none", "test": "none"})
        job = client.finetune(spec)
        deadline = time.monotonic() + 120
        checkpoint_step = None
        while time.monotonic() < deadline and checkpoint_step is None:
            steps = [e.data["step"] for e in client.jobs.events(job.id) if e.kind == "checkpoint"]
            checkpoint_step = steps[-1] if steps else None
            time.sleep(0.1)
        assert checkpoint_step is not None
        server.kill()
        client.close()
        server = ServerProcess(tmp_path / "home", port=server.port).start()
        client = fmhub.Client(url=server.url)
        done = client.jobs.wait(job.id, timeout_s=240, poll_s=0.3)
        assert done.status.value == "completed", done.error
        assert done.attempts == 2
        events = client.jobs.events(job.id)
        stages = [e.data for e in events if e.kind == "stage"]
        assert any(s["stage"] == "requeued" for s in stages)
        resumed = [s for s in stages if s["stage"] == "resuming"]
        assert len(resumed) == 1 and resumed[0]["from_step"] >= checkpoint_step
        start = resumed[0]["from_step"]
        after = [e.data["step"] for e in events[events.index(next(e for e in events if e.data.get("stage") == "resuming")):]
                 if e.kind == "train"]
        assert after and min(after) > start and after[-1] == 600  # the step count goes on, not from 0
        assert done.outputs["registered_model"] == "survivor:1"
        versions = [c.name for c in client.models.list(registry="workspace")]
        assert versions.count("survivor") == 1 and "tiny-bert" in versions
        assert client.models.get("survivor")["versions"] == [1]
        client.close()
    finally:
        server.stop()


def test_an_api_only_server_and_a_separate_worker_share_the_queue(tmp_path):
    import subprocess
    import sys

    import fmhub

    tiny = build_tiny_bert(tmp_path / "tiny")
    with running_server(tmp_path / "home", extra_args=("--no-scheduler",)) as server:
        with fmhub.Client(url=server.url) as client:
            job = client.models.import_(tiny, name="tiny-bert", task="text-classification")
            time.sleep(1.0)
            assert client.jobs.get(job.id).status.value == "queued"  # nobody runs jobs yet
            assert httpx.get(server.url + "/ready").json()["status"] == "ready"
            worker = subprocess.Popen([sys.executable, "-m", "fmhub", "worker", "--poll-s", "0.3"], env=server.env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                done = client.jobs.wait(job.id, timeout_s=120, poll_s=0.3)
                assert done.status.value == "completed" and done.worker.startswith("worker:")
                assert client.models.get("tiny-bert:1")["version"]["task"] == "text-classification"
            finally:
                worker.terminate()
                assert worker.wait(timeout=30) == 0
