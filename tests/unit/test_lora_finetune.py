"""LoRA fine-tunes through the service on a tiny random Llama: the adapter version and its lineage,
loading it on its base (same logits as the trained PeftModel), --merge, per-group metrics, the
zero-shot comparison, perplexity, and the refusals that come before any data is read."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fmhub.errors import DataError, SpecError
from fmhub.services import finetune as finetune_service
from fmhub.services.finetune import run_finetune
from fmhub.services.model_loading import load_resolved, serving_paths
from fmhub.services.models import import_model, resolve_model
from fmhub.services.specs import FinetuneSpec
from fmhub.tasks import get_task
from fmhub.tasks.adapters import ADAPTER_FILE

WORDS = "good great fine bad awful movie film plot story acting the a is was".split()


@pytest.fixture(scope="module")
def tiny_llama_folder(tiny_bert, tmp_path_factory):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("llama-lora") / "model"
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    config = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


@pytest.fixture()
def llama(ctx, tiny_llama_folder):
    return import_model(ctx, tiny_llama_folder, name="tiny-llama", task="summarization", license="apache-2.0")


def write_rows(path: Path, n: int, seed: int) -> Path:
    import random

    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            doc = " ".join(rnd.choice(WORDS) for _ in range(8))
            f.write(json.dumps({"document": doc, "summary": " ".join(doc.split()[:3]),
                                "topic": "films" if i % 3 else "plots"}) + "\n")
    return path


def spec_for(tmp_path: Path, model: str = "tiny-llama:1", **kw) -> FinetuneSpec:
    hp = {"max_steps": 3, "per_device_train_batch_size": 4, "learning_rate": 1e-2, "logging_steps": 1,
          "finetuning_type": "lora", "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "max_seq_length": 64,
          **kw.pop("hp", {})}
    data = {"train": str(write_rows(tmp_path / "train.jsonl", 12, 1)),
            "validation": str(write_rows(tmp_path / "validation.jsonl", 4, 2)),
            "test": str(write_rows(tmp_path / "test.jsonl", 6, 3)), "group_by": "topic", **kw.pop("data", {})}
    return FinetuneSpec(model=model, task="summarization", data=data, hyperparameters=hp,
                        generation={"max_new_tokens": 3}, registered_model_name="tiny-summ", device="cpu", **kw)


def logits_of(model, tokenizer) -> "object":
    import torch

    enc = tokenizer(["good movie the plot was fun bad acting"], return_tensors="pt")
    enc.pop("token_type_ids", None)
    model.eval()
    with torch.no_grad():
        return model(**enc).logits


@pytest.fixture()
def captured(monkeypatch):
    """The trained PeftModel's logits, taken just before it is saved."""
    from transformers import AutoTokenizer

    seen = {}
    original = finetune_service.save_adapter_or_merged

    def capture(model, tokenizer, out_dir, resolved, merge, settings):
        seen["logits"] = logits_of(model, AutoTokenizer.from_pretrained(str(resolved.path)))
        seen["peft"] = type(model).__name__
        return original(model, tokenizer, out_dir, resolved, merge, settings)

    monkeypatch.setattr(finetune_service, "save_adapter_or_merged", capture)
    return seen


def test_lora_registers_an_adapter_that_loads_on_its_base(ctx, llama, tmp_path, captured, monkeypatch):
    monkeypatch.setenv("FMHUB_CPU_BF16", "0")  # exact logits: evaluation in fp32 (bf16 has its own tests)
    import torch
    from transformers import AutoTokenizer

    monkeypatch.setattr(type(get_task("summarization")), "zero_shot_baseline", True)
    result = run_finetune(ctx, spec_for(tmp_path))
    version = result.model_version
    assert version.ref == "tiny-summ:1" and captured["peft"].startswith("PeftModel")

    folder = Path(version.path)
    assert (folder / "adapter_config.json").is_file() and not (folder / "config.json").exists()
    assert json.loads((folder / ADAPTER_FILE).read_text())["base_model"] == "tiny-llama:1"
    assert sum(f.stat().st_size for f in folder.iterdir()) < 1_000_000  # small files, no base weights
    generation = json.loads((folder / "generation_config.json").read_text())
    tok = AutoTokenizer.from_pretrained(str(folder))
    assert tok.sep_token_id in ([generation["eos_token_id"]] if isinstance(generation["eos_token_id"], int)
                                else generation["eos_token_id"])

    lineage = version.lineage
    assert lineage["finetuning_type"] == "lora" and lineage["adapter"] is True and lineage["merged"] is False
    assert lineage["adapter_base_model"] == "tiny-llama:1" and lineage["base_model_version"] == 1
    assert 0 < lineage["trainable_parameters"] < lineage["parameters"]
    assert lineage["hyperparameters"]["lora_r"] == 4

    resolved = resolve_model(ctx, "tiny-summ:1")
    assert resolved.base_path == Path(resolve_model(ctx, "tiny-llama:1").path)
    model = load_resolved(get_task("summarization"), resolved)
    assert torch.allclose(logits_of(model, tok), captured["logits"], atol=1e-5)
    paths = serving_paths(ctx, resolved, loads_from_store=True)  # what a deployment's instances are given
    assert paths == {"model_path": version.path, "base_model_path": llama.path}
    assert serving_paths(ctx, resolve_model(ctx, "tiny-llama:1"), False)["base_model_path"] is None

    # validation loss and perplexity; zero-shot metrics of the base with the same groups
    val = result.metrics["validation"]
    assert math.isclose(val["perplexity"], math.exp(val["loss"]), rel_tol=1e-9)
    assert set(result.metrics["test_zero_shot"]["groups"]) == set(result.metrics["test"]["groups"]) == {"films", "plots"}
    assert (Path(result.job.folder) / "predictions-test_zero_shot.jsonl").is_file()

    # trained further: a new adapter on the same base, continued from the registered one
    again = run_finetune(ctx, spec_for(tmp_path, model="tiny-summ:1", zero_shot=False))
    assert again.model_version.ref == "tiny-summ:2" and "test_zero_shot" not in again.metrics
    assert json.loads((Path(again.model_version.path) / ADAPTER_FILE).read_text())["base_model"] == "tiny-llama:1"
    assert again.model_version.lineage["base_model"] == "tiny-summ:1"


