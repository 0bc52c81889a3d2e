"""Catalog models derived from another offline model by a fixed recipe, built once and cached.

``bert2bert``: a warm-started encoder-decoder (Rothe et al., 2020, "Leveraging Pre-trained
Checkpoints for Sequence Generation Tasks"): encoder and decoder both start from the base BERT
checkpoint; the decoder's cross-attention layers are new, initialised from a fixed seed, so every
build gives the same weights. Decoder start / pad / end tokens are the tokenizer's [CLS] / [PAD] /
[SEP].
"""

from __future__ import annotations

from pathlib import Path

from fmhub.catalog.cache import save_model_folder
from fmhub.config import get_settings
from fmhub.entities import ModelCard

RECIPES = ("bert2bert",)
SEED = 0


def derived_path(card: ModelCard) -> Path:
    """Where the built model lives: ``FMHUB_HOME/artifacts/cache/derived/<name>``."""
    return get_settings().artifacts_dir / "cache" / "derived" / card.name


def build_bert2bert(base: Path, dest: Path) -> Path:
    """Build the warm-started encoder-decoder from BERT folder ``base`` into ``dest`` (atomically).

    Returns:
        ``dest``, holding config.json, model.safetensors and the tokenizer.
    """
    import torch
    from transformers import AutoTokenizer, EncoderDecoderModel

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    torch.manual_seed(SEED)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(str(base), str(base))
    model.config.decoder_start_token_id = tokenizer.cls_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.sep_token_id
    model.config.vocab_size = model.config.decoder.vocab_size
    model.generation_config.decoder_start_token_id = tokenizer.cls_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.sep_token_id
    return save_model_folder(model, tokenizer, dest)
