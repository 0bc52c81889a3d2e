"""Endpoints on Ray Serve through a real ``fmhub serve`` (127.0.0.1) and the test Ray head: the
same request/response contract as a local deployment, autoscaling 1 -> 2 -> 1 replicas under load,
blue (local) / green (Ray) traffic, and the Serve application removed with its endpoint."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import httpx
import pytest

from conftest import build_tiny_bert
from server_process import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.ray]

RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
"""Every Ray process of the test cluster (drivers included) uses 127.0.0.1."""


def build_tiny_classifier(root):
    """A tiny BERT sequence classifier with label names (``neg``, ``pos``): deployable as is."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    base = build_tiny_bert(root / "tiny-bert")
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(str(base), num_labels=2, id2label={0: "neg", 1: "pos"},
                                                          label2id={"neg": 0, "pos": 1})
    folder = root / "tiny-clf"
    model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def served(tmp_path_factory, ray_address):
    import fmhub
    from fmhub.config import Settings
    from fmhub.services.context import Context
    from fmhub.services.models import import_model

    root = tmp_path_factory.mktemp("ray-serve")
    ctx = Context.from_settings(Settings(home=root / "home"))
    import_model(ctx, build_tiny_classifier(root), name="tiny-clf", task="text-classification")
    server = ServerProcess(root / "home", env={"FMHUB_RAY_ADDRESS": ray_address, **RAY_ENV}).start()
    client = fmhub.Client(url=server.url)
    try:
        yield server, client
    finally:
        client.close()
        server.stop()


def _key(client, endpoint):
    return client.endpoints.keys(endpoint)["primary_key"]


def _score(server, endpoint, body, key, timeout=60.0):
    return httpx.post(f"{server.url}/endpoints/{endpoint}/score", json=body, timeout=timeout,
                      headers={"Authorization": f"Bearer {key}"})


def _deployment(client, endpoint, name):
    return next(d for d in client.endpoints.get(endpoint)["deployments"] if d["name"] == name)


def _wait_replicas(client, endpoint, name, want, timeout_s):
    """Poll ``show`` until the deployment runs ``want`` replicas; returns the counts seen."""
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = (_deployment(client, endpoint, name).get("replicas") or {}).get("running")
        seen.append(running)
        if running == want:
            return seen
        time.sleep(1.0)
    raise AssertionError(f"{endpoint}/{name} did not reach {want} replicas in {timeout_s} s: {seen[-20:]}")


def test_ray_deployment_has_the_contract_of_a_local_one(served):
    server, client = served
    client.endpoints.create("loc")
    client.endpoints.deploy("loc", "tiny-clf:1", "blue")
    client.endpoints.create("rs")
    t0 = time.monotonic()
    shown = client.endpoints.deploy("rs", "tiny-clf:1", "blue", backend="ray", min_replicas=1, max_replicas=2)
    print(f"ray deployment ready in {time.monotonic() - t0:.1f} s")
    d = shown["deployments"][0]
    assert d["state"] == "ready" and d["backend"] == "ray", d
    assert d["min_replicas"] == 1 and d["max_replicas"] == 2 and d["replicas"]["running"] == 1, d
    keys = {e: _key(client, e) for e in ("loc", "rs")}
    body = {"input_data": ["good movie", "bad film", "the plot"], "params": {"top_k": 2}}
    local, ray = (_score(server, e, body, keys[e]) for e in ("loc", "rs"))
    assert local.status_code == ray.status_code == 200, (local.text, ray.text)
    assert local.json().keys() == ray.json().keys()
    assert ray.json()["deployment"] == "blue" and ray.json()["model"] == "tiny-clf:1"
    for a, b in zip(local.json()["predictions"], ray.json()["predictions"], strict=True):
        assert a.keys() == b.keys() and a["label"] == b["label"]
        assert [x["label"] for x in a["top_k"]] == [x["label"] for x in b["top_k"]]
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)
    for bad in ({"input_data": [123]}, {"input_data": "x" * 10, "params": {"top_k": "many"}}, {"nothing": 1},
                {"input_data": ["ok"], "params": {"no_such_param": 1}}):
        local, ray = (_score(server, e, bad, keys[e]) for e in ("loc", "rs"))
        assert local.status_code == ray.status_code and local.status_code in (413, 422), (bad, local.text, ray.text)
        assert local.json()["error"]["code"] == ray.json()["error"]["code"]
        assert local.json()["error"]["message"] == ray.json()["error"]["message"]
    assert _score(server, "rs", {"input_data": ["good"]}, "wrong-key").status_code == 401


