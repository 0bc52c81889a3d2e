"""The labelled-positions causal-LM loss equals the stock loss (plain and PEFT models, padded batches)."""

from __future__ import annotations

import pytest
import torch

from fmhub.training.causal_loss import IGNORE_INDEX, causal_lm_parts, labelled_loss, supports_labelled_loss


def _tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config).eval()


def _padded_batch():
    """Two rows, right-padded: prompt tokens masked, the second row shorter."""
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 97, (2, 12), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    ids[1, 9:] = 0
    labels = ids.clone()
    labels[0, :5] = IGNORE_INDEX  # prompt of row 0
    labels[1, :3] = IGNORE_INDEX  # prompt of row 1
    labels[1, 9:] = IGNORE_INDEX  # padding
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_same_loss_and_gradients_as_stock_loss_on_a_padded_batch():
    model = _tiny_llama()
    batch = _padded_batch()
    stock = model(**batch).loss
    stock.backward()
    stock_grads = _grads(model)
    model.zero_grad()
    ours = labelled_loss(model, batch)
    ours.backward()
    assert ours.item() == pytest.approx(stock.item(), rel=1e-5)
    ours_grads = _grads(model)
    assert stock_grads.keys() == ours_grads.keys()
    for name, grad in stock_grads.items():
        torch.testing.assert_close(ours_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_num_items_in_batch_divides_the_summed_loss_as_the_stock_loss_does():
    model = _tiny_llama()
    batch = _padded_batch()
    n = torch.tensor(40)
    stock = model(**batch, num_items_in_batch=n).loss
    assert labelled_loss(model, batch, num_items_in_batch=n).item() == pytest.approx(stock.item(), rel=1e-5)


def test_peft_wrapped_model_trains_its_adapters_with_the_same_loss():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                     task_type="CAUSAL_LM", lora_dropout=0.0))
    for name, p in model.named_parameters():  # non-zero B so adapters change the output
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    batch = _padded_batch()
    stock = model(**batch).loss
    stock.backward()
    stock_grads = _grads(model)
    model.zero_grad()
    ours = labelled_loss(model, batch)
    ours.backward()
    assert ours.item() == pytest.approx(stock.item(), rel=1e-5)
    ours_grads = _grads(model)
    assert ours_grads and all("lora_" in n for n in ours_grads)
    for name, grad in stock_grads.items():
        torch.testing.assert_close(ours_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_models_without_a_decoder_and_linear_head_are_left_to_the_stock_loss():
    from transformers import BertConfig, BertForSequenceClassification

    bert = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=32))
    assert causal_lm_parts(bert) is None and not supports_labelled_loss(bert)
    assert supports_labelled_loss(_tiny_llama())
    with pytest.raises(ValueError, match="decoder"):
        labelled_loss(bert, _padded_batch())


def test_bf16_autocast_loss_curve_stays_close_to_fp32():
    """A few LoRA steps of the labelled loss under CPU bf16 autocast track the fp32 run."""
    from peft import LoraConfig, get_peft_model

    curves = []
    for bf16 in (False, True):
        model = get_peft_model(_tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                         task_type="CAUSAL_LM", lora_dropout=0.0))
        model.train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        batch = _padded_batch()
        losses = []
        for _ in range(5):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = labelled_loss(model, batch)
            assert loss.dtype == torch.float32
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(loss.item())
        curves.append(losses)
    fp32, bf16 = curves
    assert fp32[-1] < fp32[0]  # it learns, so the comparison means something
    for a, b in zip(fp32, bf16):
        assert b == pytest.approx(a, rel=0.02)


def test_cpu_bf16_rule(monkeypatch, tmp_path):
    from fmhub.training import precision

    flags = tmp_path / "cpuinfo"
    flags.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert precision.cpu_has_native_bf16.__wrapped__(str(flags))
    flags.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n")  # measured 1.45-1.7x
    assert precision.cpu_has_native_bf16.__wrapped__(str(flags))
    flags.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n")
    assert not precision.cpu_has_native_bf16.__wrapped__(str(flags))

    from fmhub.devices import DeviceChoice
    from fmhub.errors import SpecError

    cpu = DeviceChoice("cpu", False, "cpu")
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    monkeypatch.delenv(precision.ENV_VAR, raising=False)
    assert precision.training_precision("auto", cpu)[0]
    assert precision.training_precision(None, cpu)[0]
    assert not precision.training_precision("fp32", cpu)[0]
    monkeypatch.setenv(precision.ENV_VAR, "0")
    bf16, why = precision.training_precision("auto", cpu)
    assert not bf16 and precision.ENV_VAR in why
    assert precision.training_precision("bf16", cpu)[0]  # an explicit choice wins over the variable
    monkeypatch.delenv(precision.ENV_VAR)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    bf16, why = precision.training_precision("auto", cpu)
    assert not bf16 and "no native bf16" in why
    bf16, why = precision.training_precision("bf16", cpu)
    assert bf16 and "emulated" in why
    gpu32 = DeviceChoice("cuda:0", False, "cuda:0 (old GPU, fp32)")
    assert not precision.training_precision("auto", gpu32)[0]
    with pytest.raises(SpecError, match="no bf16 support"):
        precision.training_precision("bf16", gpu32)
    assert precision.training_precision("auto", DeviceChoice("cuda:0", True, "cuda:0 (GPU, bf16)"))[0]


def test_cpu_bf16_inference_rule_and_copy(monkeypatch):
    """Evaluation generates with a bf16 copy for a causal LM on a native-bf16 CPU; the model itself
    stays fp32; FMHUB_CPU_BF16=0 keeps fp32, and other models are never copied."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, LlamaConfig, LlamaForCausalLM

    from fmhub.training import precision

    llama = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1))
    bert = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=32))
    monkeypatch.delenv(precision.ENV_VAR, raising=False)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.use_cpu_bf16_inference(llama) and not precision.use_cpu_bf16_inference(bert)
    monkeypatch.setenv(precision.ENV_VAR, "0")
    assert not precision.use_cpu_bf16_inference(llama)
    monkeypatch.delenv(precision.ENV_VAR)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert not precision.use_cpu_bf16_inference(llama)
    with precision.inference_copy(llama, True) as copy:
        assert copy is not llama and copy.lm_head.weight.dtype == torch.bfloat16
        assert not torch.is_grad_enabled()
    assert llama.lm_head.weight.dtype == torch.float32
    with precision.inference_copy(llama, False) as same:
        assert same is llama
