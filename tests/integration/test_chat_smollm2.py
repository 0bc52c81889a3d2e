"""The offline chat model end to end: SmolLM2-135M-Instruct fine-tuned with LoRA (a few steps) on rows
of the shared chat data registers an adapter on its base, with the end-of-turn token in its generation
config; deployed on a real ``fmhub serve`` (127.0.0.1), the official ``openai`` package streams its
replies to test prompts and every reply ends by itself (``finish_reason`` ``stop``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import DATASETS  # noqa: E402
from server_process import ServerProcess  # noqa: E402
from test_cli_finetune import fmhub  # noqa: E402

pytestmark = pytest.mark.integration
openai = pytest.importorskip("openai")

CHAT = DATASETS / "chat"


def _rows(file: Path, per_source: int) -> list[dict]:
    """The first ``per_source`` rows of each source of a chat file."""
    taken: dict[str, list[dict]] = {}
    for line in file.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        bucket = taken.setdefault(row["source"], [])
        if len(bucket) < per_source:
            bucket.append(row)
    return [row for rows in taken.values() for row in rows]


def test_lora_fine_tuned_smollm2_registers_an_adapter_and_its_streamed_replies_stop(tmp_path):
    if not (CHAT / "train.jsonl").is_file():
        pytest.skip(f"real data not found under {CHAT}")
    home = tmp_path / "home"
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in _rows(CHAT / "train.jsonl", 4)), encoding="utf-8")
    result = json.loads(fmhub(home, "finetune", "--model", "SmolLM2-135M-Instruct", "--task", "chat-completion",
                              "--train", str(train), "--validation", "none", "--test", "none",
                              "--max-steps", "2", "--per-device-train-batch-size", "4",
                              "--registered-model-name", "smol-chat", "--json").stdout)
    assert result["status"] == "completed" and result["registered_model"] == "smol-chat:1"
    version = json.loads(fmhub(home, "models", "show", "smol-chat:1", "--json").stdout)["version"]
    lineage = version["lineage"]
    assert lineage["base_model"] == "SmolLM2-135M-Instruct" and lineage["adapter"] is True
    assert lineage["hyperparameters"]["finetuning_type"] == "lora"

    server = ServerProcess(home).start(timeout_s=120)
    try:
        import fmhub as fmhub_client

        client = fmhub_client.Client(url=server.url)
        client.endpoints.create("smol")
        shown = client.endpoints.deploy("smol", "smol-chat:1", "blue")
        assert shown["deployments"][0]["state"] == "ready", shown
        api = openai.OpenAI(base_url=f"{server.url}/endpoints/smol/v1",
                            api_key=client.endpoints.keys("smol")["primary_key"], max_retries=0, timeout=120)
        prompts = [row["messages"][:-1] for row in _rows(CHAT / "test.jsonl", 1)
                   if row["source"] in ("multi30k-en-de", "squad")]
        assert len(prompts) == 2
        for messages in prompts:
            chunks = list(api.chat.completions.create(model="smol-chat", messages=messages, max_tokens=256,
                                                      temperature=0, stream=True))
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
            assert text.strip() and finals == ["stop"], (messages[-1]["content"][:80], text, finals)
        client.close()
    finally:
        server.stop()
