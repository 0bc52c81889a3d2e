"""Comparing evaluate jobs (the service, its REST twin and the results page) and the evaluate
wizard's form -> specs, checks and all-or-none submission, in-process."""

from __future__ import annotations

import json
import re
import shutil
from urllib.parse import parse_qs, urlsplit

import pytest
from local_client import local_client

from conftest import write_sentiment_csv
from fmhub.entities import JobStatus
from fmhub.errors import DataError, NotFoundError, SpecError
from fmhub.evaluation.compare import best_of, parse_job_ids
from fmhub.services.evaluations import (check_evaluations, compare_evaluations, evaluation_choices, head_problem,
                                        submit_evaluations)
from fmhub.services.specs import EvaluateSpec
from fmhub.ui.evaluate_form import build_evaluate_specs, cli_command, evaluate_spec_dicts, specs_yaml

A = {"accuracy": 0.75, "f1_macro": 0.70, "mcc": 0.5, "n": 8,
     "per_class": {"neg": {"f1": 0.6, "precision": 1.0, "recall": 0.5, "support": 4},
                   "pos": {"f1": 0.8, "precision": 0.7, "recall": 1.0, "support": 4}},
     "confusion_matrix": {"labels": ["neg", "pos"], "matrix": [[2, 2], [0, 4]]}}
B = {"accuracy": 0.75, "f1_macro": 0.74, "precision_macro": 0.8, "n": 8,
     "per_class": {"neg": {"f1": 0.7, "precision": 1.0, "recall": 0.5, "support": 4},
                   "pos": {"f1": 0.78, "precision": 0.7, "recall": 1.0, "support": 4}}}


@pytest.fixture()
def app_client(ctx):
    from fmhub.api.app import create_app

    with local_client(create_app(ctx, serve_endpoints=False), raise_server_exceptions=False) as client:
        yield client


def _evaluate_job(ctx, model, status=JobStatus.completed, metrics=None, kind="evaluate", error=None):
    from fmhub.services import jobs

    job = jobs.new_job(ctx, kind, {"model": model, "task": "text-classification", "data": {"test": "t.csv"}})
    if status == JobStatus.queued:
        return job
    jobs.mark(ctx, job, JobStatus.running)
    if status == JobStatus.running:
        jobs.JobEventSink(ctx, job).event("predict", {"split": "test", "done": 3, "total": 8})
        return jobs.get_job(ctx, job.id)
    outputs = {"model": model, "metrics": {"test": metrics}} if metrics else {}
    return jobs.mark(ctx, job, status, outputs=outputs, error=error)


# -- the comparison ----------------------------------------------------------------------------------

def test_parse_job_ids():
    assert parse_job_ids(" a, b,,a ,c") == ["a", "b", "c"]
    assert parse_job_ids(["a,b", "c"]) == ["a", "b", "c"]
    assert parse_job_ids(None) == [] and parse_job_ids("") == []


def test_best_of():
    assert best_of({"a": 0.5, "b": 0.7, "c": 0.7, "d": None}) == ["b", "c"]  # ties share the mark
    assert best_of({"a": 0.5, "b": 0.7}, lower_is_better=True) == ["a"]
    assert best_of({"a": 0.5, "b": 0.5}) == [] and best_of({"a": 0.5, "b": "x"}) == []


def test_comparison_unions_metrics_and_marks_the_best(ctx):
    a, b = _evaluate_job(ctx, "m-a:1", metrics=A), _evaluate_job(ctx, "m-b:1", metrics=B)
    running = _evaluate_job(ctx, "m-c:1", status=JobStatus.running)
    c = compare_evaluations(ctx, f"{a.id},{b.id},{running.id}")
    assert c["task"] == "text-classification" and not c["done"]
    assert [r["model"] for r in c["results"]] == ["m-a:1", "m-b:1", "m-c:1"]
    assert c["results"][2]["test"] is None and c["results"][2]["progress"] == {"done": 3, "total": 8}
    assert c["metrics"] == ["accuracy", "f1_macro", "mcc", "precision_macro"]  # union, first appearance, no n
    assert c["best"]["f1_macro"] == [b.id]
    assert c["best"]["accuracy"] == []  # all equal: nothing stands out
    assert c["best"]["mcc"] == [] and c["best"]["precision_macro"] == []  # one value: nothing to compare
    pc = c["per_class"]
    assert pc["key"] == "per_class" and pc["labels"] == ["neg", "pos"]
    assert pc["f1"]["pos"] == {a.id: 0.8, b.id: 0.78} and pc["best"] == {"neg": [b.id], "pos": [a.id]}
    assert compare_evaluations(ctx, [a.id, b.id])["done"] is True


