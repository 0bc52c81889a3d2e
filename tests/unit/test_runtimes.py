"""Deployment runtimes: ``auto`` keeps a faster runtime only when the model's headline metric on its
stored test predictions holds within 0.5 points, else serves fp32 and says why; every runtime
predicts through the task unchanged."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from conftest import write_sentiment_csv
from fmhub.serving import runtimes


class FakeTask:
    """Accuracy in [0, 1] as the headline metric; a "model" is a dict input -> label."""

    name = "text-classification"
    headline_metric = "accuracy"
    metric_points = 100.0
    runtime_checked = True
    onnx_logits = True

    def predict(self, model, tokenizer, inputs, **kwargs):
        return [model[x] for x in inputs]

    def predictions_for_metrics(self, results):
        return list(results)

    def compute_metrics(self, predictions, references, info):
        return {"accuracy": sum(p == r for p, r in zip(predictions, references)) / len(references)}


class FakeModel(dict):
    config = SimpleNamespace(id2label={0: "neg", 1: "pos"}, to_dict=lambda: {})


def _stored(folder, n=400):
    rows = [{"input": f"s{i}", "prediction": "pos" if i % 2 else "neg", "reference": "pos" if i % 2 else "neg"}
            for i in range(n)]
    (folder / runtimes.CHECK_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return FakeModel({r["input"]: r["prediction"] for r in rows})


def _choose(folder, model, native_bf16=True):
    return runtimes.choose_auto(FakeTask(), model, None, str(folder), threads=1, native_bf16=native_bf16,
                                max_tokens=64, batch_size=8)


def _flipping(model, k):
    """The model with its first ``k`` answers wrong."""
    out = FakeModel(model)
    for key in list(out)[:k]:
        out[key] = "neg" if out[key] == "pos" else "pos"
    return out


def test_auto_takes_the_first_faster_runtime_that_holds(tmp_path, monkeypatch):
    model = _stored(tmp_path)
    monkeypatch.setattr(runtimes, "onnx_available", lambda: False)
    monkeypatch.setattr(runtimes, "build_runtime", lambda name, m, task, threads: _flipping(m, 2))  # 0.5 points
    choice = _choose(tmp_path, model)
    assert choice.runtime == "pytorch-bf16"
    assert "accuracy 99.50 vs fp32 100.00 on 400 stored test rows" in choice.reason


def test_auto_refuses_a_runtime_that_loses_more_than_half_a_point(tmp_path, monkeypatch):
    model = _stored(tmp_path)
    monkeypatch.setattr(runtimes, "onnx_available", lambda: True)
    flips = {"pytorch-bf16": 3, "onnx": 0}  # 0.75 points lost by bf16, none by onnx
    monkeypatch.setattr(runtimes, "build_runtime", lambda name, m, task, threads: _flipping(m, flips[name]))
    choice = _choose(tmp_path, model)
    assert choice.runtime == "onnx"
    flips["onnx"] = 4
    choice = _choose(tmp_path, model)
    assert choice.runtime == "pytorch" and choice.model is model
    assert "pytorch-bf16 accuracy 99.25" in choice.reason and "onnx accuracy 99.00" in choice.reason


def test_auto_serves_fp32_without_stored_predictions_or_for_generating_tasks(tmp_path, monkeypatch):
    model = FakeModel()
    choice = _choose(tmp_path, model)
    assert choice.runtime == "pytorch" and "no stored test predictions" in choice.reason
    task = FakeTask()
    task.name, task.runtime_checked = "summarization", False
    choice = runtimes.choose_auto(task, model, None, str(tmp_path), threads=1, native_bf16=True, max_tokens=64,
                                  batch_size=8)
    assert choice.runtime == "pytorch" and "summarization" in choice.reason


def test_candidates_follow_the_cpu_and_the_installed_runtimes():
    from fmhub.tasks import get_task

    classify, qa, translate = (get_task(n) for n in ("text-classification", "question-answering", "translation"))
    assert runtimes.auto_candidates(classify, True, True) == ["pytorch-bf16", "onnx"]
    assert runtimes.auto_candidates(classify, False, True) == ["onnx"]  # bf16 emulated: slower
    assert runtimes.auto_candidates(classify, False, False) == []  # int8: answers depend on the batch
    assert runtimes.auto_candidates(qa, True, True) == ["pytorch-bf16"]
    assert runtimes.auto_candidates(translate, True, True) == []


def test_every_runtime_predicts_through_the_task(tiny_bert):
    """bf16, int8 and ONNX Runtime run the task's predict unchanged; ONNX matches fp32 closely."""
    import torch
    from transformers import AutoTokenizer

    from fmhub.tasks import get_task
    from fmhub.tasks.base import LabelInfo

    task = get_task("text-classification")
    model = task.load_model(str(tiny_bert), LabelInfo(labels=["neg", "pos"])).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    texts = ["good movie", "the worst plot and boring acting", "fun"]
    fp32 = task.predict(model, tokenizer, texts, batch_size=2, max_seq_length=32, top_k=2)
    names = ["pytorch-bf16", "pytorch-int8"] + (["onnx"] if runtimes.onnx_available() else [])
    for name in names:
        served = runtimes.build_runtime(name, model, task, threads=1)
        out = task.predict(served, tokenizer, texts, batch_size=2, max_seq_length=32, top_k=2)
        assert [sorted(p["label"] for p in row) for row in out] == [["neg", "pos"]] * 3, name
        if name == "onnx":
            for a, b in zip(out, fp32):
                assert a[0]["score"] == pytest.approx(b[0]["score"], abs=1e-4)
    assert next(model.parameters()).dtype == torch.float32  # the fp32 model itself is unchanged
    with pytest.raises(ValueError, match="onnx serves"):
        runtimes.build_runtime("onnx", model, get_task("question-answering"), threads=1)


