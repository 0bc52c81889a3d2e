"""The evaluate wizard and the side-by-side results in a real browser: two fine-tuned tiny models
evaluated on an uploaded CSV, compared as their jobs finish; and models or a mapping that cannot be
evaluated, refused next to their fields with no job queued."""

from __future__ import annotations

import re

import pytest
import yaml
from playwright.sync_api import expect

from browser_fixtures import OUTPUT

RESULTS_MS = 120_000
MODELS = ("eval-a", "eval-b")


@pytest.fixture(scope="module")
def tuned(ui_server):
    """Two tiny text classifiers fine-tuned on the review CSV (``eval-a:1``, ``eval-b:1``; an
    imported random BERT has no trained head); ``eval-a`` trains longer."""
    import fmhub

    server, train = ui_server
    client = fmhub.Client(url=server.url)
    jobs = []
    for name, hp in zip(MODELS, ({"max_steps": 30, "learning_rate": 5e-3}, {"max_steps": 3})):
        spec = {"model": "tiny-bert", "task": "text-classification",
                "data": {"train": str(train), "validation": "none", "test": "none",
                         "column_mapping": {"sentence1": "review", "label": "stars"}},
                "hyperparameters": {**hp, "per_device_train_batch_size": 8},
                "device": "cpu", "registered_model_name": name}
        jobs.append(client.finetune(spec))
    refs = []
    for job in jobs:
        done = client.jobs.wait(job.id, timeout_s=240, poll_s=0.5)
        assert done.status.value == "completed", done.error
        refs.append(done.outputs["registered_model"])
    assert refs == ["eval-a:1", "eval-b:1"]
    try:
        yield client
    finally:
        client.close()


def _next(page):
    return page.locator("section.step:not([hidden]) [data-next]")


def _jobs_total(page) -> int:
    return page.request.get("/api/v1/jobs?kind=evaluate").json()["total"]


