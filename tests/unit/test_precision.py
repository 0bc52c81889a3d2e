"""--precision on a fine-tune: bf16 autocast on the CPU trains a tiny BERT classifier along the same
loss curve as fp32, and the job says which precision it used."""

from __future__ import annotations

import pytest

from conftest import write_sentiment_csv
from fmhub.services.finetune import run_finetune
from fmhub.services.models import import_model
from fmhub.services.specs import FinetuneSpec


class Losses:
    def __init__(self):
        self.losses = []

    def event(self, kind, data):
        pass

    def step(self, step, total, loss):
        if loss is not None:
            self.losses.append(loss)


def _run(ctx, train, precision):
    sink = Losses()
    spec = FinetuneSpec(model="tiny-bert:1", task="text-classification",
                        data={"train": str(train), "validation": "none", "test": "none",
                              "column_mapping": {"sentence1": "review", "label": "stars"}},
                        hyperparameters={"max_steps": 30, "per_device_train_batch_size": 8, "logging_steps": 1,
                                         "learning_rate": 3e-3, "precision": precision},
                        registered_model_name=f"sentiment-{precision}", device="cpu")
    result = run_finetune(ctx, spec, sink=sink)
    return sink.losses, result


def test_bf16_autocast_follows_the_fp32_loss_curve(ctx, tiny_bert, tmp_path):
    import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification", license="apache-2.0")
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=96)
    fp32, r32 = _run(ctx, train, "fp32")
    bf16, r16 = _run(ctx, train, "bf16")
    assert len(fp32) == len(bf16) >= 10
    assert "bf16 autocast" in r16.train["device"] and "bf16" not in r32.train["device"]
    assert r16.model_version.lineage["hyperparameters"]["precision"] == "bf16"
    # same seed, data order and initial weights: bf16 matrix products (8-bit mantissa) move each
    # logged loss by well under 5%, and the curve as a whole by under 1%
    for a, b in zip(fp32, bf16):
        assert b == pytest.approx(a, rel=0.05)
    assert sum(bf16) == pytest.approx(sum(fp32), rel=0.01)
    assert fp32 != bf16  # bf16 did run: exact equality would mean fp32 twice


def test_unknown_precision_is_refused_by_the_spec():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="precision"):
        FinetuneSpec(model="m", task="text-classification", data={"train": "t.csv"},
                     hyperparameters={"precision": "fp16"})
