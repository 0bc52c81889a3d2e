"""The endpoints pages in a real browser: create an endpoint, deploy a fine-tuned tiny model from the
deploy form, score from the test console, keys masked until shown, traffic sliders that must sum to
100, and the one-submit create-and-deploy form behind ``?deploy=MODEL``."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from browser_fixtures import OUTPUT

READY_MS = 90_000
MODEL = "ui-reviews"


@pytest.fixture(scope="module")
def tuned(ui_server):
    """A tiny text classifier fine-tuned on the review CSV (an imported random BERT has no trained
    head and cannot be deployed); every endpoint left over is deleted afterwards (instances are
    processes)."""
    import fmhub

    server, train = ui_server
    client = fmhub.Client(url=server.url)
    spec = {"model": "tiny-bert", "task": "text-classification",
            "data": {"train": str(train), "validation": "none", "test": "none",
                     "column_mapping": {"sentence1": "review", "label": "stars"}},
            "hyperparameters": {"max_steps": 6, "per_device_train_batch_size": 8},
            "device": "cpu", "registered_model_name": MODEL}
    job = client.finetune(spec)
    done = client.jobs.wait(job.id, timeout_s=240, poll_s=0.5)
    assert done.status.value == "completed", done.error
    ref = done.outputs["registered_model"]
    try:
        yield client, ref
    finally:
        for endpoint in client.endpoints.list():
            client.endpoints.delete(endpoint["name"])
        client.close()


def _shot(page, name):
    """A screenshot of the page as it is now (the fixture saves only the last one)."""
    OUTPUT.joinpath("screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "screenshots" / f"endpoints_{name}.png"), full_page=True)


def _wait_ready(page, deployment="blue"):
    page.wait_for_selector(f'#deployments-table tr[data-deployment="{deployment}"][data-state="ready"]',
                           timeout=READY_MS)


def _send(page, body):
    page.locator("#console-request").fill(body)
    page.locator("#console-status").evaluate("n => n.textContent = ''")
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_function("/^\\d{3}/.test(document.getElementById('console-status').textContent)")
    return page.locator("#console-status").inner_text(), page.locator("#console-response").inner_text()


def test_create_deploy_and_score_from_the_console(page, tuned):
    client, ref = tuned
    page.goto("/ui/endpoints")
    page.get_by_label("Name", exact=True).fill("reviews-ui")
    page.get_by_role("button", name="Create endpoint").dblclick()  # disabled while its request runs
    page.wait_for_url("**/ui/endpoints/reviews-ui")
    assert page.posts == ["/ui/endpoints"]
    assert page.locator("a.json-twin").get_attribute("href") == "/api/v1/endpoints/reviews-ui"
    assert page.locator("#no-deployments").is_visible()

    form = page.locator("#deploy-form")
    form.get_by_label("Model version").select_option(ref)
    assert form.get_by_label("Deployment name").input_value() == "blue"
    assert form.get_by_label("Max batch size").input_value() == "32"
    form.get_by_role("button", name="Deploy").dblclick()
    _wait_ready(page)
    assert page.posts.count("/ui/endpoints/reviews-ui/deployments") == 1
    row = page.locator('#deployments-table tr[data-deployment="blue"]')
    assert ref in row.inner_text() and "100%" in row.inner_text()
    assert re.search(r"\b(1 thread|[02-9]\d* threads|1\d+ threads)\b", row.inner_text()), row.inner_text()

    request = json.loads(page.locator("#console-request").input_value())
    assert request["input_data"]  # the task's sample request
    status, body = _send(page, '{"input_data": ["a great movie, the best story"]}')
    assert status.startswith("200")
    answer = json.loads(body)
    assert answer["model"] == ref and answer["predictions"][0]["label"] in ("neg", "pos")
    assert re.fullmatch(r"\d+(\.\d+)? ms", page.locator("#console-latency").inner_text())
    status, body = _send(page, '{"input_data": "not a list"}')  # an error body is shown, not thrown
    assert status.startswith("422") and json.loads(body)["error"]["message"]

    keys = client.endpoints.keys("reviews-ui")
    primary = page.locator("#key-primary")
    assert "••••" in primary.inner_text() and keys["primary_key"] not in page.locator("#keys").inner_text()
    assert primary.inner_text().endswith(keys["primary_key"][-4:])
    toggle = page.get_by_role("button", name="Show keys")
    toggle.click()
    page.wait_for_function(f"document.getElementById('key-primary').textContent === {json.dumps(keys['primary_key'])}")
    assert page.locator("#key-secondary").inner_text() == keys["secondary_key"]
    assert page.locator("#keys-toggle").get_attribute("aria-pressed") == "true"
    _shot(page, "console_and_keys")
    page.locator("#keys-toggle").click()
    assert "••••" in primary.inner_text()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy the primary key").click()
    page.wait_for_function("navigator.clipboard.readText().then(t => t.length > 0)")
    assert page.evaluate("navigator.clipboard.readText()") == keys["primary_key"]

    page.once("dialog", lambda d: d.accept())
    with page.expect_navigation():  # the page reloads with the new key masked
        page.get_by_role("button", name="Regenerate secondary").click()
    regenerated = client.endpoints.keys("reviews-ui")
    assert regenerated["secondary_key"] != keys["secondary_key"] and regenerated["primary_key"] == keys["primary_key"]
    assert page.locator("#key-secondary").inner_text().endswith(regenerated["secondary_key"][-4:])

    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete endpoint").click()
    page.wait_for_url("**/ui/endpoints")
    assert page.locator('#endpoints-table tr[data-endpoint="reviews-ui"]').count() == 0
    assert "reviews-ui" not in [e["name"] for e in client.endpoints.list()]


def test_traffic_sliders_must_sum_to_100(page, tuned):
    client, ref = tuned
    client.endpoints.create("split-ui")
    client.endpoints.deploy("split-ui", ref, "blue")
    client.endpoints.deploy("split-ui", ref, "green")
    page.goto("/ui/endpoints/split-ui")
    blue = page.get_by_role("slider", name=re.compile("^blue"))
    green = page.get_by_role("slider", name=re.compile("^green"))
    assert blue.input_value() == "100" and green.input_value() == "0"
    save = page.get_by_role("button", name="Save traffic")
    error = page.locator("#traffic-sliders #traffic-error")
    assert error.is_hidden() and save.is_enabled()

    blue.fill("60")
    assert page.locator("#traffic-blue-value").inner_text() == "60%"
    assert page.locator("#traffic-sum").inner_text() == "60%"
    assert error.is_visible() and "100" in error.inner_text()
    assert save.is_disabled()
    refused = page.request.post("/ui/endpoints/split-ui/traffic", form={"traffic.blue": "60", "traffic.green": "0"},
                                headers={"X-CSRF-Token": page.evaluate("window.fmhubCsrfToken()")})
    assert refused.status == 422 and "sum to 60" in refused.text()

    green.fill("40")
    assert error.is_hidden() and save.is_enabled()
    save.click()
    page.wait_for_selector('[data-traffic-shown="green"]:text("40%")')
    split = {d["name"]: d["traffic"] for d in client.endpoints.get("split-ui")["deployments"]}
    assert split == {"blue": 60, "green": 40}

    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Remove deployment green").click()
    page.wait_for_selector('#deployments-table tr[data-deployment="green"]', state="detached")
    assert [d["name"] for d in client.endpoints.get("split-ui")["deployments"]] == ["blue"]
    client.endpoints.delete("split-ui")


def test_a_taken_name_is_said_once_at_its_field(page, tuned):
    client, _ = tuned
    client.endpoints.create("taken-ui")
    page.goto("/ui/endpoints")
    form = page.locator("#create-form")
    form.get_by_label("Name", exact=True).fill("taken-ui")
    form.get_by_role("button", name="Create endpoint").click()
    message = form.locator(".field:has(#create-name) .field-error")
    expect(message).to_contain_text("named 'taken-ui' exists")
    expect(message).to_contain_text("choose another name")  # the hint too
    expect(form.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_text("named 'taken-ui' exists").filter(visible=True)).to_have_count(1)
    expect(form.locator(".form-errors .alert")).to_be_hidden()  # said at the field, not again below
    client.endpoints.delete("taken-ui")


def test_deploy_link_creates_and_deploys_in_one_submit(page, tuned):
    client, ref = tuned
    page.goto(f"/ui/endpoints?deploy={ref}")
    form = page.locator("#create-deploy-form")
    assert form.get_by_label("Endpoint name").input_value() == MODEL
    assert form.get_by_label("Model version").input_value() == ref
    assert form.get_by_label("Deployment name").input_value() == "blue"

    other = form.get_by_label("Or another model reference")
    other.fill("no-such-model:1")  # refused: the error sits next to that field, nothing is created
    form.get_by_role("button", name="Create and deploy").click()
    message = form.locator(".field:has(#cd-model-other) .field-error")
    message.wait_for()
    assert "no-such-model" in message.inner_text()
    assert other.get_attribute("aria-invalid") == "true"
    assert MODEL not in [e["name"] for e in client.endpoints.list()]
    # the 4xx answer is an expected outcome shown on the page, not an error logged to the console
    assert [m for m in page.console_errors if "Response Status Error" in m] == []
    _shot(page, "deploy_link_error")

    other.fill("")
    form.get_by_role("button", name="Create and deploy").click()
    page.wait_for_url(f"**/ui/endpoints/{MODEL}")
    _wait_ready(page)
    status, body = _send(page, '{"input_data": ["awful film"]}')
    assert status.startswith("200") and json.loads(body)["predictions"][0]["label"] in ("neg", "pos")
    page.goto("/ui/endpoints")
    row = page.locator(f'#endpoints-table tr[data-endpoint="{MODEL}"]')
    assert "ready" in row.locator("[data-health]").inner_text()
    assert f"/endpoints/{MODEL}/score" in row.inner_text()
    client.endpoints.delete(MODEL)
