"""``fmhub predict`` / ``POST /api/v1/models/{ref}/predict``: one model held between calls, one call at
a time, a clear 429 past the wait."""

from __future__ import annotations

import pytest

from conftest import write_sentiment_csv
from fmhub.errors import OverloadedError
from fmhub.services import model_loading
from fmhub.services import predict as predict_service
from fmhub.services.finetune import run_finetune
from fmhub.services.models import import_model
from fmhub.services.specs import FinetuneSpec


@pytest.fixture()
def sentiment(ctx, tiny_bert, tmp_path):
    import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification", license="apache-2.0")
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=40, labels=("negative", "positive"))
    spec = FinetuneSpec(model="tiny-bert:1", task="text-classification",
                        data={"train": str(train), "column_mapping": {"sentence1": "review", "label": "stars"}},
                        hyperparameters={"max_steps": 1, "per_device_train_batch_size": 8},
                        registered_model_name="sentiment", device="cpu")
    run_finetune(ctx, spec)
    return "sentiment"


def test_the_model_is_loaded_once_for_repeated_calls(ctx, sentiment, monkeypatch):
    loads = []
    real = model_loading.load_resolved

    def counting(task, resolved):
        loads.append(resolved.ref)
        return real(task, resolved)

    monkeypatch.setattr(predict_service, "load_resolved", counting)
    predict_service.HELD.drop()
    first = predict_service.predict(ctx, sentiment, ["good movie"])
    second = predict_service.predict(ctx, sentiment, ["good movie", "awful film"])
    assert loads == ["sentiment:1"]
    assert first["predictions"][0] == second["predictions"][0]


def test_a_call_that_waits_too_long_is_refused_with_429(ctx, sentiment, monkeypatch):
    monkeypatch.setattr(predict_service.HELD, "wait_s", 0.05)
    predict_service.HELD._lock.acquire()
    try:
        with pytest.raises(OverloadedError) as info:
            predict_service.predict(ctx, sentiment, ["good movie"])
    finally:
        predict_service.HELD._lock.release()
    assert info.value.http_status == 429 and "fmhub endpoints deploy" in info.value.hint
    assert info.value.headers == {"Retry-After": "10"}


def test_a_registered_model_predicts_only_its_own_task(ctx, sentiment):
    from fmhub.errors import SpecError

    with pytest.raises(SpecError) as info:
        predict_service.predict(ctx, sentiment, ["good movie"], task="summarization")
    assert "registered for text-classification" in info.value.message and "fine-tune" in info.value.hint


def test_an_over_long_text_is_cut_before_the_tokenizer_reads_it(ctx, sentiment):
    out = predict_service.predict(ctx, sentiment, ["good " * 400_000])  # 2 MB of text
    assert out["predictions"][0][0]["label"] in ("negative", "positive")
