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


def test_empty_source_is_left_out_empty_target_is_kept_out_of_training(tiny_bert):
    from transformers import AutoTokenizer

    task = get_task("summarization")
    rows = [{"document": "good movie", "summary": "good"}, {"document": " ", "summary": "x"},
            {"document": "bad plot", "summary": ""}]
    good, problems = task.check_rows(ex(rows))
    assert good == [0, 2]
    assert [(p.line, p.severity) for p in problems] == [(2, "warning"), (3, "warning")]
    assert problems[0].message == "empty document: row left out (nothing to summarize)"
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


# --- several references per row -------------------------------------------------------------

def test_multi_reference_bleu_equals_sacrebleu_and_rows_may_have_fewer_references():
    import sacrebleu

    task = get_task("translation")
    preds = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen.", "Eine Frau liest."]
    refs = [["Ein Mann fährt ein Fahrrad.", "Ein Mann fährt Fahrrad."], ["Zwei Hunde spielen im Schnee."],
            ["Eine Frau liest ein Buch.", "Eine Dame liest."]]
    m = task.compute_metrics(preds, refs, task.label_info(ex([])))
    streams = [[r[0] for r in refs], [r[1] if len(r) > 1 else None for r in refs]]
    assert m["bleu"] == pytest.approx(sacrebleu.corpus_bleu(preds, streams).score)
    assert m["chrf"] == pytest.approx(sacrebleu.corpus_chrf(preds, streams).score)
    assert m["bleu_signature"].startswith("nrefs:var")
    single = task.compute_metrics(preds, [r[0] for r in refs], task.label_info(ex([])))
    assert m["bleu"] > single["bleu"]  # the second reference of row 1 matches exactly


def test_multi_reference_rouge_takes_the_best_reference_per_row():
    from rouge_score import rouge_scorer

    task = get_task("summarization")
    m = task.compute_metrics(["the cat sat on the mat"], [["a dog ran", "the cat sat on a mat"]], None)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    best = scorer.score_multi(["a dog ran", "the cat sat on a mat"], "the cat sat on the mat")
    assert m["rouge1"] == pytest.approx(100 * best["rouge1"].fmeasure)
    assert m["rouge1"] == pytest.approx(100 * scorer.score("the cat sat on a mat", "the cat sat on the mat")["rouge1"].fmeasure)


def test_list_targets_train_on_every_reference_and_bad_lists_name_the_line(tiny_bert):
    from transformers import AutoTokenizer

    task = get_task("translation")
    rows = [{"source": "good movie", "target": ["good film", "great movie", " "]},
            {"source": "bad plot", "target": ["bad"]}, {"source": "fun", "target": []},
            {"source": "dull", "target": [1, "x"]}]
    good, problems = task.check_rows(ex(rows, file="pairs.jsonl"))
    assert good == [0, 1, 2]
    assert rows[0]["target"] == ["good film", "great movie"] and rows[1]["target"] == "bad" and rows[2]["target"] == ""
    assert [(p.line, p.severity) for p in problems] == [(3, "warning"), (4, "error")]
    assert "list of texts" in problems[1].message and problems[1].file == "pairs.jsonl"
    kept = ex(rows).subset(good, "train")
    ds = task.encode(kept, AutoTokenizer.from_pretrained(str(tiny_bert)), task.label_info(kept), 16)
    assert len(ds) == 3  # two references of row 1 + one of row 2; row 3 has none


# --- T5 (encoder-decoder) and Llama (decoder-only) from configs ----------------------------------

@pytest.fixture(scope="module")
def tiny_t5(tiny_bert, tmp_path_factory):
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    folder = tmp_path_factory.mktemp("t5") / "model"
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    config = T5Config(vocab_size=tok.vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=2,
                      decoder_start_token_id=tok.pad_token_id, pad_token_id=tok.pad_token_id,
                      eos_token_id=tok.sep_token_id)
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


def build_tiny_llama(tiny_bert, folder, chat_template=None):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    if chat_template:
        tok.chat_template = chat_template
    config = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def tiny_llama(tiny_bert, tmp_path_factory):
    return build_tiny_llama(tiny_bert, tmp_path_factory.mktemp("llama") / "model")


def test_t5_generates_and_encodes_with_the_card_prefix(tiny_t5):
    from transformers import AutoTokenizer

    task = get_task("summarization")
    tok = AutoTokenizer.from_pretrained(str(tiny_t5))
    model = task.load_model(str(tiny_t5), None)
    assert model.config.model_type == "t5"
    kept = ex([{"document": "good movie", "summary": "good"}])
    ds = task.encode(kept, tok, task.label_info(kept), 16, source_prefix="fun ")
    assert tok.convert_ids_to_tokens(ds["input_ids"][0])[1:4] == ["fun", "good", "movie"]
    out = task.predict(model, tok, ["the plot was fun", "bad"], batch_size=2, max_new_tokens=3, num_beams=2)
    assert [set(r) for r in out] == [{"generated_text", "truncated"}] * 2