def test_a_fine_tune_keeps_its_test_predictions_for_the_runtime_check(ctx, tiny_bert, tmp_path):
    from pathlib import Path

    from fmhub.services.finetune import run_finetune
    from fmhub.services.models import import_model
    from fmhub.services.specs import FinetuneSpec

    import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification", license="apache-2.0")
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=60)
    result = run_finetune(ctx, FinetuneSpec(
        model="tiny-bert:1", task="text-classification", device="cpu",
        data={"train": str(train), "column_mapping": {"sentence1": "review", "label": "stars"}},
        hyperparameters={"max_steps": 2, "per_device_train_batch_size": 8}))
    rows = runtimes.read_check_rows(Path(result.model_version.path))
    assert len(rows) == result.metrics["test"]["n"]
    assert set(rows[0]) == {"input", "prediction", "reference"}
    stored = [json.loads(line) for line in (Path(result.job.folder) / "predictions-test.jsonl").open()]
    assert [r["prediction"] for r in rows] == [r["prediction"] for r in stored]


def test_onnx_applies_the_attention_mask_of_padded_rows(tiny_bert):
    """A row padded beside a longer one scores as it does alone (the exported graph keeps the mask)."""
    if not runtimes.onnx_available():
        pytest.skip("ONNX Runtime is not installed (extra fmhub[onnx])")
    from transformers import AutoTokenizer

    from fmhub.tasks import get_task
    from fmhub.tasks.base import LabelInfo

    task = get_task("text-classification")
    model = task.load_model(str(tiny_bert), LabelInfo(labels=["neg", "pos"])).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    served = runtimes.build_runtime("onnx", model, task, threads=1)
    long = "the worst plot and boring acting and a dull story it was not fun"
    alone = task.predict(served, tokenizer, ["fun"], batch_size=1, max_seq_length=32)
    padded = task.predict(served, tokenizer, ["fun", long], batch_size=2, max_seq_length=32)
    reference = task.predict(model, tokenizer, ["fun"], batch_size=1, max_seq_length=32)
    assert padded[0][0]["score"] == pytest.approx(alone[0][0]["score"], abs=1e-5)
    assert alone[0][0]["score"] == pytest.approx(reference[0][0]["score"], abs=1e-5)


def test_onnx_tags_words_as_pytorch_does(tiny_bert):
    """Token classification through ONNX Runtime: the same tags and scores as the fp32 model."""
    if not runtimes.onnx_available():
        pytest.skip("ONNX Runtime is not installed (extra fmhub[onnx])")
    from transformers import AutoTokenizer

    from fmhub.tasks import get_task
    from fmhub.tasks.base import LabelInfo

    task = get_task("token-classification")
    model = task.load_model(str(tiny_bert), LabelInfo(labels=["O", "B-PER", "I-PER"])).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    served = runtimes.build_runtime("onnx", model, task, threads=1)
    words = [["the", "movie", "was", "good"], ["bad", "plot"]]
    ours = task.predict(served, tokenizer, words, batch_size=2, max_seq_length=32)
    reference = task.predict(model, tokenizer, words, batch_size=2, max_seq_length=32)
    assert [r["tags"] for r in ours] == [r["tags"] for r in reference]
