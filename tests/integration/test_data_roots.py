"""A real ``fmhub serve`` on 127.0.0.1 reads user files only under its data roots: paths outside
(also through ``..`` and a symlink) answer 403 ``forbidden_path`` on data registration, job
submission and model import; a file under a root is accepted; ``fmhub finetune --submit`` (and the
Python client) of a file outside the roots succeeds by uploading it.

The server runs without a scheduler: submitted jobs stay queued and nothing trains.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from conftest import build_tiny_bert, write_sentiment_csv
from server_process import running_server

pytestmark = pytest.mark.integration

MAPPING = {"sentence1": "review", "label": "stars"}
http = httpx.Client(timeout=120)  # a submission loads the tokenizer and reads the data first


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server started from ``start/`` with ``--data-root data/``; ``outside/`` holds a data file
    and ``data/`` a symlink to it. The workspace model ``tiny-bert:1`` is imported beforehand."""
    from fmhub.config import Settings
    from fmhub.services.context import Context
    from fmhub.services.models import import_model

    root = tmp_path_factory.mktemp("roots")
    data, outside, start = root / "data", root / "outside", root / "start"
    for folder in (data, outside, start):
        folder.mkdir()
    write_sentiment_csv(data / "train.csv", n=40)
    write_sentiment_csv(outside / "secret.csv", n=40)
    write_sentiment_csv(start / "here.csv", n=40)
    (data / "link.csv").symlink_to(outside / "secret.csv")
    import_model(Context.from_settings(Settings(home=root / "home")), build_tiny_bert(root / "tiny"),
                 name="tiny-bert", task="text-classification")
    with running_server(root / "home", extra_args=("--no-scheduler",), data_roots=(data,), cwd=start) as server:
        yield server, root


def _spec(train: str) -> dict:
    return {"model": "tiny-bert:1", "task": "text-classification", "device": "cpu",
            "data": {"train": train, "column_mapping": MAPPING}, "hyperparameters": {"max_steps": 2}}


def _refused(response: httpx.Response, field: str) -> dict:
    assert response.status_code == 403, response.text
    body = response.json()["error"]
    assert body["code"] == "forbidden_path"
    assert "PUT /api/v1/data/{name}/upload" in body["hint"] and "data roots" in body["hint"]
    assert [d["field"] for d in body["details"]] == [field]
    return body


def test_paths_outside_the_roots_are_refused_on_data_registration(served):
    server, root = served
    api = server.url + "/api/v1"
    data = root / "data"
    for path in (root / "outside" / "secret.csv",  # plainly outside
                 f"{data}/../outside/secret.csv",  # `..` out of the root
                 data / "link.csv",  # a symlink in the root pointing out
                 root / "start" / "here.csv",  # the start folder is no root once --data-root is given
                 root / "home" / "fmhub.db",  # the server's own database
                 "/etc/passwd"):
        body = _refused(http.post(api + "/data", json={"name": "x", "path": str(path)}), "path")
        assert str(data.resolve()) in body["hint"]  # the hint names the roots
    ok = http.post(api + "/data", json={"name": "reviews", "path": str(data / "train.csv"),
                                         "task": "text-classification", "column_mapping": MAPPING})
    assert ok.status_code == 201, ok.text
    preview = http.post(api + "/data/preview", json={"data": "reviews:1", "task": "text-classification"})
    assert preview.status_code == 200 and preview.json()["total_rows"] == 40
    assert [a["name"] for a in http.get(api + "/data").json()["items"]] == ["reviews"]


def test_paths_outside_the_roots_are_refused_on_job_submission_and_import(served):
    server, root = served
    api = server.url + "/api/v1"
    data = root / "data"
    _refused(http.post(api + "/jobs/finetune", json=_spec(str(root / "outside" / "secret.csv"))), "data.train")
    _refused(http.post(api + "/jobs/finetune", json=_spec(f"{data}/../outside/secret.csv")), "data.train")
    _refused(http.post(api + "/jobs/finetune", json=_spec(str(data / "link.csv"))), "data.train")
    spec = _spec(str(data / "train.csv"))
    spec["data"]["test"] = str(data / "link.csv")
    _refused(http.post(api + "/jobs/finetune", json=spec), "data.test")
    evaluate = {"model": "tiny-bert:1", "task": "text-classification",
                "data": {"test": str(root / "outside" / "secret.csv"), "column_mapping": MAPPING}}
    _refused(http.post(api + "/jobs/evaluate", json=evaluate), "data.test")
    _refused(http.post(api + "/models/import", json={"path": str(root / "tiny"), "name": "m",
                                                       "task": "text-classification"}), "path")
    assert http.get(api + "/jobs", params={"kind": "finetune"}).json()["items"] == []  # nothing queued
    ok = http.post(api + "/jobs/finetune", json=_spec(str(data / "train.csv")))
    assert ok.status_code == 202, ok.text
    http.post(api + f"/jobs/{ok.json()['job']['id']}/cancel")


def test_submit_uploads_a_local_file_the_server_cannot_read(served, tmp_path):
    server, root = served
    secret = root / "outside" / "secret.csv"
    env = {**os.environ, "FMHUB_HOME": str(tmp_path / "client-home"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "fmhub", "finetune", "--model", "tiny-bert:1",
                           "--task", "text-classification", "--train", str(secret), "--map", "sentence1=review",
                           "--map", "label=stars", "--max-steps", "2", "--submit", "--url", server.url, "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    job = json.loads(proc.stdout)
    assert job["status"] == "queued"
    asset = job["spec"]["data"]["train"]
    assert asset.startswith("outside-secret:")  # the job names the uploaded data asset, not the path
    said = [line for line in proc.stderr.splitlines() if "uploaded" in line]
    assert len(said) == 1 and f"secret.csv as {asset}" in said[0]
    shown = http.get(server.url + f"/api/v1/data/{asset}").json()
    assert shown["rows"] == 40 and shown["source_path"] == "secret.csv"
    http.post(server.url + f"/api/v1/jobs/{job['id']}/cancel")


def test_the_python_client_uploads_a_refused_local_file(served):
    import fmhub
    from fmhub.errors import ForbiddenPathError

    server, root = served
    spec = _spec(str(root / "data" / "link.csv"))  # refused: the symlink leads out of the root
    spec["data"]["test"] = str(root / "data" / "train.csv")  # accepted: read in place
    with fmhub.Client(url=server.url) as client:
        with pytest.raises(ForbiddenPathError):
            client.finetune(spec, upload=False)
        job = client.finetune(spec)
        target = str((root / "outside" / "secret.csv").resolve())
        assert client.uploads == {target: job.spec["data"]["train"]}
        assert job.spec["data"]["test"].startswith("asset:data-train:")  # registered at submit, read in place
        client.jobs.cancel(job.id)
        missing = _spec(str(root / "outside" / "missing.csv"))  # no file here to upload: the 403 stands
        with pytest.raises(ForbiddenPathError):
            client.finetune(missing)
