"""The FastAPI app in-process: offline docs, error bodies, pagination."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from fmhub.api.app import create_app


@pytest.fixture()
def api(ctx):
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
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
