"""build_trainer trains causal LMs with the labelled-positions loss (same value as the stock one) and
picks CPU bf16 autocast by the precision rule."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from fmhub.devices import DeviceChoice
from fmhub.training import precision
from fmhub.training.hyperparameters import Hyperparameters
from fmhub.training.trainer import build_trainer

CPU = DeviceChoice("cpu", False, "cpu")


class _Sink:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64))


def _dataset():
    from datasets import Dataset

    gen = torch.Generator().manual_seed(2)
    rows = []
    for n in (9, 12, 7, 11):
        ids = torch.randint(3, 97, (n,), generator=gen).tolist()
        rows.append({"input_ids": ids, "attention_mask": [1] * n, "labels": [-100] * 4 + ids[4:], "length": n})
    return Dataset.from_list(rows)


def _collate(features):
    width = max(len(f["input_ids"]) for f in features)

    def pad(key, value):
        return torch.tensor([f[key] + [value] * (width - len(f[key])) for f in features])

    return {"input_ids": pad("input_ids", 0), "attention_mask": pad("attention_mask", 0), "labels": pad("labels", -100)}


def _build(tmp_path, model, precision="auto", **kwargs):
    task = SimpleNamespace(greater_is_better=False, trainer_metrics=lambda info: None,
                           data_collator=lambda tok: _collate)
    hp = Hyperparameters(per_device_train_batch_size=2, max_steps=1, learning_rate=1e-3,
                         precision=precision).resolve({})
    return build_trainer(task, model, None, _dataset(), None, None, hp, tmp_path, CPU, _Sink(), **kwargs).trainer


def test_causal_lm_trains_with_the_labelled_loss_of_the_same_value(tmp_path):
    model = _tiny_llama()
    ours = _build(tmp_path / "a", model, precision="fp32")  # exact values: fp32 on both sides
    stock = _build(tmp_path / "b", model, precision="fp32", causal_lm_loss=False)
    assert ours._labelled_loss and not stock._labelled_loss
    batch = _collate([_dataset()[i] for i in range(4)])
    n = torch.tensor(int((batch["labels"][:, 1:] != -100).sum()))
    for items in (None, n):
        a = ours.compute_loss(model, dict(batch), num_items_in_batch=items)
        b = stock.compute_loss(model, dict(batch), num_items_in_batch=items)
        assert a.item() == pytest.approx(b.item(), rel=1e-5)
    loss, outputs = ours.compute_loss(model, dict(batch), return_outputs=True)
    assert outputs["loss"] is loss
    ours.train()  # a real step goes through the override
    assert ours.state.global_step == 1 and ours.state.log_history


def test_precision_rule_reaches_the_trainer(tmp_path, monkeypatch):
    """auto: bf16 autocast on a CPU with native bf16 for every model (LoRA or full); fp32 without;
    an explicit --precision wins over both."""
    from peft import LoraConfig, get_peft_model

    monkeypatch.delenv(precision.ENV_VAR, raising=False)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    lora = get_peft_model(_tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                    task_type="CAUSAL_LM"))
    assert _build(tmp_path / "a", lora).args.bf16
    assert _build(tmp_path / "b", _tiny_llama()).args.bf16  # a full fine-tune too
    assert not _build(tmp_path / "b32", _tiny_llama(), precision="fp32").args.bf16
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert not _build(tmp_path / "c", lora).args.bf16
    assert _build(tmp_path / "d", _tiny_llama(), precision="bf16").args.bf16


def test_labelled_loss_runs_the_decoder_under_the_trainers_bf16_autocast(tmp_path, monkeypatch):
    """The labelled loss calls the decoder directly, past the forward accelerate wraps in autocast:
    bf16 must still reach the decoder's matrix products (and fp32 must stay fp32)."""
    from peft import LoraConfig, get_peft_model

    batch = _collate([_dataset()[i] for i in range(4)])
    for forced, expected in (("1", torch.bfloat16), ("0", torch.float32)):
        monkeypatch.setenv(precision.ENV_VAR, forced)
        lora = get_peft_model(_tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                        task_type="CAUSAL_LM"))
        trainer = _build(tmp_path / forced, lora)
        assert trainer._labelled_loss
        seen = []
        proj = lora.get_base_model().model.layers[0].self_attn.q_proj.base_layer
        proj.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
        loss = trainer.compute_loss(trainer.model, dict(batch))
        assert seen == [expected]
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
