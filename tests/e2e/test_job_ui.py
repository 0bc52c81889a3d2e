"""The job pages in a real browser: live progress, charts and log while a fine-tune runs; metrics,
confusion matrix and registering the model when it ends; cancel from the page; the job list."""

from __future__ import annotations

import httpx
import pytest

MAPPING = {"sentence1": "review", "label": "stars"}


def _submit(server, train, **hyperparameters):
    import fmhub

    spec = {"model": "tiny-bert", "task": "text-classification", "register_model": False,
            "data": {"train": str(train), "column_mapping": MAPPING},
            "hyperparameters": {"per_device_train_batch_size": 8, **hyperparameters}, "device": "cpu"}
    with fmhub.Client(url=server.url) as client:
        return client.finetune(spec)


def _points(page, chart="#loss-chart") -> int:
    return int(page.locator(chart).get_attribute("data-points"))


@pytest.fixture(scope="module")
def jobs_seen():
    """Job ids the tests of this module submitted, for the list test."""
    return {}


def test_a_running_finetune_updates_live_then_registers_its_model(page, ui_server, jobs_seen):
    server, train = ui_server
    job = _submit(server, train, max_steps=150, logging_steps=1, save_steps=50)
    jobs_seen["completed"] = job.id
    page.goto(f"/ui/jobs/{job.id}")
    assert page.locator("a.json-twin").get_attribute("href") == f"/api/v1/jobs/{job.id}"
    # Points arrive while the job runs, with no reload: the chart grows between two reads.
    page.wait_for_function("Number(document.querySelector('#loss-chart').dataset.points) > 0", timeout=60_000)
    first = _points(page)
    assert page.locator("#job-status").get_attribute("data-status") == "running"
    page.wait_for_function(f"Number(document.querySelector('#loss-chart').dataset.points) > {first}",
                           timeout=20_000)
    assert page.locator("#progress").get_attribute("aria-valuemax") == "150"
    assert int(page.locator("#progress").get_attribute("aria-valuenow")) > 0
    assert "step " in page.locator("#progress-text").inner_text()
    assert page.locator("#loss-chart canvas").count() == 1
    # The summary refreshes itself when the job ends: metrics, confusion matrix, Register.
    page.wait_for_selector('#job-status[data-status="completed"]', timeout=120_000)
    page.wait_for_selector("#metrics-table")
    assert page.locator("#metrics-table tbody tr").count() == 2  # validation and test
    assert page.locator("table.cm").count() == 2
    assert page.locator("#confusion-test tbody tr").count() == 2  # neg, pos
    page.wait_for_function("document.querySelector('#progress').getAttribute('aria-valuenow') === '150'")
    page.wait_for_function("Number(document.querySelector('#eval-chart').dataset.points) >= 3")
    assert _points(page) == 150
    assert "training finished" in page.locator("#log").inner_text()
    assert page.locator("#validation-report").get_by_text("sentence1").count() >= 1
    assert page.get_by_role("button", name="Cancel").count() == 0
    # Register from the page, under a name of our choosing.
    page.get_by_label("Model name").fill("ui-sentiment")
    page.get_by_role("button", name="Register model").dblclick()  # disabled while its request runs
    link = page.locator("#registered-model")
    link.wait_for()
    assert page.posts == [f"/ui/jobs/{job.id}/register"]
    assert link.inner_text() == "ui-sentiment:1" and link.get_attribute("href") == "/ui/models/ui-sentiment:1"
    assert page.get_by_role("link", name="Deploy").get_attribute("href") == "/ui/endpoints?deploy=ui-sentiment:1"
    assert page.get_by_role("link", name="Open model").get_attribute("href") == "/ui/models/ui-sentiment:1"
    assert page.get_by_role("button", name="Register model").count() == 0
    assert httpx.get(f"{server.url}/api/v1/models/ui-sentiment:1").status_code == 200
    assert httpx.get(f"{server.url}/api/v1/jobs/{job.id}").json()["outputs"]["registered_model"] == "ui-sentiment:1"


def test_cancel_from_the_page_then_resume_is_offered_and_the_list_shows_both(page, ui_server, jobs_seen):
    server, train = ui_server
    job = _submit(server, train, max_steps=100_000, logging_steps=20, save_steps=100_000,
                  learning_rate=1e-5)
    jobs_seen["canceled"] = job.id
    page.goto(f"/ui/jobs/{job.id}")
    page.wait_for_function("Number(document.querySelector('#progress').getAttribute('aria-valuenow')) > 0",
                           timeout=60_000)
    cancel = page.get_by_role("button", name="Cancel")
    cancel.focus()
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.keyboard.press("Enter")  # the actions work from the keyboard, and ask first
    assert asked and f"Cancel job {job.id}?" in asked[0]
    assert page.posts == [] and page.locator("#job-status").get_attribute("data-status") == "running"
    page.on("dialog", lambda d: d.accept())
    cancel.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector('#job-status[data-status="canceled"]', timeout=60_000)
    assert page.get_by_role("button", name="Resume").is_visible()
    assert page.get_by_role("button", name="Cancel").count() == 0
    assert page.get_by_role("button", name="Register model").count() == 0
    # Resume queues it again and the page follows it again; cancel once more to keep the test short.
    page.get_by_role("button", name="Resume").click()
    page.wait_for_selector('#job-status[data-status="queued"], #job-status[data-status="running"]')
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_selector('#job-status[data-status="canceled"]', timeout=60_000)
    page.goto("/ui/jobs")
    rows = page.locator("#jobs-table tbody tr")
    statuses = {rows.nth(i).get_attribute("data-job"): rows.nth(i).get_attribute("data-status")
                for i in range(rows.count())}
    assert statuses[job.id] == "canceled"
    if "completed" in jobs_seen:
        assert statuses[jobs_seen["completed"]] == "completed"
    page.get_by_label("Status").select_option("canceled")
    page.wait_for_function("[...document.querySelectorAll('#jobs-table tbody tr')]"
                           ".every(r => r.dataset.status === 'canceled')")
    assert "status=canceled" in page.url
    assert page.locator(f'#jobs-table tr[data-job="{job.id}"] a').get_attribute("href") == f"/ui/jobs/{job.id}"