def test_ray_deployment_scales_up_under_load_and_back_when_idle(served):
    server, client = served
    key = _key(client, "rs")
    stop = threading.Event()
    answered = []

    def load():
        with httpx.Client(timeout=30.0) as http:
            while not stop.is_set():
                r = http.post(f"{server.url}/endpoints/rs/score", json={"input_data": ["good movie"] * 4},
                              headers={"Authorization": f"Bearer {key}"})
                answered.append(r.status_code)

    threads = [threading.Thread(target=load, daemon=True) for _ in range(16)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    try:
        _wait_replicas(client, "rs", "blue", 2, timeout_s=90)
        up_s = time.monotonic() - t0
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=35)
    assert answered and set(answered) == {200}, {s: answered.count(s) for s in set(answered)}
    t1 = time.monotonic()
    _wait_replicas(client, "rs", "blue", 1, timeout_s=60)
    print(f"1 -> 2 replicas in {up_s:.1f} s under load ({len(answered)} requests), "
          f"2 -> 1 in {time.monotonic() - t1:.1f} s idle")
    assert _deployment(client, "rs", "blue")["replicas"] == {"running": 1, "min": 1, "max": 2}


def test_blue_local_green_ray_both_answer(served):
    server, client = served
    client.endpoints.create("bg")
    client.endpoints.deploy("bg", "tiny-clf:1", "blue")
    cli = [sys.executable, "-m", "fmhub", "endpoints"]
    deployed = subprocess.run([*cli, "deploy", "bg", "--model", "tiny-clf:1", "--deployment", "green", "--backend", "ray",
                               "--min-replicas", "1", "--max-replicas", "1", "--url", server.url],
                              capture_output=True, text=True, timeout=180, env={**os.environ, "COLUMNS": "200"})
    assert deployed.returncode == 0, deployed.stderr
    assert re.search(r"green .*ready .*ray .*1 \(1\.\.1\)", deployed.stdout), deployed.stdout
    shown = client.endpoints.traffic("bg", {"blue": 50, "green": 50})
    assert {d["name"]: (d["backend"], d["traffic"]) for d in shown["deployments"]} == {
        "blue": ("local", 50), "green": ("ray", 50)}
    key = _key(client, "bg")
    answered = {}
    for _ in range(40):
        r = _score(server, "bg", {"input_data": ["good movie"]}, key)
        assert r.status_code == 200, r.text
        assert r.headers["x-fmhub-deployment"] == r.json()["deployment"]
        answered[r.json()["deployment"]] = answered.get(r.json()["deployment"], 0) + 1
        if len(answered) == 2 and min(answered.values()) >= 3:
            break
    assert set(answered) == {"blue", "green"}, answered
    logs = "\n".join(client.endpoints.logs("bg"))
    assert "Serve application fmhub.bg.green ready" in logs, logs


def test_deleting_the_endpoint_removes_its_serve_applications(served, ray_address):
    server, client = served
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    from ray import serve

    from fmhub import raycluster

    raycluster.connect(ray_address)
    try:
        apps = set(serve.status().applications)
        assert {"fmhub.rs.blue", "fmhub.bg.green"} <= apps, apps
        client.endpoints.delete("rs")
        client.endpoints.undeploy("bg", "green")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and {"fmhub.rs.blue", "fmhub.bg.green"} & set(serve.status().applications):
            time.sleep(0.5)
        assert not {"fmhub.rs.blue", "fmhub.bg.green"} & set(serve.status().applications)
        # the local deployment of the endpoint still answers alone
        assert _score(server, "bg", {"input_data": ["good"]}, _key(client, "bg")).json()["deployment"] == "blue"
    finally:
        raycluster.disconnect()
