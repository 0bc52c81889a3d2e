"""Translation: ``source`` -> ``target`` with a sequence-to-sequence model.

Metrics: corpus BLEU (sacreBLEU, with its signature; the tokenizer fits the target language:
``zh`` for Chinese, ``ja-mecab`` for Japanese when installed, ``13a`` otherwise), the same BLEU
lower-cased, and chrF. Rows without a target are predicted but left out of the metrics.
"""

from __future__ import annotations

import re
from typing import Any

from fmhub.data.schema import TaskSchema
from fmhub.tasks.base import Examples, LabelInfo
from fmhub.tasks.generation import Seq2SeqTask, pairs_with_reference, reference_streams


LANG_CODE = re.compile(r"[a-z]{2,3}([-_][A-Za-z]{2,4})?")

#: English names of common language codes, for a causal LM's instruction ("Translate from English
#: to German."); an unknown code is used as is.
LANGUAGE_NAMES = {
    "ar": "Arabic", "cs": "Czech", "de": "German", "en": "English", "es": "Spanish", "fi": "Finnish",
    "fr": "French", "hi": "Hindi", "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sv": "Swedish", "tr": "Turkish",
    "uk": "Ukrainian", "zh": "Chinese",
}


def language_name(code: str | None) -> str | None:
    """``de`` -> ``German`` (``pt-BR`` -> ``Portuguese``); None for no code."""
    if not code:
        return None
    return LANGUAGE_NAMES.get(code.lower().replace("_", "-").split("-")[0], code)


def bleu_tokenizer(target_lang: str | None) -> str:
    """sacreBLEU tokenizer for a target language code (``zh``, ``ja-mecab`` if available, ``13a``)."""
    lang = (target_lang or "").lower().split("-")[0].split("_")[0]
    if lang == "zh":
        return "zh"
    if lang == "ja":
        try:
            import MeCab  # noqa: F401  (sacrebleu's ja-mecab needs it)

            return "ja-mecab"
        except ImportError:
            return "13a"
    return "13a"


class Translation(Seq2SeqTask):
    """Machine translation."""

    name = "translation"
    score_example = ["A man is riding a bicycle down the street."]
    source_key, target_key = "source", "target"
    verb = "translate"
    schema = TaskSchema(
        required=("source", "target"),
        optional=("source_lang", "target_lang"),
        aliases={"source": ("source", "src", "source_text"), "target": ("target", "tgt", "target_text", "reference"),
                 "source_lang": ("source_lang", "src_lang"), "target_lang": ("target_lang", "tgt_lang")},
    )
    headline_metric = "bleu"
    sample_train_file = ("train.jsonl", 'one {"source": ..., "target": ...} object per line')
    # transformers run_translation.py defaults (lr 5e-5, 3 epochs); 128 tokens fit Multi30k.
    # Batch 16: on Multi30k (4,000 pairs, 3 epochs, minilm-l6-bert2bert) batch 32 reached BLEU 0.56 /
    # chrF 21.8 and batch 16 BLEU 1.01 / chrF 25.9 (twice the optimizer steps). That small model
    # wants more: 6 epochs at lr 3e-4 reach chrF 35.8 (examples/translation/job.yaml, README).
    default_hyperparameters = {
        "learning_rate": 5e-5,
        "num_train_epochs": 3.0,
        "per_device_train_batch_size": 16,
        "max_seq_length": 128,
        "warmup_steps": 0.06,
        "weight_decay": 0.01,
    }

    def default_mapping(self, columns: list[str], user_map: dict[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
        """Two columns named after language codes (``en``, ``de``, ``pt-BR``): the first is the source."""
        if "source" in user_map or "target" in user_map:
            return {}, {}
        codes = [c for c in columns if LANG_CODE.fullmatch(c.strip())]
        if len(codes) != 2:
            return {}, {}
        src, tgt = codes
        return {"source": src, "target": tgt}, {"source_lang": src.strip(), "target_lang": tgt.strip()}

    answer_tag = "Translation:"

    def label_info(self, train: Examples) -> LabelInfo:
        """``source_lang`` / ``target_lang`` when the training rows have exactly one of each."""
        extra = {}
        for key in ("source_lang", "target_lang"):
            langs = {row.get(key) for row in train.rows if row.get(key)}
            if len(langs) == 1:
                extra[key] = langs.pop()
        return LabelInfo(extra=extra)

    def instruction(self, options: dict[str, Any]) -> str:
        """``Translate from English to German.`` (from ``source_lang`` / ``target_lang``)."""
        if options.get("instruction"):
            return options["instruction"]
        src, tgt = language_name(options.get("source_lang")), language_name(options.get("target_lang"))
        if src and tgt:
            return f"Translate from {src} to {tgt}."
        return f"Translate to {tgt}." if tgt else "Translate the following text."

    def compute_metrics(self, predictions: list[str], references: list[str | list[str]],
                        info: LabelInfo | None) -> dict[str, Any]:
        """Corpus BLEU (cased and lower-cased) and chrF, with sacreBLEU signatures.

        A row may have several references (a list); rows with fewer references than others are
        padded with None, which sacreBLEU skips (``nrefs:var`` in the signature).
        """
        from sacrebleu.metrics import BLEU, CHRF

        preds, refs = pairs_with_reference(predictions, references)
        streams = reference_streams(refs)
        tokenize = bleu_tokenizer((info.extra if info else {}).get("target_lang"))
        bleu, bleu_lc, chrf = BLEU(tokenize=tokenize), BLEU(tokenize=tokenize, lowercase=True), CHRF()
        b, blc, c = (m.corpus_score(preds, streams) for m in (bleu, bleu_lc, chrf))
        return {"bleu": float(b.score), "bleu_lowercase": float(blc.score), "chrf": float(c.score),
                "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature()),
                "n": len(refs)}
