"""Chat fine-tuning through the service on a tiny random chat Llama: LoRA by default, the adapter's
generation config stops at the end of the turn, metrics per source beside the zero-shot base, and
the adapter used by predict and evaluate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fmhub.services.evaluate import run_evaluate
from fmhub.services.finetune import run_finetune
from fmhub.services.models import import_model
from fmhub.services.predict import predict
from fmhub.services.specs import EvaluateSpec, FinetuneSpec
from tiny_chat import build_tiny_chat_llama, chat_files


@pytest.fixture(scope="module")
def chat_folder(tmp_path_factory):
    # eos <|endoftext|> while the template ends turns with <|im_end|>: the end of turn must be added
    return build_tiny_chat_llama(tmp_path_factory.mktemp("tiny-chat") / "model", eos="<|endoftext|>")


def test_chat_lora_fine_tune_against_the_zero_shot_base(ctx, chat_folder, tmp_path):
    from transformers import AutoTokenizer

    import_model(ctx, chat_folder, name="tiny-chat", task="chat-completion", license="apache-2.0")
    files = chat_files(tmp_path)
    spec = FinetuneSpec(model="tiny-chat:1", task="chat-completion", data={**files, "group_by": "source"},
                        hyperparameters={"max_steps": 2, "lora_r": 4, "max_seq_length": 128,
                                         "per_device_train_batch_size": 4},
                        generation={"max_new_tokens": 4}, registered_model_name="tiny-chat-ft", device="cpu")
    result = run_finetune(ctx, spec)
    version = result.model_version
    assert version.lineage["finetuning_type"] == "lora" and version.lineage["adapter"] is True  # the task's default

    folder = Path(version.path)
    tok = AutoTokenizer.from_pretrained(str(folder))
    eos = json.loads((folder / "generation_config.json").read_text())["eos_token_id"]
    assert set(eos) == {tok.convert_tokens_to_ids("<|endoftext|>"), tok.convert_tokens_to_ids("<|im_end|>")}

    sources = {"translation", "qa", "chat"}
    assert set(result.metrics["test"]["groups"]) == set(result.metrics["test_zero_shot"]["groups"]) == sources
    val = result.metrics["validation"]
    assert math.isclose(val["perplexity"], math.exp(val["loss"]))

    out = predict(ctx, "tiny-chat-ft:1", [[{"role": "user", "content": "What is the capital of France?"}]])
    assert out["predictions"][0]["finish_reason"] in ("stop", "length")

    base = run_evaluate(ctx, EvaluateSpec(model="tiny-chat:1", task="chat-completion",
                                          data={"test": files["test"], "group_by": "source"},
                                          generation={"max_new_tokens": 4}, max_seq_length=128, device="cpu"))
    assert base["test"] == result.metrics["test_zero_shot"]
    tuned = run_evaluate(ctx, EvaluateSpec(model="tiny-chat-ft:1", data={"test": files["test"], "group_by": "source"},
                                           generation={"max_new_tokens": 4}, device="cpu"))
    assert tuned["test"] == result.metrics["test"]
