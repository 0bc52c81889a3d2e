"""The FastAPI app in-process: offline docs, error bodies, pagination."""

from __future__ import annotations

import pytest
from local_client import local_client

from fmhub.api.app import create_app


@pytest.fixture()
def api(ctx):
    with local_client(create_app(ctx), raise_server_exceptions=False) as client:
        yield client


def test_api_docs_are_served_from_this_server(api):
    import re

    page = api.get("/docs")
    assert page.status_code == 200
    assert re.findall(r"https?://", page.text) == []  # nothing from a CDN: works offline
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert api.get(asset).status_code == 200
    assert "/api/v1/jobs/finetune" in api.get("/openapi.json").json()["paths"]


def test_an_unexpected_error_is_a_500_with_a_reference_not_a_traceback(api, monkeypatch):
    from fmhub.services import jobs

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(jobs, "list_jobs", boom)
    r = api.get("/api/v1/jobs")
    assert r.status_code == 500
    body = r.json()["error"]
    assert body["code"] == "internal" and "reference" in body["message"]
    assert "secret internals" not in r.text


def test_lists_are_paged_with_totals(api, ctx):
    from fmhub.services import jobs

    for _ in range(5):
        jobs.new_job(ctx, "evaluate", {"model": "m"})
    first = api.get("/api/v1/jobs?limit=2").json()
    assert first["total"] == 5 and len(first["items"]) == 2 and first["next_offset"] == 2
    last = api.get("/api/v1/jobs?limit=2&offset=4").json()
    assert len(last["items"]) == 1 and last["next_offset"] is None
    ids = [j["id"] for o in (0, 2, 4) for j in api.get(f"/api/v1/jobs?limit=2&offset={o}").json()["items"]]
    assert len(set(ids)) == 5
    r = api.get("/api/v1/jobs?status=sleeping")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request" and "status" in r.json()["error"]["message"]


def test_bad_bodies_are_422_naming_the_problem_never_500(api, ctx, tmp_path):
    form = api.post("/api/v1/jobs/finetune", content=b'{"model": "x"}',
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 422 and "application/json" in form.json()["error"]["message"]
    broken = api.post("/api/v1/jobs/finetune", content=b'{"model": ', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and "not valid JSON" in broken.json()["error"]["message"]
    base = {"model": "m", "task": "text-classification", "data": {"train": "t.csv"}}
    for bad, field in (({"hyperparameters": {"learning_rate": 1e308}}, "hyperparameters.learning_rate"),
                       ({"registered_model_name": "bad name!"}, "registered_model_name")):
        r = api.post("/api/v1/jobs/finetune", json={**base, **bad})
        assert r.status_code == 422 and field in r.json()["error"]["message"], r.text
    infinite = api.post("/api/v1/jobs/finetune", headers={"content-type": "application/json"},
                        content=b'{"model": "m", "task": "text-classification", "data": {"train": "t.csv"},'
                                b' "hyperparameters": {"num_train_epochs": Infinity}}')
    assert infinite.status_code == 422 and "num_train_epochs" in infinite.json()["error"]["message"]


def test_log_reads_past_the_end_are_empty(api, ctx):
    from pathlib import Path

    from fmhub.services import jobs

    job = jobs.new_job(ctx, "evaluate", {"model": "m"})
    (Path(job.folder) / "log.txt").write_text("hello\n")
    r = api.get(f"/api/v1/jobs/{job.id}/logs?offset=99999999999999")
    assert r.status_code == 200 and r.json()["text"] == "" and r.json()["next_offset"] == 6
