"""The fine-tune wizard in a real browser: upload, map columns with a live report, review the YAML
job file, submit; and a mapping error that keeps the job from being submitted."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from playwright.sync_api import expect

WIZARD = "/ui/models/tiny-bert:1/finetune?task=text-classification"


def _next(page):
    return page.locator("section.step:not([hidden]) [data-next]")


def _jobs_total(page) -> int:
    return page.request.get("/api/v1/jobs").json()["total"]


def _upload_training_file(page, path: Path) -> None:
    page.goto(WIZARD)
    expect(page.get_by_label("text-classification")).to_be_checked()
    _next(page).click()
    expect(page.get_by_role("heading", name="Training data")).to_be_visible()
    expect(_next(page)).to_be_disabled()  # no data yet
    page.set_input_files("#data-train-file", str(path))
    expect(page.locator("#source-data-train [data-source-status]")).to_contain_text("rows")
    _next(page).click()
    expect(page.locator("#preview-data-train tbody tr")).to_have_count(5)


def test_finetune_from_upload_to_a_queued_job(page, ui_server):
    _, train = ui_server
    _upload_training_file(page, train)
    # every field of the wizard has a label
    unlabeled = page.evaluate("""Array.from(document.querySelectorAll('#finetune-wizard input, #finetune-wizard select'))
        .filter(e => e.type !== 'hidden' && e.labels.length === 0).map(e => e.name || e.id)""")
    assert unlabeled == []
    # the columns were matched by name; choose them explicitly and the report follows
    assert page.locator("#map-data-train-sentence1").input_value() == "review"
    page.select_option("#map-data-train-sentence1", "review")
    page.select_option("#map-data-train-label", "stars")
    report = page.locator("#data-report-data-train")
    expect(report.locator(".report-ok")).to_contain_text("80 train rows")
    expect(report.locator("ul.distribution")).to_contain_text("neg")
    expect(report.locator("ul.distribution")).to_contain_text("pos")
    expect(page.locator("#preview-data-train thead")).to_contain_text("label")  # the mapped key on its column
    _next(page).click()
    expect(page.get_by_role("heading", name="Validation data")).to_be_visible()
    expect(page.locator("#step-validation").get_by_label("Split automatically from the training data")).to_be_checked()
    _next(page).click()
    expect(page.get_by_role("heading", name="Test data")).to_be_visible()
    _next(page).click()
    expect(page.get_by_role("radio", name="Ray cluster")).to_be_disabled()
    page.select_option("#device", "cpu")
    _next(page).click()
    expect(page.locator("#hp-learning-rate")).to_have_value(re.compile(r"5e-05|0\.00005"))
    page.fill("#hp-num-train-epochs", "1")
    page.get_by_text("Advanced", exact=True).click()
    page.fill("#hp-max-steps", "6")
    expect(page.locator("#registered-model-name")).to_have_value("tiny-bert-text-classification")
    expect(page.locator("#register-model")).to_be_checked()
    _next(page).click()

    expect(page.locator("#job-yaml")).to_be_visible(timeout=20_000)  # the review reads the data and tokenizer
    job = yaml.safe_load(page.locator("#job-yaml").inner_text())
    assert job["model"] == "tiny-bert:1" and job["task"] == "text-classification"
    assert job["data"]["column_mapping"] == {"sentence1": "review", "label": "stars"}
    assert job["data"]["validation"] == "auto" and job["data"]["test"] == "auto"
    assert job["hyperparameters"]["max_steps"] == 6 and job["device"] == "cpu"
    expect(page.locator("#job-curl")).to_contain_text("/api/v1/jobs/finetune")
    expect(page.locator("#finetune-review .report-splits")).to_contain_text("validation")
    with page.expect_download() as download:
        page.locator("#download-yaml").click()
    assert download.value.suggested_filename == "job.yaml"
    assert yaml.safe_load(Path(download.value.path()).read_text(encoding="utf-8")) == job

    before = _jobs_total(page)
    page.locator("#submit-job").dblclick()  # the button is disabled while its request runs
    page.wait_for_url(re.compile(r".*/ui/jobs/[^/]+$"))
    assert [p for p in page.posts if p.endswith("/finetune/submit")] == ["/ui/models/tiny-bert:1/finetune/submit"]
    job_id = page.url.rstrip("/").rsplit("/", 1)[1]
    created = page.request.get(f"/api/v1/jobs/{job_id}")
    assert created.ok, created.text()
    assert created.json()["kind"] == "finetune"
    assert _jobs_total(page) == before + 1


def _parameters_step(page, train) -> None:
    _upload_training_file(page, train)
    for _ in range(4):  # mapping (matched by name), validation, test, compute
        _next(page).click()
    expect(page.get_by_role("heading", name="Parameters")).to_be_visible()


def test_values_the_inputs_refuse_are_explained_at_their_fields(page, ui_server):
    _, train = ui_server
    _parameters_step(page, train)
    page.get_by_text("Advanced", exact=True).click()
    bad = {"#hp-learning-rate": "-1", "#hp-per-device-train-batch-size": "0", "#hp-max-steps": "-5",
           "#hp-seed": "1.5", "#registered-model-name": "my model"}
    for selector, value in bad.items():
        field = page.locator(selector)
        field.fill(value)
        message = page.locator(f"#invalid-{selector[1:]}")
        expect(message).to_have_class("field-error")
        expect(message).to_have_text(field.evaluate("e => e.validationMessage"))
        assert message.text_content().strip()  # e.g. "Value must be greater than or equal to 1."
        expect(field).to_have_attribute("aria-invalid", "true")
        described = field.get_attribute("aria-describedby").split()
        assert f"invalid-{selector[1:]}" in described and f"{selector[1:]}-help" in described
        expect(_next(page)).to_be_disabled()
    page.locator("#hp-seed").fill("1.25")  # the message follows the value as it is typed
    expect(page.locator("#invalid-hp-seed")).to_have_text(page.locator("#hp-seed").evaluate("e => e.validationMessage"))
    good = {"#hp-learning-rate": "0.0001", "#hp-per-device-train-batch-size": "8", "#hp-max-steps": "5",
            "#hp-seed": "7", "#registered-model-name": "my-model"}
    for selector, value in good.items():
        expect(_next(page)).to_be_disabled()
        page.locator(selector).fill(value)
        expect(page.locator(f"#invalid-{selector[1:]}")).to_have_count(0)
        expect(page.locator(selector)).not_to_have_attribute("aria-invalid", "true")
        assert f"invalid-{selector[1:]}" not in (page.locator(selector).get_attribute("aria-describedby") or "")
    expect(_next(page)).to_be_enabled()
    assert page.locator("#finetune-wizard .field-error").count() == 0


def test_a_mapping_error_blocks_submission(page, ui_server, tmp_path):
    rows = ["review,stars,comment"] + [f"{'good' if i % 2 else 'bad'} film {i},{'very-positive' if i % 2 else 'neg'},"
                                       f"{'seen twice' if i == 4 else ''}" for i in range(20)]
    data = tmp_path / "commented.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    before = _jobs_total(page)
    _upload_training_file(page, data)
    expect(page.locator("#data-report-data-train .report-ok")).to_be_visible()
    expect(_next(page)).to_be_enabled()
    # the label bars line up, however long the labels
    bars = page.locator("#data-report-data-train ul.distribution .dist-bar")
    expect(bars).to_have_count(2)
    assert len({round(bars.nth(i).bounding_box()["x"]) for i in range(2)}) == 1

    page.select_option("#map-data-train-label", "comment")
    problem = page.locator("#maperr-data-train-label .field-error")
    expect(problem).to_contain_text("missing label")
    expect(problem).to_contain_text("19 rows")
    expect(page.locator("#data-report-data-train .report-errors")).to_contain_text("line 2")
    expect(_next(page)).to_be_disabled()

    # even a crafted submit of this form is refused, and nothing is queued
    body = page.evaluate("new URLSearchParams(new FormData(document.getElementById('finetune-wizard'))).toString()")
    assert "data.column_mapping.label=comment" in body
    answer = page.request.post("/ui/models/tiny-bert:1/finetune/submit", data=body,
                               headers={"Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true"})
    assert answer.status == 422 and "missing label" in answer.text()
    assert _jobs_total(page) == before

    page.select_option("#map-data-train-label", "stars")  # fixed: the step opens again
    expect(page.locator("#maperr-data-train-label .field-error")).to_have_count(0)
    expect(_next(page)).to_be_enabled()


def test_a_validation_file_problem_found_at_review_is_shown_at_its_step(page, ui_server, tmp_path):
    _, train = ui_server
    validation = tmp_path / "held-out.csv"
    validation.write_text("review,stars\ngood film,pos\nbad film,neg\nso-so film,meh\n", encoding="utf-8")
    before = _jobs_total(page)
    _upload_training_file(page, train)
    _next(page).click()
    step = page.locator("#step-validation")
    step.get_by_label("Use a separate file or data asset").check()
    expect(_next(page)).to_be_disabled()  # the file is not chosen yet
    page.set_input_files("#data-validation-file", str(validation))
    expect(page.locator("#check-data-validation .report-ok")).to_contain_text("3 validation rows")
    _next(page).click()
    page.locator("#step-test").get_by_label("No test data").check()
    expect(page.locator("#test-size")).to_be_hidden()
    _next(page).click()
    page.select_option("#device", "cpu")
    _next(page).click()
    _next(page).click()  # review: the label 'meh' is not in the training data
    expect(step.get_by_role("heading", name="Validation data")).to_be_visible(timeout=20_000)
    expect(page.locator("#source-data-validation .field-error")).to_contain_text("'meh'")
    assert _jobs_total(page) == before
