"""The catalog page in a real browser: filters with counts, search, the JSON twin, keyboard focus
and the Back button."""

from __future__ import annotations

import json


def test_catalog_filters_update_counts_and_results(page, ui_server):
    page.goto("/")
    assert page.url.endswith("/ui/models")
    rows = page.locator("#models-table tbody tr")
    everything = rows.count()
    assert everything >= 22  # 21 system cards + tiny-bert
    page.get_by_role("group", name="License").get_by_label("cc-by-4.0").check()
    page.wait_for_function("document.querySelectorAll('#models-table tbody tr').length === 1")
    assert rows.first.get_attribute("data-model") == "opus-mt-en-de"
    assert "license=cc-by-4.0" in page.url
    page.get_by_role("group", name="License").get_by_label("any").check()
    page.get_by_role("group", name="Registry").get_by_label("workspace").check()
    page.wait_for_function("document.querySelectorAll('#models-table tbody tr').length === 1")
    assert rows.first.get_attribute("data-model") == "tiny-bert"
    page.get_by_role("group", name="Registry").get_by_label("any").check()
    assert page.get_by_role("group", name="Task (serves or fine-tunes)").count() == 1
    search = page.get_by_label("Search models")
    placeholder_fits = "e => e.scrollWidth <= e.clientWidth && e.clientWidth >= 8 * e.placeholder.length"
    assert search.evaluate(placeholder_fits), "the search box is too narrow for its placeholder"
    search.fill("t5")
    page.wait_for_function("document.querySelectorAll('#models-table tbody tr').length === 2")
    names = sorted(rows.nth(i).get_attribute("data-model") for i in range(rows.count()))
    assert names == ["flan-t5-base", "t5-small"]
    count = page.locator('[data-facet-count="license=apache-2.0"]').inner_text()
    assert count == "2"
    twin = page.locator("a.json-twin").get_attribute("href")
    body = page.request.get(twin).json()
    assert sorted(m["name"] for m in body["items"]) == names
    # Back after another filter: the URL has search=t5 again, and so has the search box
    page.wait_for_function("location.search.includes('search=t5')")
    page.get_by_role("group", name="License").get_by_label("apache-2.0").check()
    page.wait_for_function("location.search.includes('license=apache-2.0')")
    page.go_back()
    page.wait_for_function("!location.search.includes('license=apache-2.0')")
    assert "search=t5" in page.url
    page.wait_for_function("document.getElementById('search').value === 't5'")
    assert page.get_by_role("group", name="License").get_by_label("any").is_checked()
    assert page.console_errors == []  # no 404 for /favicon.ico either


def test_catalog_is_usable_from_the_keyboard(page):
    page.goto("/ui/models")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    # Arrow keys change a filter; the filters are rendered again and the focus stays on the radio
    page.get_by_role("group", name="License").get_by_label("any").focus()
    page.evaluate("document.querySelector('#catalog aside').dataset.old = 'yes'")
    page.keyboard.press("ArrowDown")
    page.wait_for_function("!document.querySelector('#catalog aside[data-old]')")  # swapped
    focused = page.evaluate("[document.activeElement.name, document.activeElement.value, document.activeElement.checked]")
    assert focused[0] == "license" and focused[1] != "" and focused[2] is True
    page.keyboard.press("ArrowUp")  # and goes on working from the keyboard
    page.wait_for_function("/license=(&|$)/.test(location.search)")
    page.wait_for_function("document.activeElement.name === 'license' && document.activeElement.value === ''")

    page.get_by_label("Search models").focus()
    page.keyboard.type("opus")
    page.wait_for_function("document.querySelectorAll('#models-table tbody tr').length === 1")
    link = page.locator("#models-table tbody a").first
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/models/opus-mt-en-de")
    assert json.loads(page.request.get("/api/v1/models/opus-mt-en-de").text())["card"]["name"] == "opus-mt-en-de"
