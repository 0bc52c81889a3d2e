"""A LoRA adapter version in an S3 bucket: registered from a small folder, resolved on another
machine (its base downloaded too) and loaded on its base with the adapter's logits."""

from __future__ import annotations

import pytest

from test_s3_store import _context, s3_url  # noqa: F401 - the bucket fixture


def test_an_adapter_version_resolves_and_loads_on_its_base_from_a_bucket(s3_url, tiny_bert, tmp_path,  # noqa: F811
                                                                           monkeypatch):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from fmhub.services.model_loading import load_resolved
    from fmhub.services.models import import_model, register_folder, resolve_model
    from fmhub.tasks import get_task
    from fmhub.tasks.adapters import write_adapter_file
    from fmhub.training.hyperparameters import Hyperparameters
    from fmhub.training.lora import save_lora, wrap_with_lora

    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    base_dir = tmp_path / "base"
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
                     ).save_pretrained(str(base_dir))
    tok.save_pretrained(str(base_dir))
    first = _context(tmp_path / "machine-a", monkeypatch, s3_url)
    import_model(first, base_dir, name="tiny-llama", task="summarization", license="apache-2.0")

    hp = Hyperparameters(finetuning_type="lora").resolve({})
    peft = wrap_with_lora(LlamaForCausalLM.from_pretrained(str(base_dir)), hp)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # a trained-looking adapter: it changes the logits
    adapter_dir = tmp_path / "adapter"
    save_lora(peft, adapter_dir, merge=False)
    write_adapter_file(adapter_dir, "tiny-llama:1")
    tok.save_pretrained(str(adapter_dir))
    register_folder(first, adapter_dir, "tiny-summ", "summarization", license="apache-2.0")
    ids = torch.tensor([[2, 9, 10, 11, 3]])
    peft.eval()
    with torch.no_grad():
        expected = peft(input_ids=ids).logits

    database = tmp_path / "machine-a" / "fmhub.db"
    second = _context(tmp_path / "machine-b", monkeypatch, s3_url, database=database)
    resolved = resolve_model(second, "tiny-summ:1")
    assert resolved.base_path is not None and (resolved.base_path / "config.json").is_file()
    assert str(tmp_path / "machine-b") in str(resolved.path)  # downloaded into this machine's cache
    model = load_resolved(get_task("summarization"), resolved)
    with torch.no_grad():
        got = model(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, LlamaForCausalLM.from_pretrained(str(base_dir))(input_ids=ids).logits, atol=1e-3)


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