def test_causal_lm_loss_is_masked_on_the_prompt(tiny_llama):
    from transformers import AutoTokenizer

    task = get_task("translation")
    tok = AutoTokenizer.from_pretrained(str(tiny_llama))
    rows = [{"source": "good movie", "target": "great film", "source_lang": "en", "target_lang": "de"}]
    kept = ex(rows)
    info = task.label_info(kept)
    assert info.extra == {"source_lang": "en", "target_lang": "de"}
    assert task.instruction(info.extra) == "Translate from English to German."
    ds = task.encode(kept, tok, info, 16, causal_lm=True)
    ids, labels = ds["input_ids"][0], ds["labels"][0]
    target = tok("great film", add_special_tokens=False)["input_ids"] + [tok.sep_token_id]
    assert ids[-len(target):] == target and labels[-len(target):] == target
    assert labels[:-len(target)] == [-100] * (len(ids) - len(target))
    from fmhub.tasks.causal_lm import build_prompt

    prompt = build_prompt(tok, "Translate from English to German.", "good movie", "Translation:")
    assert prompt == "Translate from English to German.\n\ngood movie\n\nTranslation:"
    assert ids[:-len(target)] == tok(prompt, add_special_tokens=False)["input_ids"]


def test_causal_lm_uses_the_chat_template_when_there_is_one(tiny_bert, tmp_path):
    from transformers import AutoTokenizer

    from fmhub.tasks import causal_lm

    template = "{% for m in messages %}[CLS] {{ m['content'] }} [SEP]{% endfor %}{% if add_generation_prompt %} the{% endif %}"
    folder = build_tiny_llama(tiny_bert, tmp_path / "chat", chat_template=template)
    tok = AutoTokenizer.from_pretrained(str(folder))
    prompt = causal_lm.build_prompt(tok, "Summarize the following text.", "good movie", "Summary:")
    assert prompt == "[CLS] Summarize the following text.\n\ngood movie [SEP] the"


def test_finetune_a_causal_lm_for_summarization_on_16_rows(ctx, tiny_llama, tmp_path):
    from fmhub.services.evaluate import run_evaluate
    from fmhub.services.finetune import run_finetune
    from fmhub.services.models import import_model
    from fmhub.services.predict import predict
    from fmhub.services.specs import EvaluateSpec, FinetuneSpec

    import_model(ctx, tiny_llama, name="tiny-llama", task="summarization")
    data = tmp_path / "docs.jsonl"
    rows = [{"document": f"the movie was {w} and the plot was {w}", "summary": f"{w} movie"}
            for w in ["good", "bad", "fun", "dull"] * 4]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = FinetuneSpec(model="tiny-llama:1", task="summarization", device="cpu",
                        data={"train": str(data), "validation": "none", "test": "auto", "test_size": 0.25},
                        hyperparameters={"max_steps": 2, "per_device_train_batch_size": 4},
                        generation={"max_new_tokens": 4})
    result = run_finetune(ctx, spec)
    assert result.metrics["test"]["n"] == 4 and "rougeLsum" in result.metrics["test"]
    preds = [json.loads(x) for x in (Path(result.job.folder) / "predictions-test.jsonl").read_text().splitlines()]
    assert len(preds) == 4 and all(len(p["prediction"]["generated_text"].split()) <= 4 for p in preds)
    out = predict(ctx, "tiny-llama-summarization", ["the movie was good"])
    assert isinstance(out["predictions"][0]["generated_text"], str)
    ev = run_evaluate(ctx, EvaluateSpec(model="tiny-llama-summarization", device="cpu", data={"test": str(data)},
                                        generation={"num_beams": 2, "max_new_tokens": 2}))
    assert ev["test"]["n"] == 16


def test_pairs_missing_a_side_are_reported_and_left_out_and_the_rest_stay_aligned(tmp_path):
    from fmhub.data.report import ValidationReport
    from fmhub.services.data_prep import check_examples, read_examples
    from fmhub.services.specs import DataSpec

    data = tmp_path / "pairs.tsv"
    data.write_text("en\tde\nA dog.\tEin Hund.\n\tNur Ziel.\nA cat.\t\nA bird.\tEin Vogel.\n", encoding="utf-8")
    task = get_task("translation")
    report = ValidationReport(task=task.name)
    spec = DataSpec(train=str(data), validation="none", test="none")
    _, examples, _ = read_examples(str(data), spec, task, report)
    kept, dropped = check_examples(examples, task, "error", report)
    assert report.ok
    assert report.notes == [f"source_lang en, target_lang de (from the column names of {data})"]
    assert [(r["source"], r["target"]) for r in kept.rows] == [("A dog.", "Ein Hund."), ("A cat.", ""),
                                                               ("A bird.", "Ein Vogel.")]
    assert kept.lines == [2, 4, 5]
    assert [(p.line, p.column, p.message) for p in dropped] == [(3, "en", "empty source: row left out (nothing to translate)")]
    assert [(w.line, w.column) for w in report.warnings] == [(4, "de")]
