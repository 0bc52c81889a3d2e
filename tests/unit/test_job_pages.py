"""The jobs pages in-process: list with filters, a job's summary, progress, validation report,
metrics with a confusion matrix, and the actions' answers (htmx fragments, errors on the page)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from local_client import local_client

from fmhub.api.app import create_app
from fmhub.entities import JobStatus
from fmhub.ui.routes.jobs import duration_text, metric_tables, progress_of, split_error

SPEC = {"model": "tiny-bert", "task": "text-classification", "register_model": False,
        "data": {"train": "reviews.csv", "column_mapping": {"sentence1": "review", "label": "stars"}},
        "hyperparameters": {"max_steps": 4, "learning_rate": 5e-5}}
METRICS = {"accuracy": 0.75, "f1_macro": 0.7333, "mcc": 0.5, "n": 8,
           "per_class": {"neg": {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 4},
                         "pos": {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 4}},
           "confusion_matrix": {"labels": ["neg", "pos"], "matrix": [[2, 2], [0, 4]]}}
REPORT = {"task": "text-classification", "ok": True, "mapping": ["sentence1 <- review", "label <- stars"],
          "splits": [{"name": "train", "source": "reviews.csv", "rows_read": 72, "rows_kept": 71, "rows_dropped": 1,
                      "dropped": [{"message": "empty text in column 'review'", "line": 9, "value": "''"}],
                      "distribution": {"neg": 35, "pos": 36}, "lengths": None}],
          "warnings": [{"message": "2 header names had spaces trimmed"}], "errors": [], "notes": []}


@pytest.fixture()
def app_client(ctx):
    with local_client(create_app(ctx, serve_endpoints=False), raise_server_exceptions=False) as client:
        yield client


def _job(ctx, status: JobStatus, outputs=None, error=None, kind="finetune"):
    from fmhub.services import jobs

    job = jobs.new_job(ctx, kind, SPEC)
    (Path(job.folder) / "report.json").write_text(json.dumps(REPORT), encoding="utf-8")
    jobs.mark(ctx, job, JobStatus.running)
    sink = jobs.JobEventSink(ctx, job)
    sink.event("stage", {"stage": "training", "total_steps": 4, "step": 0})
    for step in (1, 2):
        sink.event("train", {"step": step, "total": 4, "epoch": step / 4, "loss": 0.7 - step / 100,
                             "learning_rate": 5e-5, "samples_per_s": 10.0, "eta_s": 2.0})
    if status != JobStatus.running:
        jobs.mark(ctx, job, status, outputs=outputs, error=error)
    return jobs.get_job(ctx, job.id)


def test_helpers():
    assert split_error("diverged (lower the learning rate (it was 0.1))") == (
        "diverged", "lower the learning rate (it was 0.1)")
    assert split_error("plain failure") == ("plain failure", "")
    assert duration_text(75.2) == "1m 15s" and duration_text(4) == "4s" and duration_text(None) == "-"
    table = metric_tables({"test": METRICS})[0]
    assert table["scalars"] == {"accuracy": 0.75, "f1_macro": 0.7333, "mcc": 0.5} and table["n"] == 8
    assert table["cm"]["rows"] == [[(2, 0.5), (2, 0.5)], [(0, 0.0), (4, 1.0)]]


def test_progress_comes_from_the_latest_events(ctx):
    from fmhub.services.jobs import job_events

    job = _job(ctx, JobStatus.running)
    p = progress_of(job, job_events(ctx, job.id))
    assert (p["value"], p["max"], p["percent"], p["epoch"]) == (2, 4, 50.0, 0.5)


def test_completed_job_page_shows_report_metrics_confusion_matrix_and_register_form(app_client, ctx):
    job = _job(ctx, JobStatus.completed, outputs={"registered_model": None, "metrics": {"test": METRICS},
                                                  "model_folder": "somewhere"})
    page = app_client.get(f"/ui/jobs/{job.id}")
    assert page.status_code == 200
    text = page.text
    assert 'data-status="completed"' in text and f'href="/api/v1/jobs/{job.id}"' in text
    assert 'id="metrics-table"' in text and 'id="confusion-test"' in text and 'id="per-class-test"' in text
    assert re.search(r'class="cell dark diag" style="--share: 1.0"[^>]*>4<', text)
    assert "empty text in column" in text and "2 header names had spaces trimmed" in text
    assert 'aria-valuenow="4"' in text  # a completed job's bar is full
    assert 'value="tiny-bert-text-classification"' in text and ">Register model</button>" in text
    assert ">Cancel</button>" not in text and ">Resume</button>" not in text
    summary = app_client.get(f"/ui/jobs/{job.id}/summary")
    assert summary.status_code == 200 and "<html" not in summary.text and 'id="job-status"' in summary.text


def test_failed_job_shows_error_hint_and_resume_and_actions_answer_fragments(app_client, ctx):
    job = _job(ctx, JobStatus.failed, error="training diverged (lower the learning rate)")
    text = app_client.get(f"/ui/jobs/{job.id}").text
    assert "training diverged" in text and '<p class="hint">lower the learning rate</p>' in text
    assert ">Resume</button>" in text and ">Register model</button>" not in text
    refused = app_client.post(f"/ui/jobs/{job.id}/cancel", headers={"HX-Request": "true"})
    assert refused.status_code == 409 and "already failed" in refused.text and "<html" not in refused.text
    resumed = app_client.post(f"/ui/jobs/{job.id}/resume", headers={"HX-Request": "true"})
    assert resumed.status_code == 200 and 'data-status="queued"' in resumed.text and ">Cancel</button>" in resumed.text
    plain = app_client.post(f"/ui/jobs/{job.id}/cancel", follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == f"/ui/jobs/{job.id}"


def test_job_list_filters_and_errors(app_client, ctx):
    done = _job(ctx, JobStatus.completed, outputs={"metrics": {}})
    running = _job(ctx, JobStatus.running)
    page = app_client.get("/ui/jobs")
    assert page.status_code == 200
    assert re.findall(r'data-job="([^"]+)"', page.text) == [running.id, done.id]  # newest first
    assert 'hx-trigger="every 3s"' in page.text  # a running job: the list refreshes itself
    only = app_client.get("/ui/jobs?status=completed", headers={"HX-Request": "true"})
    assert re.findall(r'data-job="([^"]+)"', only.text) == [done.id] and "<html" not in only.text
    assert 'href="/api/v1/jobs?status=completed"' in only.text
    assert app_client.get("/ui/jobs?kind=evaluate").text.count("data-job=") == 0
    bad = app_client.get("/ui/jobs?status=sleeping")
    assert bad.status_code == 422 and "unknown job status" in bad.text
    missing = app_client.get("/ui/jobs/nope")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")


def test_evaluate_job_page_has_metrics_of_the_model_and_row_progress_but_no_training_charts(app_client, ctx):
    from fmhub.services import jobs

    job = jobs.new_job(ctx, "evaluate", {"model": "tiny-bert:1", "task": "text-classification",
                                         "data": {"test": "test.csv"}})
    jobs.mark(ctx, job, JobStatus.running)
    sink = jobs.JobEventSink(ctx, job)
    sink.event("predict", {"split": "test", "done": 3, "total": 8})
    running = app_client.get(f"/ui/jobs/{job.id}").text
    assert 'aria-valuenow="3"' in running and 'aria-valuemax="8"' in running and "3 / 8 rows predicted" in running
    assert 'id="loss-chart"' not in running and ">Cancel</button>" in running
    sink.event("predict", {"split": "test", "done": 8, "total": 8})
    jobs.mark(ctx, job, JobStatus.completed, outputs={"model": "tiny-bert:1", "metrics": {"test": METRICS}})
    sink.event("done", {"status": "completed"})
    text = app_client.get(f"/ui/jobs/{job.id}").text
    assert "Metrics of tiny-bert:1" in text and 'id="confusion-test"' in text
    assert 'href="/ui/models/tiny-bert:1"' in text and ">Resume</button>" not in text and "Deploy" not in text
    assert 'aria-valuenow="8"' in text