def test_merge_registers_a_full_model_with_the_same_logits(ctx, llama, tmp_path, captured, monkeypatch):
    monkeypatch.setenv("FMHUB_CPU_BF16", "0")  # exact logits: evaluation in fp32 (bf16 has its own tests)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = run_finetune(ctx, spec_for(tmp_path, merge_adapter=True, zero_shot=False,
                                        hp={"gradient_checkpointing": True}))
    assert result.model_version.lineage["hyperparameters"]["gradient_checkpointing"] is True
    folder = Path(result.model_version.path)
    assert (folder / "config.json").is_file() and not (folder / "adapter_config.json").exists()
    assert result.model_version.lineage["adapter"] is False and result.model_version.lineage["merged"] is True
    assert resolve_model(ctx, result.model_version.ref).base_path is None
    model = AutoModelForCausalLM.from_pretrained(str(folder))
    assert torch.allclose(logits_of(model, AutoTokenizer.from_pretrained(str(folder))), captured["logits"], atol=1e-5)


def test_group_metrics_equal_the_task_metrics_on_each_subset(ctx, llama, tmp_path):
    result = run_finetune(ctx, spec_for(tmp_path, zero_shot=False))
    task = get_task("summarization")
    rows = [json.loads(x) for x in (Path(result.job.folder) / "predictions-test.jsonl").read_text().splitlines()]
    groups = result.metrics["test"]["groups"]
    for value in ("films", "plots"):
        mine = [r for r in rows if r["group"] == value]
        expected = task.compute_metrics([r["prediction"]["generated_text"] for r in mine],
                                        [r["reference"] for r in mine], None)
        assert groups[value] == expected and groups[value]["n"] == len(mine)


def test_qlora_on_the_cpu_is_refused_before_the_data_is_read(ctx, llama, tmp_path):
    spec = spec_for(tmp_path, hp={"quantization_bit": 4}, data={"train": str(tmp_path / "missing.jsonl")})
    with pytest.raises(SpecError, match="QLoRA .*needs a CUDA GPU"):
        run_finetune(ctx, spec)


def test_lora_on_an_encoder_and_full_training_of_an_adapter_are_refused(ctx, llama, tiny_bert, tmp_path):
    import_model(ctx, tiny_bert, name="tiny-bert", task="summarization", license="apache-2.0")
    with pytest.raises(SpecError, match="causal LM"):
        run_finetune(ctx, spec_for(tmp_path, model="tiny-bert:1"))


def test_a_group_by_column_missing_from_the_file_names_the_columns(ctx, llama, tmp_path):
    with pytest.raises(DataError, match="--group-by column 'topik'.*did you mean 'topic'"):
        run_finetune(ctx, spec_for(tmp_path, data={"group_by": "topik"}), dry_run=True)


def test_zero_shot_of_a_full_fine_tune_equals_evaluating_the_base(ctx, llama, tmp_path, monkeypatch):
    from fmhub.services.evaluate import run_evaluate
    from fmhub.services.specs import EvaluateSpec

    monkeypatch.setattr(type(get_task("summarization")), "zero_shot_baseline", True)
    result = run_finetune(ctx, spec_for(tmp_path, hp={"finetuning_type": "full", "lora_r": None, "lora_alpha": None,
                                                      "lora_dropout": None}))
    assert result.model_version.lineage["finetuning_type"] == "full"
    assert result.model_version.lineage["adapter"] is False
    base = run_evaluate(ctx, EvaluateSpec(model="tiny-llama:1", data={"test": str(tmp_path / "test.jsonl"),
                                                                      "group_by": "topic"},
                                          generation={"max_new_tokens": 3}, max_seq_length=64, device="cpu"))
    assert result.metrics["test_zero_shot"] == base["test"]


def test_gradient_checkpointing_reaches_the_trainer(tmp_path):
    from fmhub.devices import choose_device
    from fmhub.training.hyperparameters import Hyperparameters
    from fmhub.training.trainer import build_training_arguments

    hp = Hyperparameters(gradient_checkpointing=True).resolve({})
    args = build_training_arguments(hp, tmp_path, choose_device("cpu"), False, 10, True)
    def on(a):  # transformers 5.25 renamed the argument
        return getattr(a, "activation_checkpointing", None) or getattr(a, "gradient_checkpointing", False)

    assert on(args) is True
    assert not on(build_training_arguments(Hyperparameters().resolve({}), tmp_path, choose_device("cpu"), False, 10, True))
