"""Scoring isolation on a real ``fmhub serve`` (127.0.0.1): requests sent at once share a dynamic
batch; the one holding an undecodable string answers 422 naming its index, every other one 200, and
the endpoint log holds the cause. The request layouts of other clients are answered too."""

from __future__ import annotations

import concurrent.futures
import threading

import httpx
import pytest

from conftest import build_tiny_bert
from server_process import ServerProcess

pytestmark = pytest.mark.integration

LABELS = {0: "negative", 1: "positive"}


def _classifier(folder):
    """A tiny BERT with a text-classification head named ``negative``/``positive`` (random weights)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    base = build_tiny_bert(folder / "base")
    config = BertConfig.from_pretrained(str(base), num_labels=2, id2label=LABELS,
                                        label2id={v: k for k, v in LABELS.items()})
    torch.manual_seed(0)
    out = folder / "classifier"
    BertForSequenceClassification(config).save_pretrained(str(out), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import fmhub
    from fmhub.config import Settings
    from fmhub.services.context import Context
    from fmhub.services.models import import_model

    root = tmp_path_factory.mktemp("isolation")
    ctx = Context.from_settings(Settings(home=root / "home"))
    import_model(ctx, _classifier(root), name="tiny-sentiment", task="text-classification")
    server = ServerProcess(root / "home").start()
    client = fmhub.Client(url=server.url)
    try:
        client.endpoints.create("iso")
        # A long batching window: requests sent together while requests keep coming share one batch.
        shown = client.endpoints.deploy("iso", "tiny-sentiment:1", "blue", max_batch_wait_ms=1000,
                                        max_batch_size=64, instances=1)
        assert shown["deployments"][0]["state"] == "ready", shown
        yield server, client, client.endpoints.keys("iso")["primary_key"]
    finally:
        client.close()
        server.stop()


def _post(server, key, content: bytes):
    return httpx.post(f"{server.url}/endpoints/iso/score", content=content, timeout=60,
                      headers={"Authorization": f"Bearer {key}", "content-type": "application/json"})


def _batches(client):
    return client.endpoints.get("iso")["deployments"][0]["batches"]


def test_an_undecodable_string_fails_only_its_own_request_of_the_batch(served):
    server, client, key = served
    good = [f'{{"input_data": ["the movie was good", "request {i}"]}}'.encode() for i in range(7)]
    bad = b'{"input_data": ["fine text", "more text", "x", "\\ud800"]}'  # raw JSON: a lone surrogate at index 3
    bodies = good[:3] + [bad] + good[3:]
    for _ in range(3):  # requests keep coming: the batcher expects more and waits for them (adaptive wait)
        assert _post(server, key, b'{"input_data": ["warm"]}').status_code == 200
    before = _batches(client)
    barrier = threading.Barrier(len(bodies))

    def send(body):
        barrier.wait(timeout=30)
        return _post(server, key, body)

    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(send, bodies))
    statuses = [r.status_code for r in answers]
    assert statuses == [200, 200, 200, 422, 200, 200, 200, 200], [r.text for r in answers]
    error = answers[3].json()["error"]
    assert error["code"] == "invalid_spec"
    assert error["message"].startswith("input_data[3]: ") and "surrogate" in error["message"]
    for r in answers[:3] + answers[4:]:
        predictions = r.json()["predictions"]
        assert len(predictions) == 2 and all(p["label"] in LABELS.values() for p in predictions)
    assert _batches(client) - before == 1  # the seven good requests were answered in one batch
    log = client.endpoints.logs("iso")
    assert any("422" in line and "input_data[3]" in line and "surrogate" in line for line in log), log
    # The instance is fine: the next request is answered, by the same process.
    assert _post(server, key, b'{"input_data": ["ok"]}').status_code == 200
    assert client.endpoints.get("iso")["deployments"][0]["processes"][0]["restarts"] == 0


def test_other_clients_request_layouts_are_answered(served):
    server, client, key = served
    layouts = {
        b'{"inputs": "the movie was good"}': 1,
        b'{"input_data": {"columns": ["text"], "index": [0, 1], "data": [["good"], ["bad"]]}}': 2,
        b'{"input_data": {"columns": ["premise", "hypothesis"], "index": [5], "data": [["a film", "a movie"]]}}': 1,
        b'{"input_data": {"input_string": ["good", "bad", "fine"], "parameters": {"top_k": 2}}}': 3,
        b'{"inputs": {"input_string": ["good"]}, "parameters": {"top_k": 2}}': 1,
    }
    for body, n in layouts.items():
        r = _post(server, key, body)
        assert r.status_code == 200, (body, r.text)
        predictions = r.json()["predictions"]
        assert len(predictions) == n
        if b"top_k" in body:
            assert all(len(p["top_k"]) == 2 for p in predictions)
    r = _post(server, key, b'{"input_data": {"columns": ["text"], "data": [["good"], [7]]}}')
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("input_data.data[1]: ")


def test_every_error_answer_is_in_the_endpoint_log(served):
    server, client, key = served
    assert _post(server, "fme_wrong", b'{"input_data": ["a"]}').status_code == 401
    assert _post(server, key, b'{"input_data": [7]}').status_code == 422
    log = "\n".join(client.endpoints.logs("iso"))
    assert "401 unauthorized" in log and "422 invalid_spec: input_data[0]: expected" in log
