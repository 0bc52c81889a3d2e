"""Two ``fmhub serve`` on one database: a deployment runs on one server (its owner), either server's
scoring URL answers for it, keys and logs are the same on both, and when the owner is SIGKILLed the
other server takes the deployment over and answers again."""

from __future__ import annotations

import time

import httpx
import pytest

from conftest import build_tiny_bert
from server_process import ServerProcess
from tiny_tasks import DATA_FILES

pytestmark = pytest.mark.integration

TAKEOVER_LIMIT_S = 30.0


def _finetune(home, root):
    """A fine-tuned tiny text classifier ``tc:1`` in ``home`` (before the servers start)."""
    from fmhub.config import Settings
    from fmhub.services.context import Context
    from fmhub.services.finetune import run_finetune
    from fmhub.services.models import import_model
    from fmhub.services.specs import FinetuneSpec

    ctx = Context.from_settings(Settings(home=home))
    task = next(iter(DATA_FILES))  # the text classification files
    import_model(ctx, build_tiny_bert(root / "tiny-bert"), name="tiny-bert", task=task)
    folder = root / "data"
    folder.mkdir()
    data = DATA_FILES[task](folder)
    data.update(validation="none", test="none")
    run_finetune(ctx, FinetuneSpec(model="tiny-bert:1", task=task, data=data, device="cpu",
                                   hyperparameters={"max_steps": 2, "per_device_train_batch_size": 4,
                                                    "max_seq_length": 32},
                                   registered_model_name="tc"))


def _score(url, key, texts, **headers):
    return httpx.post(f"{url}/endpoints/ep/score", json={"input_data": texts}, timeout=60,
                      headers={"Authorization": f"Bearer {key}", **headers})


def test_a_deployment_runs_once_answers_through_both_servers_and_is_taken_over(tmp_path):
    import fmhub

    home = tmp_path / "home"
    _finetune(home, tmp_path)
    a = ServerProcess(home, extra_args=("--no-scheduler",)).start()
    b = ServerProcess(home, extra_args=("--no-scheduler",)).start()
    try:
        client_a, client_b = fmhub.Client(url=a.url), fmhub.Client(url=b.url)
        client_a.endpoints.create("ep")
        shown = client_a.endpoints.deploy("ep", "tc:1", "blue")
        assert shown["deployments"][0]["state"] == "ready", shown
        key = client_a.endpoints.keys("ep")["primary_key"]
        texts = ["good movie", "bad film", "the plot"]

        direct = _score(a.url, key, texts)
        assert direct.status_code == 200, direct.text
        # B does not start its own copy: it forwards to A, and B's view names A as the owner.
        time.sleep(3)  # at least one ownership round on B
        forwarded = _score(b.url, key, texts)
        assert forwarded.status_code == 200, forwarded.text
        assert forwarded.json()["predictions"] == direct.json()["predictions"]
        on_b = client_b.endpoints.get("ep")["deployments"][0]
        assert on_b["state"] == "ready" and on_b["owner"].startswith("serve:") and on_b["owner_url"] == a.url

        # An error answered through B is written once to the shared log, and B shows A's lines.
        bad = _score(b.url, key, [{"not": "text"}])
        assert bad.status_code == 422, bad.text
        assert _score(b.url, "wrong-key", texts).status_code == 401
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = client_b.endpoints.logs("ep")
            if any("422" in line for line in lines):
                break
            time.sleep(0.5)
        assert sum("request answered 422" in line for line in lines) == 1, lines
        assert any("starting 1 instance" in line for line in lines), lines

        # A key regenerated through B stops working on A at once.
        new = client_b.endpoints.keys("ep", regenerate="primary")["primary_key"]
        assert _score(a.url, key, texts).status_code == 401
        assert _score(a.url, new, texts).status_code == 200

        # The owner dies: B takes the deployment over and answers again within the limit.
        a.kill()
        killed = time.monotonic()
        answer = None
        while time.monotonic() - killed < TAKEOVER_LIMIT_S:
            answer = _score(b.url, new, texts)
            if answer.status_code == 200:
                break
            assert answer.status_code == 503, answer.text
            time.sleep(0.5)
        took_s = time.monotonic() - killed
        assert answer is not None and answer.status_code == 200, answer.text if answer else None
        assert answer.json()["predictions"] == direct.json()["predictions"]
        assert took_s < TAKEOVER_LIMIT_S
        on_b = client_b.endpoints.get("ep")["deployments"][0]
        assert on_b["owner_url"] == b.url and on_b["state"] == "ready", on_b
        assert any("taken by" in line for line in client_b.endpoints.logs("ep"))
    finally:
        a.stop()
        b.stop()
