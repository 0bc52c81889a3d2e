"""Online endpoints on a real ``fmhub serve`` (127.0.0.1): a fine-tuned tiny model deployed for each
of the five tasks, blue/green traffic, every kind of bad input answered with its status (never a
500), and a crashed instance restarted."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time

import httpx
import pytest

from conftest import build_tiny_bert
from server_process import ServerProcess
from tiny_tasks import DATA_FILES, build_tiny_b2b

pytestmark = pytest.mark.integration

TASKS = tuple(DATA_FILES)
SAMPLES = {
    "text-classification": ["good movie", ["bad film", "the plot"]],
    "token-classification": ["the movie was fun", ["a", "film", "and", "plot"]],
    "question-answering": [{"question": "what was good", "context": "the movie was good and the plot was dull"}],
    "summarization": ["the movie was good and the acting was fun"],
    "translation": ["the film was great"],
}


def _finetune_all(home, root):
    """Fine-tune a tiny model for every task into ``home`` (before the server starts)."""
    from fmhub.config import Settings
    from fmhub.services.context import Context
    from fmhub.services.finetune import run_finetune
    from fmhub.services.models import import_model
    from fmhub.services.specs import FinetuneSpec

    ctx = Context.from_settings(Settings(home=home))
    tiny_bert = build_tiny_bert(root / "tiny-bert")
    import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification")
    import_model(ctx, build_tiny_b2b(tiny_bert, root / "tiny-b2b"), name="tiny-b2b", task="summarization")
    for task in TASKS:
        folder = root / task
        folder.mkdir()
        data = DATA_FILES[task](folder)
        data.update(validation="none", test="none")
        model = "tiny-b2b:1" if task in ("summarization", "translation") else "tiny-bert:1"
        run_finetune(ctx, FinetuneSpec(model=model, task=task, data=data, device="cpu",
                                       hyperparameters={"max_steps": 2, "per_device_train_batch_size": 4,
                                                        "max_seq_length": 48},
                                       registered_model_name=f"ep-{task}"))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import fmhub

    root = tmp_path_factory.mktemp("endpoints")
    _finetune_all(root / "home", root)
    server = ServerProcess(root / "home").start()
    client = fmhub.Client(url=server.url)
    for task in TASKS:
        name = task.replace("-", "")[:20]
        client.endpoints.create(name)
        shown = client.endpoints.deploy(name, f"ep-{task}:1", "blue")
        assert shown["deployments"][0]["state"] == "ready", shown
    try:
        yield server, client
    finally:
        client.close()
        server.stop()


def _name(task):
    return task.replace("-", "")[:20]


def _score(server, endpoint, body, key, **headers):
    return httpx.post(f"{server.url}/endpoints/{endpoint}/score", json=body, timeout=60,
                      headers={"Authorization": f"Bearer {key}", **headers})


@pytest.mark.parametrize("task", TASKS)
def test_each_task_answers_with_its_response_shape(served, task):
    server, client = served
    name = _name(task)
    key = client.endpoints.keys(name)["primary_key"]
    r = _score(server, name, {"input_data": SAMPLES[task]}, key)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["deployment"] == "blue" and body["model"] == f"ep-{task}:1" and body["task"] == task
    assert r.headers["x-fmhub-deployment"] == "blue"
    predictions = body["predictions"]
    assert len(predictions) == len(SAMPLES[task])
    lineage = client.models.get(f"ep-{task}:1")["version"]["lineage"]
    for p in predictions:
        assert p["truncated"] is False
        if task == "text-classification":
            assert p["label"] in lineage["labels"] and 0 <= p["score"] <= 1
        elif task == "token-classification":
            assert set(p["tags"]) <= set(lineage["labels"]) and len(p["tags"]) == len(p["tokens"])
            for e in p["entities"]:
                assert {"type", "text", "score"} <= set(e)
        elif task == "question-answering":
            assert {"answer", "score", "start", "end"} <= set(p)
            if p["answer"]:
                assert SAMPLES[task][0]["context"][p["start"]:p["end"]] == p["answer"]
        else:
            assert isinstance(p["generated_text"], str)
    if task == "text-classification":
        top = _score(server, name, {"inputs": ["good movie"], "params": {"top_k": 2}}, key).json()
        assert [x["label"] for x in top["predictions"][0]["top_k"]] == sorted(
            lineage["labels"], key=lambda label: -next(x["score"] for x in top["predictions"][0]["top_k"]
                                                      if x["label"] == label))
    if task in ("summarization", "translation"):
        r = _score(server, name, {"input_data": SAMPLES[task], "params": {"num_beams": 2, "max_new_tokens": 3}}, key)
        assert r.status_code == 200 and len(r.json()["predictions"][0]["generated_text"].split()) <= 3


def test_blue_green_traffic_split_reaches_both_deployments(served):
    server, client = served
    name = _name("text-classification")
    client.endpoints.deploy(name, "ep-text-classification:1", "green")
    shown = client.endpoints.traffic(name, {"blue": 50, "green": 50})
    assert {d["name"]: d["traffic"] for d in shown["deployments"]} == {"blue": 50, "green": 50}
    key = client.endpoints.keys(name)["secondary_key"]  # either key works
    seen = [_score(server, name, {"input_data": ["good movie"]}, key).json()["deployment"] for _ in range(40)]
    assert set(seen) == {"blue", "green"}
    assert _score(server, name, {"input_data": ["good"]}, key, **{"x-fmhub-deployment": "green"}).json()["deployment"] == "green"
    with pytest.raises(Exception) as info:
        client.endpoints.traffic(name, {"blue": 60, "green": 60})
    assert getattr(info.value, "http_status", None) == 422
    client.endpoints.traffic(name, {"blue": 100})
    assert {_score(server, name, {"input_data": ["good"]}, key).json()["deployment"] for _ in range(10)} == {"blue"}


def test_bad_inputs_get_their_status_and_never_kill_an_instance(served):
    server, client = served
    name = _name("text-classification")
    key = client.endpoints.keys(name)["primary_key"]
    before = {d["name"]: [p["pid"] for p in d["processes"]] for d in client.endpoints.get(name)["deployments"]}
    url = f"{server.url}/endpoints/{name}/score"
    auth = {"Authorization": f"Bearer {key}"}

    def error(r, status, code):
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code
        return r.json()["error"]["message"]

    r = _score(server, name, {"input_data": []}, key)
    assert r.status_code == 200 and r.json()["predictions"] == []
    error(httpx.post(url, content=b"x" * (1 << 20 + 1), headers=auth), 413, "payload_too_large")
    long = " ".join(["good movie"] * 200)
    r = _score(server, name, {"input_data": [long, "fine"]}, key)
    assert r.status_code == 200 and [p["truncated"] for p in r.json()["predictions"]] == [True, False]
    error(httpx.post(url, content=b'{"input_data": [', headers={**auth, "content-type": "application/json"}),
          422, "invalid_spec")
    assert "input_data[1]" in error(_score(server, name, {"input_data": ["ok", 7]}, key), 422, "invalid_spec")
    assert "input_data" in error(_score(server, name, {"input_data": "just text"}, key), 422, "invalid_spec")
    assert "params.top_k" in error(_score(server, name, {"input_data": ["a"], "params": {"top_k": "2"}}, key),
                                   422, "invalid_spec")
    error(_score(server, name, {"input_data": ["a"], "extra": 1}, key), 422, "invalid_spec")
    error(httpx.post(url, json={"input_data": ["a"]}), 401, "unauthorized")
    error(_score(server, name, {"input_data": ["a"]}, "fme_wrong"), 401, "unauthorized")
    error(_score(server, "no-such-endpoint", {"input_data": ["a"]}, key), 404, "not_found")
    assert "nest" in error(httpx.post(url, content=b"[" * 5000, headers={**auth, "content-type": "application/json"}),
                           422, "invalid_request")  # the server's JSON nesting limit, before parsing

    # Deployments that cannot work are refused before anything starts.
    deployments = f"{server.url}/api/v1/endpoints/{name}/deployments"
    for body in ({"name": "x", "model": ""}, {"name": "x", "model": "ep-text-classification:1", "device": "cuda:7"},
                 {"name": "x", "model": "ep-text-classification:1", "task": "translation"},
                 {"name": "x", "model": "ep-token-classification:1"}):
        r = httpx.post(deployments, json=body, timeout=60)
        assert r.status_code == 422, (body, r.text)
    assert {d["name"] for d in client.endpoints.get(name)["deployments"]} == set(before)

    # A deployment with a one-request queue and a slow generator: 429 with Retry-After under load,
    # and 504 past its timeout.
    gen = _name("summarization")
    gen_key = client.endpoints.keys(gen)["primary_key"]
    client.endpoints.deploy(gen, "ep-summarization:1", "tight", max_queue=1, max_batch_size=1,
                            request_timeout_ms=200)
    slow = {"input_data": ["the movie was good and the acting was fun"] * 16,
            "params": {"num_beams": 8, "max_new_tokens": 200}}
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: _score(server, gen, slow, gen_key, **{"x-fmhub-deployment": "tight"}),
                                range(12)))
    codes = sorted(r.status_code for r in answers)
    assert 429 in codes and 504 in codes and set(codes) <= {200, 429, 504}, codes
    assert all(r.headers.get("retry-after") for r in answers if r.status_code == 429)
    assert all(r.status_code < 500 or r.status_code == 504 for r in answers)

    after = {d["name"]: [p["pid"] for p in d["processes"]] for d in client.endpoints.get(name)["deployments"]}
    assert after == before  # no instance died
    assert _score(server, name, {"input_data": ["good"]}, key).status_code == 200


def test_concurrent_deploys_of_one_deployment_take_turns(served):
    server, client = served
    name = _name("question-answering")
    url = f"{server.url}/api/v1/endpoints/{name}/deployments"
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: httpx.post(url, json={"name": "race", "model": "ep-question-answering:1"},
                                                      timeout=300), range(3)))
    assert [r.status_code for r in answers] == [201, 201, 201], [r.text for r in answers]
    shown = client.endpoints.get(name)["deployments"]
    race = [d for d in shown if d["name"] == "race"]
    # one deployment, started once: as many processes as the instances it was given (by default
    # one per core), not one set per concurrent deploy
    assert len(race) == 1 and race[0]["state"] == "ready" and len(race[0]["processes"]) == race[0]["instances"]
    client.endpoints.undeploy(name, "race")


def test_a_killed_instance_is_restarted_and_reported(served):
    server, client = served
    name = _name("token-classification")
    key = client.endpoints.keys(name)["primary_key"]
    pid = client.endpoints.get(name)["deployments"][0]["processes"][0]["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        d = client.endpoints.get(name)["deployments"][0]
        if d["processes"][0]["restarts"] == 1 and d["state"] == "ready":
            break
        time.sleep(0.3)
    assert d["processes"][0]["pid"] != pid and d["state"] == "ready"
    assert _score(server, name, {"input_data": ["the film"]}, key).status_code == 200
    assert any("restarting" in line for line in client.endpoints.logs(name))
    assert httpx.get(f"{server.url}/endpoints/{name}/health").status_code == 200
