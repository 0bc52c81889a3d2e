"""Summarization and translation: empty targets, language-code columns, ROUGE/BLEU against the
reference packages, a reproducible bert2bert build, generation and a fine-tune on 16 rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmhub.tasks import get_task
from fmhub.tasks.base import Examples
from fmhub.tasks.summarization import sentences_per_line
from fmhub.tasks.translation import bleu_tokenizer


def ex(rows, split="train", file="d.jsonl"):
    return Examples(split, file, rows, list(range(1, len(rows) + 1)))


@pytest.fixture(scope="module")
def tiny_b2b(tiny_bert, tmp_path_factory):
    from fmhub.catalog.derived import build_bert2bert

    return build_bert2bert(tiny_bert, tmp_path_factory.mktemp("b2b") / "model")


def test_empty_source_is_an_error_empty_target_is_kept_out_of_training(tiny_bert):
    from transformers import AutoTokenizer

    task = get_task("summarization")
    rows = [{"document": "good movie", "summary": "good"}, {"document": " ", "summary": "x"},
            {"document": "bad plot", "summary": ""}]
    good, problems = task.check_rows(ex(rows))
    assert good == [0, 2]
    assert [(p.line, p.severity) for p in problems] == [(2, "error"), (3, "warning")]
    kept = ex(rows).subset(good, "train")
    assert task.distribution(kept) == {"with summary": 1, "without summary": 1}
    ds = task.encode(kept, AutoTokenizer.from_pretrained(str(tiny_bert)), task.label_info(kept), 16)
    assert len(ds) == 1 and ds["labels"][0][1:-1] == ds["input_ids"][0][1:2]  # "good"


def test_language_code_columns_map_to_source_and_target():
    task = get_task("translation")
    assert task.default_mapping(["en", "de"], {}) == ({"source": "en", "target": "de"},
                                                    {"source_lang": "en", "target_lang": "de"})
    assert task.default_mapping(["en", "de"], {"source": "de"}) == ({}, {})
    assert task.default_mapping(["text", "label"], {}) == ({}, {})
    assert bleu_tokenizer("zh") == "zh" and bleu_tokenizer("de") == "13a"


def test_rouge_equals_rouge_score_on_multi_sentence_text():
    from rouge_score import rouge_scorer

    task = get_task("summarization")
    preds = ["The cat sat. It was happy!", "Dogs run fast."]
    refs = ["A cat was sitting. The cat was happy.", "The dogs ran quickly. They were fast."]
    m = task.compute_metrics(preds + ["anything"], refs + [""], None)  # empty reference: left out
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    expected = [scorer.score("\n".join(r.replace(". ", ".\n").replace("! ", "!\n").split("\n")),
                             "\n".join(p.replace(". ", ".\n").replace("! ", "!\n").split("\n"))) for p, r in zip(preds, refs)]
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert m[key] == pytest.approx(100 * sum(e[key].fmeasure for e in expected) / 2)
    assert m["n"] == 2
    assert sentences_per_line("One. Two! Three?") == "One.\nTwo!\nThree?"


def test_bleu_and_chrf_equal_sacrebleu():
    import sacrebleu

    task = get_task("translation")
    preds = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee."]
    refs = ["Ein Mann fährt ein Fahrrad.", "zwei hunde spielen im schnee."]
    m = task.compute_metrics(preds, refs, task.label_info(ex([])))
    assert m["bleu"] == pytest.approx(sacrebleu.corpus_bleu(preds, [refs], tokenize="13a").score)
    assert m["bleu_lowercase"] == pytest.approx(sacrebleu.corpus_bleu(preds, [refs], lowercase=True).score)
    assert m["bleu_lowercase"] > m["bleu"]
    assert m["chrf"] == pytest.approx(sacrebleu.corpus_chrf(preds, [refs]).score)
    assert m["bleu_signature"].startswith("nrefs:1") and "tok:13a" in m["bleu_signature"]


def test_bert2bert_build_is_reproducible(tiny_bert, tiny_b2b, tmp_path):
    from safetensors.torch import load_file

    from fmhub.catalog.derived import build_bert2bert

    again = build_bert2bert(tiny_bert, tmp_path / "again")
    a, b = load_file(str(tiny_b2b / "model.safetensors")), load_file(str(again / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    config = json.loads((tiny_b2b / "config.json").read_text())
    assert config["decoder_start_token_id"] == 2 and config["pad_token_id"] == 0  # [CLS], [PAD]


def test_generation_returns_text_per_input(tiny_b2b):
    from transformers import AutoTokenizer

    task = get_task("translation")
    model = task.load_model(str(tiny_b2b), None)
    out = task.predict(model, AutoTokenizer.from_pretrained(str(tiny_b2b)), ["good movie", "the plot was fun"],
                       batch_size=1, max_new_tokens=4)
    assert [set(r) for r in out] == [{"generated_text", "truncated"}] * 2
    assert all(isinstance(r["generated_text"], str) for r in out)


def test_finetune_summarization_on_16_rows(ctx, tiny_b2b, tmp_path):
    from fmhub.services.finetune import run_finetune
    from fmhub.services.models import import_model
    from fmhub.services.predict import predict
    from fmhub.services.specs import FinetuneSpec

    import_model(ctx, tiny_b2b, name="tiny-b2b", task="summarization")
    data = tmp_path / "dialogues.jsonl"
    rows = [{"dialogue": f"the movie was {w} and the plot was {w}", "summary": f"{w} movie"}
            for w in ["good", "bad", "fun", "dull"] * 4]
    rows[3]["summary"] = ""
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = FinetuneSpec(model="tiny-b2b:1", task="summarization", device="cpu",
                        data={"train": str(data), "validation": "auto", "test": "auto", "validation_size": 0.25,
                              "test_size": 0.25},
                        hyperparameters={"max_steps": 2, "per_device_train_batch_size": 4})
    result = run_finetune(ctx, spec)
    assert result.model_version.ref == "tiny-b2b-summarization:1"
    assert set(result.metrics["test"]) >= {"rouge1", "rouge2", "rougeL", "rougeLsum"}
    assert any("left out of training" in p.message for p in result.report.warnings)
    out = predict(ctx, "tiny-b2b-summarization", ["the movie was good"])
    assert isinstance(out["predictions"][0]["generated_text"], str)
