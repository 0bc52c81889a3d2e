"""The chat playground of a chat endpoint in a real browser: a tiny chat model deployed, a message
sent, the reply streamed into the conversation with its usage and finish reason, a second turn
that carries the first, and a refused request shown as the endpoint's error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tiny_chat import build_byte_chat_llama  # noqa: E402


@pytest.fixture(scope="module")
def chat_endpoint(ui_server):
    import fmhub

    server, train = ui_server
    client = fmhub.Client(url=server.url)
    folder = build_byte_chat_llama(train.parent / "tiny-chat", context=256)
    job = client.models.import_(folder, name="tiny-chat", task="chat-completion")
    done = client.jobs.wait(job.id, timeout_s=120, poll_s=0.3)
    assert done.status.value == "completed", done.error
    client.endpoints.create("chat-ui")
    shown = client.endpoints.deploy("chat-ui", "tiny-chat:1", "blue")
    assert shown["deployments"][0]["state"] == "ready", shown
    try:
        yield client
    finally:
        client.endpoints.delete("chat-ui")
        client.close()


def _say(page, text, max_tokens):
    page.locator("#chat-input").fill(text)
    page.locator("#chat-max-tokens").fill(str(max_tokens))
    page.locator("#chat-temperature").fill("0")
    page.locator("#chat-finish").evaluate("n => n.textContent = '-'")
    page.locator("#chat-send").click()
    page.wait_for_function("document.getElementById('chat-finish').textContent !== '-'")


def test_the_playground_streams_replies_and_keeps_the_conversation(page, chat_endpoint):
    page.goto("/ui/endpoints/chat-ui")
    expect(page.get_by_role("heading", name="Chat playground")).to_be_visible()
    assert page.locator("#console-request").count() == 0  # the JSON console is for the other tasks
    _say(page, "hello there", 8)
    expect(page.locator("#chat-finish")).to_have_text("length")
    expect(page.locator("#chat-status")).to_have_text("200 OK")
    expect(page.locator("#chat-usage")).to_contain_text("8 out")
    assert page.locator("#chat-log li.assistant .content").first.inner_text() != ""
    first_prompt = int(page.locator("#chat-usage").inner_text().split(" in")[0])
    _say(page, "and again", 4)
    expect(page.locator("#chat-log li")).to_have_count(4)
    later_prompt = int(page.locator("#chat-usage").inner_text().split(" in")[0])
    assert later_prompt > first_prompt + 8  # the second turn carries the first question and reply
    _say(page, "too long", 100_000)
    expect(page.locator("#chat-finish")).to_have_text("error")
    expect(page.locator("#chat-status")).to_contain_text("422")
    expect(page.locator("#chat-log li.assistant").last).to_contain_text("max_tokens")