def _shot(page, name):
    OUTPUT.joinpath("screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "screenshots" / f"evaluate_{name}.png"), full_page=True)


def _to_mapping(page, train) -> None:
    """From the models step (a model ticked) to the mapping step with the CSV uploaded."""
    _next(page).click()
    expect(page.get_by_role("heading", name="Test data", exact=True)).to_be_visible()
    expect(_next(page)).to_be_disabled()  # no data yet
    page.set_input_files("#data-test-file", str(train))
    expect(page.locator("#source-data-test [data-source-status]")).to_contain_text("rows")
    _next(page).click()
    expect(page.locator("#preview-data-test tbody tr")).to_have_count(5)


def test_evaluate_two_models_and_compare_them(page, ui_server, tuned):
    _, train = ui_server
    page.goto("/ui/evaluate?model=eval-a:1")
    assert page.locator("a.json-twin").get_attribute("href") == "/api/v1/models/eval-a:1"
    expect(page.get_by_label("text-classification")).to_be_checked()
    expect(page.locator("#model-text-classification-eval-a-1")).to_be_checked()
    expect(page.locator("#model-text-classification-tiny-bert-1")).to_be_disabled()  # no trained head
    page.locator("#model-text-classification-eval-b-1").check()
    unlabeled = page.evaluate("""Array.from(document.querySelectorAll(
        '#evaluate-wizard input, #evaluate-wizard select'))
        .filter(e => e.type !== 'hidden' && e.labels.length === 0).map(e => e.name || e.id)""")
    assert unlabeled == []
    _shot(page, "models")
    _to_mapping(page, train)
    page.select_option("#map-data-test-sentence1", "review")
    page.select_option("#map-data-test-label", "stars")
    report = page.locator("#data-report-data-test")
    expect(report.locator(".report-ok")).to_contain_text("80 test rows")
    expect(report.locator("ul.distribution")).to_contain_text("pos")
    _next(page).click()
    page.select_option("#device", "cpu")
    page.fill("#batch-size", "0")  # refused by the input itself: said next to it
    expect(page.locator("#invalid-batch-size")).to_have_text(page.locator("#batch-size").evaluate("e => e.validationMessage"))
    expect(page.locator("#batch-size")).to_have_attribute("aria-invalid", "true")
    expect(_next(page)).to_be_disabled()
    page.fill("#batch-size", "16")
    expect(page.locator("#invalid-batch-size")).to_have_count(0)
    _next(page).click()

    expect(page.locator("#job-yaml")).to_be_visible(timeout=20_000)
    docs = list(yaml.safe_load_all(page.locator("#job-yaml").inner_text()))
    assert [d["model"] for d in docs] == ["eval-a:1", "eval-b:1"]
    assert all(d["task"] == "text-classification" and d["device"] == "cpu" and d["per_device_eval_batch_size"] == 16
               and d["data"]["column_mapping"] == {"sentence1": "review", "label": "stars"} for d in docs)
    expect(page.locator("#job-cli")).to_contain_text("--model eval-b:1", use_inner_text=False)
    expect(page.locator("#evaluate-review .report-ok")).to_contain_text("80 test rows")
    _shot(page, "review")

    before = _jobs_total(page)
    page.locator("#submit-jobs").dblclick()  # the button is disabled while its request runs
    page.wait_for_url(re.compile(r".*/ui/evaluations\?jobs=[^,]+,[^,]+$"))
    assert [p for p in page.posts if p.endswith("/submit")] == ["/ui/evaluate/submit"]
    ids = page.url.split("jobs=", 1)[1].split(",")
    assert _jobs_total(page) == before + 2
    assert page.locator("a.json-twin").get_attribute("href") == f"/api/v1/evaluations?jobs={','.join(ids)}"
    heads = page.locator("#comparison-table thead th[data-job]")
    expect(heads).to_have_count(2)
    for i, (job_id, model) in enumerate(zip(ids, ("eval-a:1", "eval-b:1"))):
        link = heads.nth(i).locator("a.model-link")
        expect(link).to_have_text(model)
        assert link.get_attribute("href") == f"/ui/jobs/{job_id}"

    expect(page.locator('#comparison[data-done="true"]')).to_be_attached(timeout=RESULTS_MS)  # polled
    for metric in ("accuracy", "f1_macro"):
        cells = page.locator(f'#comparison-table tr[data-metric="{metric}"] td')
        expect(cells).to_have_count(2)
        values = [float(re.match(r"\s*([01]\.\d{4})", cells.nth(i).inner_text()).group(1)) for i in range(2)]
        marked = [cells.nth(i).get_attribute("data-best") is not None for i in range(2)]
        assert marked == ([v == max(values) for v in values] if len(set(values)) > 1 else [False, False])
    expect(page.locator("#per-class-table tbody tr")).to_have_count(2)
    expect(page.locator("#comparison-waiting")).to_have_count(0)
    body = page.request.get(f"/api/v1/evaluations?jobs={','.join(ids)}").json()
    assert body["done"] and [r["model"] for r in body["results"]] == ["eval-a:1", "eval-b:1"]
    assert {"accuracy", "f1_macro"} <= set(body["metrics"])


def test_models_and_mappings_that_cannot_be_evaluated_are_refused_at_their_fields(page, ui_server, tuned):
    _, train = ui_server
    before = _jobs_total(page)
    page.goto("/ui/evaluate?model=tiny-bert:1")
    expect(page.locator("#model-notice")).to_contain_text("never trained")
    expect(page.locator("#models-none")).to_be_visible()
    expect(_next(page)).to_be_disabled()  # nothing ticked
    page.locator("#model-text-classification-eval-a-1").check()
    expect(_next(page)).to_be_enabled()
    _to_mapping(page, train)
    page.select_option("#map-data-test-sentence1", "review")
    page.select_option("#map-data-test-label", "review")  # text, not the labels eval-a:1 knows
    # every review is its own "class": the mapping step says the column looks like text, at its select
    problem = page.locator("#step-mapping .mapping-key[data-key='label'] .field-error")
    expect(problem).to_contain_text("looks like text", timeout=20_000)
    expect(_next(page)).to_be_disabled()
    _shot(page, "mapping_error")
    # the 4xx answer is an expected outcome shown on the page, not an error logged to the console
    assert [m for m in page.console_errors if "Response Status Error" in m] == []

    body = page.evaluate("new URLSearchParams(new FormData(document.getElementById('evaluate-wizard'))).toString()")
    headers = {"Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true"}
    answer = page.request.post("/ui/evaluate/submit", data=body, headers=headers)
    assert answer.status == 422 and "does not occur in the labels" in answer.text()  # the server checks too
    fixed = body.replace("data.column_mapping.label=review", "data.column_mapping.label=stars")
    answer = page.request.post("/ui/evaluate/submit", data=fixed + "&model=tiny-bert%3A1", headers=headers)
    assert answer.status == 422 and "tiny-bert:1 cannot be evaluated" in answer.text()
    assert "data-field-errors" in answer.text()
    assert _jobs_total(page) == before
