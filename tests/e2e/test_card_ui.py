"""The model card page in a real browser: card details, keyboard-switchable code samples with copy
buttons, the action buttons' targets, a workspace version's lineage and versions, the JSON twin."""

from __future__ import annotations


def test_catalog_card_shows_tasks_license_samples_and_actions(page):
    page.goto("/ui/models/all-MiniLM-L6-v2")
    assert page.locator("h1").inner_text().startswith("all-MiniLM-L6-v2")
    tasks = page.locator("#inference-tasks").inner_text()
    assert "feature-extraction" in tasks and "sentence-similarity" in tasks
    assert "text-classification" in page.locator("#finetuning-tasks").inner_text()
    license_link = page.locator("#license a")
    assert license_link.inner_text() == "apache-2.0"
    assert license_link.get_attribute("href").startswith("https://www.apache.org/licenses/")
    assert page.locator("#sample-input").inner_text().strip().startswith("{")

    # Code samples: CLI first; arrow keys move between the tabs and show their panel.
    cli_tab = page.get_by_role("tab", name="CLI")
    assert cli_tab.get_attribute("aria-selected") == "true"
    assert page.locator("#panel-python").is_hidden()
    assert "fmhub finetune --model all-MiniLM-L6-v2 --task text-classification" in \
        page.locator("#code-cli-finetune").inner_text()
    cli_tab.focus()
    page.keyboard.press("ArrowRight")
    python_tab = page.get_by_role("tab", name="Python")
    assert python_tab.get_attribute("aria-selected") == "true"
    assert page.evaluate("document.activeElement.id") == "tab-python"
    assert page.locator("#panel-python").is_visible() and page.locator("#panel-cli").is_hidden()
    assert "client.finetune(" in page.locator("#code-python-finetune").inner_text()
    page.keyboard.press("End")
    assert page.get_by_role("tab", name="REST").get_attribute("aria-selected") == "true"
    rest = page.locator("#code-rest-finetune").inner_text()
    assert "/api/v1/jobs/finetune" in rest and page.url.split("/ui/")[0] in rest  # this server's address
    page.keyboard.press("ArrowRight")  # wraps around
    assert cli_tab.get_attribute("aria-selected") == "true"
    assert page.get_by_role("button", name="Copy the CLI fine-tune sample").is_visible()

    # Actions: fine-tune per task; no Evaluate or Deploy for a sentence encoder without a served head.
    finetune = page.locator('#model-actions a[data-action="finetune"]')
    assert finetune.count() == 5
    assert finetune.first.get_attribute("href") == "/ui/models/all-MiniLM-L6-v2/finetune?task=text-classification"
    assert page.locator('#model-actions button[data-action="deploy"]').is_disabled()
    assert page.locator('#model-actions button[data-action="evaluate"]').is_disabled()
    assert "no task head" in page.locator("#why-deploy").inner_text()

    twin = page.locator("a.json-twin").get_attribute("href")
    assert twin == "/api/v1/models/all-MiniLM-L6-v2"
    body = page.request.get(twin).json()
    assert body["card"]["name"] == "all-MiniLM-L6-v2"
    assert set(body["code_samples"]["finetune"]) == {"cli", "python", "rest"}
    assert body["code_samples"]["finetune"]["cli"] == page.locator("#code-cli-finetune").inner_text()


def test_workspace_version_card_shows_lineage_versions_and_actions(page):
    page.goto("/ui/models")
    page.locator('#models-table tr[data-model="tiny-bert"] a').first.click()
    page.wait_for_url("**/ui/models/tiny-bert:1")
    assert page.locator("#current-version").inner_text() == "v1"
    versions = page.locator("#version-list a")
    assert versions.count() == 1 and versions.first.inner_text() == "tiny-bert:1"
    assert versions.first.get_attribute("aria-current") == "page"
    assert "imported" in page.locator("#lineage-source").inner_text()
    assert "No metrics recorded" in page.locator("#metrics").inner_text()
    assert page.locator('#model-actions a[data-action="finetune"]').get_attribute("href") == \
        "/ui/models/tiny-bert:1/finetune?task=text-classification"
    # an imported encoder whose classification head was never trained: fine-tune first
    assert page.locator('#model-actions button[data-action="evaluate"]').is_disabled()
    assert page.locator('#model-actions button[data-action="deploy"]').is_disabled()
    assert "never trained" in page.locator("#why-deploy").inner_text()
    page.get_by_role("tab", name="Python").click()
    assert "client.models.predict(\"tiny-bert:1\"" in page.locator("#code-python-predict").inner_text()
    assert "fmhub endpoints deploy tiny-bert --model tiny-bert:1" in page.locator("#code-cli-deploy").inner_text()
    body = page.request.get(page.locator("a.json-twin").get_attribute("href")).json()
    assert body["versions"] == [1] and set(body["code_samples"]) == {"finetune", "predict", "deploy"}


def test_unknown_model_is_an_error_page(page):
    response = page.goto("/ui/models/no-such-model")
    assert response.status == 404
    assert "no model named 'no-such-model'" in page.get_by_role("alert").inner_text()
