"""Checking chat request bodies: the OpenAI layout and the cloud layout at /score; every problem
names its field, unknown fields are ignored (OpenAI) or refused (cloud parameters)."""

from __future__ import annotations

import json

import pytest

from fmhub.errors import PayloadTooLargeError
from fmhub.services.chat_request import (MAX_MESSAGES, ChatRequestError, openai_error, parse_chat_request,
                                         parse_cloud_chat)

USER = {"role": "user", "content": "hi"}


def _parse(**body):
    return parse_chat_request(json.dumps(body).encode())


def test_a_full_request_and_unknown_fields_ignored():
    r = _parse(model="whatever", messages=[{"role": "developer", "content": "be brief"},
                                           {"role": "user", "content": [{"type": "text", "text": "a"},
                                                                        {"type": "text", "text": "b"}]},
                                           {"role": "assistant", "content": None}, USER],
               max_completion_tokens=5, max_tokens=9, temperature=0, top_p=0.5, stop="END", seed=-1, n=1,
               stream=True, stream_options={"include_usage": True}, frequency_penalty=0.2, user="u",
               some_future_field={"x": 1})
    assert r.messages[0] == {"role": "system", "content": "be brief"}
    assert r.messages[1]["content"] == "a\nb" and r.messages[2]["content"] == ""
    assert r.sampling == {"max_tokens": 5, "temperature": 0.0, "top_p": 0.5, "stop": ["END"], "seed": 2 ** 63 - 1}
    assert r.stream and r.include_usage and r.model == "whatever"


@pytest.mark.parametrize("body, param", [
    ({"messages": [USER, USER, {"role": "robot", "content": "x"}]}, "messages[2].role"),
    ({"messages": [USER, {"content": "x"}]}, "messages[1].role"),
    ({"messages": [USER, {"role": "user", "content": 3}]}, "messages[1].content"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, "messages[0].content[0]"),
    ({"messages": [USER, "hi"]}, "messages[1]"),
    ({"messages": []}, "messages"),
    ({}, "messages"),
    ({"messages": [USER], "temperature": 2.5}, "temperature"),
    ({"messages": [USER], "temperature": -0.1}, "temperature"),
    ({"messages": [USER], "temperature": True}, "temperature"),
    ({"messages": [USER], "top_p": 1.5}, "top_p"),
    ({"messages": [USER], "max_tokens": 0}, "max_tokens"),
    ({"messages": [USER], "max_tokens": 1.5}, "max_tokens"),
    ({"messages": [USER], "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"messages": [USER], "stop": [""]}, "stop"),
    ({"messages": [USER], "n": 2}, "n"),
    ({"messages": [USER], "seed": "x"}, "seed"),
    ({"messages": [USER], "stream": "yes"}, "stream"),
    ({"messages": [USER], "n": True}, "n"),
    ({"messages": [USER], "logprobs": True}, "logprobs"),
    ({"messages": [USER], "top_logprobs": 3}, "top_logprobs"),
    ({"messages": [USER], "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ({"messages": [USER], "tool_choice": "required"}, "tool_choice"),
    ({"messages": [USER], "response_format": {"type": "json_object"}}, "response_format"),
])
def test_bad_fields_are_named(body, param):
    with pytest.raises(ChatRequestError) as err:
        parse_chat_request(json.dumps(body).encode())
    assert err.value.param == param
    assert err.value.http_status == 422
    shaped = openai_error(err.value)["error"]
    assert shaped["param"] == param and shaped["type"] == "invalid_request_error" and shaped["message"]


def test_fields_that_ask_for_nothing_pass():
    """``n: 1.0`` is one choice; empty tools, ``logprobs: false`` and a text response format ask
    for nothing the reply lacks."""
    r = _parse(messages=[USER], n=1.0, tools=[], tool_choice="none", logprobs=False, top_logprobs=0,
               response_format={"type": "text"})
    assert r.messages == [USER]


def test_too_many_messages_is_413_and_bad_json_422():
    with pytest.raises(PayloadTooLargeError):
        _parse(messages=[USER] * (MAX_MESSAGES + 1))
    with pytest.raises(PayloadTooLargeError):
        _parse(messages=[USER] * 10_000)
    with pytest.raises(ChatRequestError, match="not valid JSON"):
        parse_chat_request(b'{"messages": [')
    with pytest.raises(ChatRequestError, match="not Unicode"):
        parse_chat_request(b'{"messages": [{"role": "user", "content": "\\ud800"}]}')


def test_cloud_layout_one_or_several_conversations():
    body = {"input_data": {"input_string": [USER], "parameters": {"max_new_tokens": 7, "do_sample": False}}}
    conversations, sampling, single = parse_cloud_chat(json.dumps(body).encode())
    assert conversations == [[USER]] and single
    assert sampling == {"max_tokens": 7, "temperature": 0.0}
    body = {"input_data": {"input_string": [[USER], [USER, {"role": "assistant", "content": "x"}, USER]]},
            "parameters": {"temperature": 0.7}}
    conversations, sampling, single = parse_cloud_chat(json.dumps(body).encode())
    assert len(conversations) == 2 and not single and sampling == {"temperature": 0.7}
    with pytest.raises(ChatRequestError) as err:
        parse_cloud_chat(json.dumps({"input_data": {"input_string": [[USER], [{"role": "x"}]]}}).encode())
    assert err.value.param == "input_data.input_string[1][0].role"
    with pytest.raises(ChatRequestError) as err:
        parse_cloud_chat(json.dumps({"input_data": {"input_string": [USER], "parameters": {"beams": 2}}}).encode())
    assert err.value.param == "parameters.beams"


def test_cloud_layout_takes_texts_and_message_objects():
    body = {"input_data": ["hello", {"messages": [USER]}], "params": {"max_tokens": 3}}
    conversations, sampling, single = parse_cloud_chat(json.dumps(body).encode())
    assert conversations == [[{"role": "user", "content": "hello"}], [USER]] and not single
    assert sampling == {"max_tokens": 3}
    conversations, _, single = parse_cloud_chat(json.dumps({"inputs": "hi"}).encode())
    assert conversations == [[USER]] and single
