"""Chat models in a real browser: the catalog's task filter lists the chat cards, and the fine-tune
wizard offers chat-completion, shows an uploaded conversation file as turns, groups the test
metrics by a column and trains LoRA by default."""

from __future__ import annotations

import json

from playwright.sync_api import expect

CHAT_CARDS = 10


def _conversations(path, n=12):
    rows = []
    for i in range(n):
        messages = [{"role": "user", "content": f"Translate to German: house number {i}"},
                    {"role": "assistant", "content": f"Hausnummer {i}"}]
        if i % 3 == 0:
            messages = [{"role": "system", "content": "You translate."}, *messages,
                        {"role": "user", "content": "And in French?"},
                        {"role": "assistant", "content": f"numéro {i}"}]
        rows.append(json.dumps({"messages": messages, "source": "multi30k"}, ensure_ascii=False))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_catalog_task_filter_lists_the_chat_cards(page):
    page.goto("/ui/models")
    page.get_by_role("group", name="Task (serves or fine-tunes)").get_by_label("chat-completion").check()
    rows = page.locator("#models-table tbody tr")
    page.wait_for_function(f"document.querySelectorAll('#models-table tbody tr').length === {CHAT_CARDS}")
    names = {rows.nth(i).get_attribute("data-model") for i in range(rows.count())}
    assert {"SmolLM2-135M-Instruct", "Qwen2.5-0.5B-Instruct", "Llama-3.2-1B-Instruct",
            "Mistral-7B-Instruct-v0.3"} <= names
    assert "task=chat-completion" in page.url


def test_wizard_offers_chat_completion_and_maps_messages(page, tmp_path):
    train = _conversations(tmp_path / "chat.jsonl")
    page.goto("/ui/models/SmolLM2-135M-Instruct/finetune")
    expect(page.get_by_label("chat-completion")).to_be_checked()  # the card's first fine-tuning task
    page.locator("section.step:not([hidden]) [data-next]").click()
    page.set_input_files("#data-train-file", str(train))
    expect(page.locator("#source-data-train [data-source-status]")).to_contain_text("rows")
    page.locator("section.step:not([hidden]) [data-next]").click()
    expect(page.locator("#map-data-train-messages")).to_have_value("messages")
    preview = page.locator("#preview-data-train")
    expect(preview.locator("tbody tr")).to_have_count(5)
    first = preview.locator(".conversation").first
    expect(first).to_contain_text("5 messages: 2 user, 2 assistant, system")
    roles = first.locator("li.turn").evaluate_all("items => items.map(li => li.dataset.role)")
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    expect(preview.locator("code", has_text='"role"')).to_have_count(0)  # turns, not a raw list
    expect(page.locator("#data-report-data-train .report-ok")).to_be_visible()
    page.select_option("#opt-data-train-group-by", "source")  # per-group test metrics
    expect(page.locator("#data-report-data-train .report-ok")).to_contain_text("12 train rows")
    # the parameters step: LoRA by default, its fields beside the main ones (not under Advanced)
    for heading in ("Validation data", "Test data", "Compute", "Parameters"):
        page.locator("section.step:not([hidden]) [data-next]").click()
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    method = page.locator("#hp-method")
    expect(method).to_be_visible()
    expect(method).to_have_attribute("data-lora-default", "true")
    expect(method.locator("#hp-finetuning-type option").first).to_have_text("default (lora)")
    expect(method.locator("#hp-lora-r")).to_have_attribute("placeholder", "16")
    expect(method.locator("#hp-lora-target-modules")).to_have_attribute("placeholder", "all-linear")
    expect(method.locator("#merge-adapter")).not_to_be_checked()
    expect(page.locator("#zero-shot")).to_be_checked()
    assert page.locator("#finetune-wizard select[name='data.group_by']").input_value() == "source"
