"""A tiny chat model for tests: a byte-level BPE tokenizer trained here on a few sentences (with
ChatML special tokens and SmolLM2's chat template) and a random 2-layer Llama built from a config.
Nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

#: SmolLM2-Instruct's chat template: ChatML with a default system message when none is given.
SMOL_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

CORPUS = [
    "You are a helpful assistant.", "Translate to German: A dog runs on the beach.", "Ein Hund rennt am Strand.",
    "Summarize the dialogue.", "Read the passage and answer the question.", "What is the capital of France?",
    "Paris is the capital of France.", "Hello! How are you today?", "I am fine, thank you.",
    "The cat sat on the mat and the dog slept.", "Thanks a lot, see you tomorrow at six.",
    "system user assistant", "0123456789 .,;:!?'\"()[]{}-_/\\#@",
]


#: Llama 3's way of writing turns (headers, ``<|eot_id|>`` after each message, contents trimmed).
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

#: Mistral's: ``[INST] user [/INST] reply</s>``, a system message folded into the first user turn.
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{% set ns = none %}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% else %}{{ ' ' + message['content'] + eos_token }}{% endif %}{% endfor %}")

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


def build_chat_tokenizer(folder: Path | None = None, *, template: str | None = SMOL_TEMPLATE,
                         eos: str = "<|im_end|>", with_im_tokens: bool = True, extra_specials: tuple[str, ...] = (),
                         bos: str | None = None):
    """A fast byte-level BPE tokenizer (vocabulary ~300) with ``<|endoftext|>``, ``<|im_start|>`` and
    ``<|im_end|>`` as special tokens (only ``<|endoftext|>`` when ``with_im_tokens`` is false).

    Args:
        folder: Where to save it (None: not saved).
        template: Its chat template (None: none, as a base model).
        eos: The end-of-sequence token.
        extra_specials: More special tokens (e.g. :data:`LLAMA3_SPECIALS`).
        bos: The beginning-of-sequence token (default ``<|im_start|>``, or none without it).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] if with_im_tokens else ["<|endoftext|>"]
    specials += [t for t in extra_specials if t not in specials]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 3, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, unk_token="<|endoftext|>",
                                   pad_token=eos, bos_token=bos or (specials[1] if with_im_tokens else None))
    if template is not None:
        fast.chat_template = template
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        fast.save_pretrained(str(folder))
    return fast


def build_tiny_chat_llama(folder: Path, **tokenizer_options) -> Path:
    """Save a tiny random Llama (2 layers, hidden 32) with :func:`build_chat_tokenizer`'s tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_chat_tokenizer(folder, **tokenizer_options)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                         tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    return folder


def chat_rows(n: int, offset: int = 0) -> list[dict]:
    """``n`` conversations over the corpus words: single-turn, with a system message, and multi-turn."""
    rows = []
    for i in range(offset, offset + n):
        kind = i % 3
        if kind == 0:
            messages = [{"role": "user", "content": "Translate to German: A dog runs on the beach."},
                        {"role": "assistant", "content": "Ein Hund rennt am Strand."}]
        elif kind == 1:
            messages = [{"role": "system", "content": "You are a helpful assistant."},
                        {"role": "user", "content": "What is the capital of France?"},
                        {"role": "assistant", "content": "Paris is the capital of France."}]
        else:
            messages = [{"role": "user", "content": "Hello! How are you today?"},
                        {"role": "assistant", "content": "I am fine, thank you."},
                        {"role": "user", "content": "Summarize the dialogue."},
                        {"role": "assistant", "content": "Thanks a lot, see you tomorrow at six."}]
        rows.append({"id": str(i), "source": ["translation", "qa", "chat"][kind], "messages": messages})
    return rows


def chat_files(folder: Path) -> dict:
    """The shared chat data's layout: JSONL ``messages`` with a ``source`` column (test: ``references``)."""
    def write(name: str, rows: list[dict]) -> str:
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return str(path)

    test = chat_rows(6, 20)
    for row in test:
        row["references"] = [row["messages"][-1]["content"]]
    return {"train": write("train", chat_rows(12)), "validation": write("validation", chat_rows(6, 12)),
            "test": write("test", test)}


# -- a byte-level chat model for serving tests ----------------------------------------------------

BYTE_CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
BYTE_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def build_byte_chat_llama(folder: Path, context: int = 256, seed: int = 0) -> Path:
    """Save a tiny chat model for serving tests to ``folder``: every byte one token (so any stop string
    is a token boundary), a plain ChatML template whose end of turn ``<|im_end|>`` is the eos, and large
    random weights so that replies depend on the prompt (``context``: ``max_position_embeddings``)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {token: i for i, token in enumerate(BYTE_SPECIAL + sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": BYTE_SPECIAL})
    tokenizer.chat_template = BYTE_CHATML
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context,
                         bos_token_id=vocab["<|im_start|>"], eos_token_id=vocab["<|im_end|>"],
                         pad_token_id=vocab["<|endoftext|>"], tie_word_embeddings=False,
                         initializer_range=0.5)  # large weights: replies that depend on the prompt
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=[vocab["<|im_end|>"]], pad_token_id=vocab["<|endoftext|>"],
                                               bos_token_id=vocab["<|im_start|>"])
    model.save_pretrained(folder)
    return folder