def test_comparison_refuses_unknown_and_other_jobs(ctx):
    a = _evaluate_job(ctx, "m-a:1", metrics=A)
    with pytest.raises(NotFoundError):
        compare_evaluations(ctx, f"{a.id},no-such-job")
    tune = _evaluate_job(ctx, "m-b:1", kind="finetune", metrics=A)
    with pytest.raises(SpecError, match="only evaluate jobs"):
        compare_evaluations(ctx, [a.id, tune.id])
    with pytest.raises(SpecError, match="no jobs"):
        compare_evaluations(ctx, " , ")


def test_rest_twin(app_client, ctx):
    a, b = _evaluate_job(ctx, "m-a:1", metrics=A), _evaluate_job(ctx, "m-b:1", metrics=B)
    r = app_client.get(f"/api/v1/evaluations?jobs={a.id},{b.id}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["task"] == "text-classification" and [x["job_id"] for x in body["results"]] == [a.id, b.id]
    assert body["results"][0]["test"]["accuracy"] == 0.75 and body["best"]["f1_macro"] == [b.id]
    missing = app_client.get(f"/api/v1/evaluations?jobs={a.id},nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert app_client.get("/api/v1/evaluations").status_code == 422


def test_results_page_polls_until_every_job_has_finished(app_client, ctx):
    a, b = _evaluate_job(ctx, "m-a:1", metrics=A), _evaluate_job(ctx, "m-b:1", metrics=B)
    queued = _evaluate_job(ctx, "m-c:1", status=JobStatus.queued)
    page = app_client.get(f"/ui/evaluations?jobs={a.id},{b.id},{queued.id}")
    assert page.status_code == 200
    text = page.text
    assert f'href="/api/v1/evaluations?jobs={a.id},{b.id},{queued.id}"' in text
    assert 'hx-trigger="every 2s"' in text and f'href="/ui/jobs/{queued.id}"' in text
    row = re.search(r'<tr data-metric="f1_macro">(.*?)</tr>', text, re.S).group(1)
    cells = re.findall(r"<td[^>]*>.*?</td>", row, re.S)
    assert "best" not in cells[0] and "data-best" in cells[1] and "0.7400" in cells[1] and "-" in cells[2]
    assert 'id="per-class-table"' in text
    done = app_client.get(f"/ui/evaluations/table?jobs={a.id},{b.id}")
    assert done.status_code == 200 and "hx-trigger" not in done.text and 'data-done="true"' in done.text
    assert app_client.get(f"/ui/evaluations?jobs={a.id},nope").status_code == 404


# -- the wizard's form --------------------------------------------------------------------------------

FORM = {"model": ["", "clf:1", "clf2:1"], "task": ["text-classification"], "data.test": ["reviews:1"],
        "data.column_mapping.sentence1": ["review"], "data.column_mapping.label": ["stars"],
        "data.column_mapping.sentence2": [""], "data.on_invalid_row": [""], "device": ["cpu"],
        "per_device_eval_batch_size": ["16"], "max_seq_length": [""], "generation.num_beams": [""],
        "wizard.source": ["data.test"]}
CHOICES = [{"ref": "clf:1", "task": "text-classification", "problem": None},
           {"ref": "clf2:1", "task": "text-classification", "problem": None},
           {"ref": "tok:1", "task": "token-classification", "problem": None},
           {"ref": "raw:1", "task": "text-classification", "problem": "its text-classification head was never trained"}]


def test_form_to_specs():
    specs = build_evaluate_specs(FORM, CHOICES)
    assert [s.model for s in specs] == ["clf:1", "clf2:1"]
    s = specs[0]
    assert s.task == "text-classification" and s.device == "cpu" and s.per_device_eval_batch_size == 16
    assert s.data.test == "reviews:1" and s.data.column_mapping == {"sentence1": "review", "label": "stars"}
    assert s.max_seq_length is None and s.generation.num_beams is None
    docs = [d for d in specs_yaml(specs).split("---") if d.strip()]
    assert len(docs) == 2 and "model: clf2:1" in docs[1] and "on_invalid_row" not in docs[0]
    cli = cli_command(specs)
    assert "--model clf:1" in cli and "--model clf2:1" in cli and "--map label=stars" in cli
    assert "--per-device-eval-batch-size 16" in cli and cli.endswith("--submit")


@pytest.mark.parametrize("change, field, message", [
    ({"model": [""]}, "model", "choose at least one model"),
    ({"data.test": [""]}, "data.test", "upload a test file"),
    ({"model": ["clf:1", "tok:1"]}, "model", "tok:1 is a token-classification model, not text-classification"),
    ({"model": ["clf:1", "raw:1"]}, "model", "raw:1 cannot be evaluated: its text-classification head was never"),
    ({"model": ["ghost:3"]}, "model", "ghost:3: not a model of this workspace"),
    ({"per_device_eval_batch_size": ["0"]}, "per_device_eval_batch_size", "must be >= 1 (got 0)"),
])
def test_form_problems_name_their_field(change, field, message):
    with pytest.raises(SpecError) as info:
        build_evaluate_specs({**FORM, **change}, CHOICES)
    problems = [p for p in info.value.details if p["field"] == field]
    assert problems and message in problems[0]["message"], info.value.details


def test_form_without_choices_checks_only_the_form():
    dicts, problems = evaluate_spec_dicts({**FORM, "model": ["tok:1"]})
    assert problems == [] and dicts[0]["model"] == "tok:1"


# -- checking and queueing against real (tiny) models -------------------------------------------------

@pytest.fixture()
def workspace(ctx, tiny_bert, tmp_path):
    """Workspace models: ``clf:1`` and ``clf2:1`` (text classifiers with label names), ``tok:1``
    (token classification) and ``raw:1`` (a text classifier with placeholder labels), and a test CSV
    registered as ``reviews:1``."""
    from fmhub.services.assets import register_data_file
    from fmhub.services.models import import_model

    named = tmp_path / "named"
    shutil.copytree(tiny_bert, named)
    config = json.loads((named / "config.json").read_text(encoding="utf-8"))
    config.update(id2label={"0": "neg", "1": "pos"}, label2id={"neg": 0, "pos": 1})
    (named / "config.json").write_text(json.dumps(config), encoding="utf-8")
    for name, folder, task in (("clf", named, "text-classification"), ("clf2", named, "text-classification"),
                               ("tok", named, "token-classification"), ("raw", tiny_bert, "text-classification")):
        import_model(ctx, folder, name, task)
    csv = write_sentiment_csv(tmp_path / "reviews.csv", n=12)
    register_data_file(ctx, csv, name="reviews")
    return ctx


def _spec(model, **data):
    return EvaluateSpec.model_validate({"model": model, "task": "text-classification", "device": "cpu",
                                        "data": {"test": "reviews:1", **data,
                                                 "column_mapping": {"sentence1": "review", "label": "stars"}}})


def test_choices_say_why_a_model_cannot_be_evaluated(workspace, tmp_path):
    choices = {c["ref"]: c for c in evaluation_choices(workspace)}
    assert set(choices) == {"clf:1", "clf2:1", "tok:1", "raw:1"}
    assert choices["clf:1"]["problem"] is None and choices["tok:1"]["task"] == "token-classification"
    assert "never trained" in choices["raw:1"]["problem"]
    assert head_problem(tmp_path / "nowhere", "summarization") == "its files are not on this machine"


def test_check_and_submit_all_or_none(workspace):
    from fmhub.services.jobs import count_jobs

    with pytest.raises(SpecError) as info:
        check_evaluations(workspace, [_spec("clf:1"), _spec("raw:1"), _spec("tok:1")])
    fields = {(p["field"], p["model"]) for p in info.value.details}
    assert fields == {("model", "raw:1"), ("model", "tok:1")}
    assert any("no trained text-classification head" in p["message"] for p in info.value.details)
    assert any("token-classification model" in p["message"] for p in info.value.details)
    with pytest.raises(SpecError):
        submit_evaluations(workspace, [_spec("clf:1"), _spec("raw:1")])
    assert count_jobs(workspace) == 0
    with pytest.raises(SpecError, match="ghost"):
        check_evaluations(workspace, [_spec("clf:1").model_copy(update={"data": _spec("x", test="ghost:2").data})])

    jobs = submit_evaluations(workspace, [_spec("clf:1"), _spec("clf2:1")])
    assert [j.spec["model"] for j in jobs] == ["clf:1", "clf2:1"] and count_jobs(workspace) == 2


def test_a_data_error_keeps_its_report_and_names_the_asset(workspace):
    spec = _spec("clf:1").model_copy(update={"data": _spec("x").data.model_copy(
        update={"column_mapping": {"sentence1": "review", "label": "review"}})})
    with pytest.raises(DataError) as info:
        check_evaluations(workspace, [spec, _spec("clf2:1").model_copy(update={"data": spec.data})])
    assert "every model" in info.value.message
    report = info.value.details
    assert report["errors"] and "reviews:1" in json.dumps(report) and "artifacts" not in json.dumps(report)


def test_wizard_page_and_submit_in_process(app_client, workspace):
    page = app_client.get("/ui/evaluate?model=clf")
    assert page.status_code == 200
    text = page.text
    assert 'href="/api/v1/models/clf:1"' in text
    assert re.search(r'value="clf:1"\s*checked', text) and re.search(r'value="raw:1" disabled', text)
    assert 'data-show-when="task=token-classification"' in text
    notice = app_client.get("/ui/evaluate?model=raw:1").text
    assert 'id="model-notice"' in notice and "never trained" in notice

    base = {**{k: v[0] for k, v in FORM.items() if k != "model"}, "model": ["clf:1", "raw:1"]}
    refused = app_client.post("/ui/evaluate/submit", data=base, headers={"HX-Request": "true"})
    assert refused.status_code == 422 and "raw:1 cannot be evaluated" in refused.text
    assert "data-field-errors" in refused.text and "&#34;field&#34;: &#34;model&#34;" in refused.text
    assert app_client.get("/api/v1/jobs").json()["total"] == 0

    ok = app_client.post("/ui/evaluate/submit", data={**base, "model": ["clf:1", "clf2:1"]},
                         headers={"HX-Request": "true"})
    assert ok.status_code == 200, ok.text
    url = ok.headers["HX-Redirect"]
    ids = parse_qs(urlsplit(url).query)["jobs"][0].split(",")
    assert urlsplit(url).path == "/ui/evaluations" and len(ids) == 2
    assert app_client.get(url).status_code == 200


def test_review_shows_the_specs_or_places_the_problems(app_client, workspace):
    form = {**{k: v[0] for k, v in FORM.items() if k != "model"}, "model": ["clf:1", "clf2:1"]}
    review = app_client.post("/ui/evaluate/review", data=form, headers={"HX-Request": "true"})
    assert review.status_code == 200, review.text
    assert 'id="job-yaml"' in review.text and "model: clf2:1" in review.text and "report-ok" in review.text
    bad = app_client.post("/ui/evaluate/review", data={**form, "data.column_mapping.label": "review"},
                          headers={"HX-Request": "true"})
    assert bad.status_code == 422 and "data-blocking" in bad.text
    assert "&#34;field&#34;: &#34;data.column_mapping.label&#34;" in bad.text
