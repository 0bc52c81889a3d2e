"""The whole journey in one browser session, as a user makes it: filter the catalog, open a card,
fine-tune through the wizard with an uploaded CSV, watch the live chart, register the model from
the job page, deploy it and score a sentence in the endpoint's test console."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

MODEL_NAME = "flow-sentiment"


def _next(page):
    return page.locator("section.step:not([hidden]) [data-next]")


def test_catalog_to_finetune_to_registered_model_to_scored_sentence(page, ui_server):
    server, train = ui_server
    # Catalog: only workspace models, then the card of tiny-bert.
    page.goto("/")
    page.get_by_role("group", name="Registry").get_by_label("workspace").check()
    page.wait_for_function("document.querySelectorAll('#models-table tbody tr').length === 1")
    page.locator("#models-table").get_by_role("link", name="tiny-bert").click()
    page.wait_for_url("**/ui/models/tiny-bert:1")
    expect(page.get_by_role("heading", level=1)).to_contain_text("tiny-bert")

    # Fine-tune wizard from the card's button.
    page.get_by_role("link", name=re.compile("Fine-tune")).first.click()
    page.wait_for_url(re.compile(r".*/ui/models/tiny-bert:1/finetune.*"))
    expect(page.get_by_label("text-classification")).to_be_checked()
    _next(page).click()
    page.set_input_files("#data-train-file", str(train))
    expect(page.locator("#source-data-train [data-source-status]")).to_contain_text("80 rows")
    _next(page).click()
    page.select_option("#map-data-train-sentence1", "review")
    page.select_option("#map-data-train-label", "stars")
    expect(page.locator("#data-report-data-train .report-ok")).to_contain_text("80 train rows")
    expect(page.locator("#preview-data-train tbody tr")).to_have_count(5)
    _next(page).click()
    expect(page.get_by_role("heading", name="Validation data")).to_be_visible()
    _next(page).click()  # automatic split
    expect(page.get_by_role("heading", name="Test data")).to_be_visible()
    _next(page).click()  # automatic split
    page.select_option("#device", "cpu")
    _next(page).click()
    page.fill("#hp-num-train-epochs", "1")
    page.get_by_text("Advanced", exact=True).click()
    page.fill("#hp-max-steps", "80")
    page.fill("#hp-logging-steps", "1")
    page.fill("#registered-model-name", MODEL_NAME)
    page.locator("#register-model").uncheck()  # registered from the job page below
    _next(page).click()
    expect(page.locator("#job-yaml")).to_contain_text("max_steps: 80", timeout=20_000)
    page.locator("#submit-job").click()
    page.wait_for_url(re.compile(r".*/ui/jobs/[^/]+$"))
    job_id = page.url.rsplit("/", 1)[1]

    # Job page: the loss chart grows while the job runs, without a reload.
    page.wait_for_function("Number(document.querySelector('#loss-chart').dataset.points) > 0", timeout=90_000)
    first = int(page.locator("#loss-chart").get_attribute("data-points"))
    page.wait_for_function(f"Number(document.querySelector('#loss-chart').dataset.points) > {first}",
                           timeout=60_000)
    page.wait_for_selector('#job-status[data-status="completed"]', timeout=180_000)
    page.wait_for_selector("#metrics-table")
    assert page.locator("#confusion-test tbody tr").count() == 2

    # Register, then deploy from the job page.
    expect(page.get_by_label("Model name")).to_have_value(MODEL_NAME)
    page.get_by_role("button", name="Register model").click()
    expect(page.locator("#registered-model")).to_have_text(f"{MODEL_NAME}:1")
    assert page.request.get(f"/api/v1/jobs/{job_id}").json()["outputs"]["registered_model"] == f"{MODEL_NAME}:1"
    page.get_by_role("link", name="Deploy").click()
    page.wait_for_url(f"**/ui/endpoints?deploy={MODEL_NAME}:1")
    form = page.locator("#create-deploy-form")
    expect(form.get_by_label("Model version")).to_have_value(f"{MODEL_NAME}:1")
    form.get_by_role("button", name="Create and deploy").click()
    page.wait_for_url(f"**/ui/endpoints/{MODEL_NAME}")
    try:
        page.wait_for_selector('#deployments-table tr[data-deployment="blue"][data-state="ready"]', timeout=90_000)
        # Test console: score one sentence.
        page.locator("#console-request").fill(json.dumps({"input_data": ["a wonderful, fun film"]}))
        page.get_by_role("button", name="Send", exact=True).click()
        page.wait_for_function("/^\\d{3}/.test(document.getElementById('console-status').textContent)")
        assert page.locator("#console-status").inner_text().startswith("200")
        answer = json.loads(page.locator("#console-response").inner_text())
        assert answer["predictions"][0]["label"] in ("neg", "pos")
        assert answer["model"] == f"{MODEL_NAME}:1"
        assert re.fullmatch(r"\d+(\.\d+)? ms", page.locator("#console-latency").inner_text())
        key = page.locator("#key-primary").inner_text()
        assert "•" in key  # masked
    finally:
        page.screenshot(path=str(_shot_path("test_main_flow_console")), full_page=True)
        page.request.delete(f"/api/v1/endpoints/{MODEL_NAME}")


def _shot_path(name):
    from browser_fixtures import OUTPUT

    OUTPUT.joinpath("screenshots").mkdir(parents=True, exist_ok=True)
    return OUTPUT / "screenshots" / f"{name}.png"
