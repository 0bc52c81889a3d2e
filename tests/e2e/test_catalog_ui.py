"""The catalog page in a real browser: filters with counts, search, and the JSON twin."""

from __future__ import annotations

import json


def test_catalog_filters_update_counts_and_results(page, ui_server):
    page.goto("/")
    assert page.url.endswith("/ui/models")
    rows = page.locator("#models-table tbody tr")
    everything = rows.count()
    assert everything >= 13  # 12 system cards + tiny-bert
    page.get_by_role("group", name="License").get_by_label("cc-by-4.0").check()
    page.wait_for_function("document.querySelectorAll('#models-table tbody tr').length === 1")
    assert rows.first.get_attribute("data-model") == "opus-mt-en-de"
    assert "license=cc-by-4.0" in page.url
    page.get_by_role("group", name="License").get_by_label("any").check()
    page.get_by_role("group", name="Registry").get_by_label("workspace").check()
    page.wait_for_function("document.querySelectorAll('#models-table tbody tr').length === 1")
    assert rows.first.get_attribute("data-model") == "tiny-bert"
    page.get_by_role("group", name="Registry").get_by_label("any").check()
    page.get_by_label("Search models").fill("t5")
    page.wait_for_function("document.querySelectorAll('#models-table tbody tr').length === 2")
    names = sorted(rows.nth(i).get_attribute("data-model") for i in range(rows.count()))
    assert names == ["flan-t5-base", "t5-small"]
    count = page.locator('[data-facet-count="license=apache-2.0"]').inner_text()
    assert count == "2"
    twin = page.locator("a.json-twin").get_attribute("href")
    body = page.request.get(twin).json()
    assert sorted(m["name"] for m in body["items"]) == names


def test_catalog_is_usable_from_the_keyboard(page):
    page.goto("/ui/models")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.get_by_label("Search models").focus()
    page.keyboard.type("opus")
    page.wait_for_function("document.querySelectorAll('#models-table tbody tr').length === 1")
    link = page.locator("#models-table tbody a").first
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/models/opus-mt-en-de")
    assert json.loads(page.request.get("/api/v1/models/opus-mt-en-de").text())["card"]["name"] == "opus-mt-en-de"
