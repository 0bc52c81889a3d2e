"""The fine-tune use case end to end on a tiny random BERT: job row, events, lineage, label names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write_sentiment_csv
from fmhub.entities import JobStatus
from fmhub.errors import DataError
from fmhub.services import jobs as jobs_service
from fmhub.services.finetune import run_finetune
from fmhub.services.models import import_model, list_models, show_model
from fmhub.services.predict import predict
from fmhub.services.specs import FinetuneSpec


class Recorder:
    def __init__(self):
        self.events, self.steps = [], []

    def event(self, kind, data):
        self.events.append((kind, data))

    def step(self, step, total, loss):
        self.steps.append((step, total))


@pytest.fixture()
def base(ctx, tiny_bert):
    return import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification", license="apache-2.0")


def spec_for(train: Path, **kw) -> FinetuneSpec:
    hp = {"max_steps": 4, "per_device_train_batch_size": 8, "logging_steps": 1, **kw.pop("hp", {})}
    return FinetuneSpec(model="tiny-bert:1", task="text-classification",
                        data={"train": str(train), "column_mapping": {"sentence1": "review", "label": "stars"}, **kw},
                        hyperparameters=hp, registered_model_name="sentiment", device="cpu")


def test_finetune_registers_a_version_with_lineage_and_label_names(ctx, base, tmp_path):
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=60, labels=("negative", "positive"))
    rec = Recorder()
    result = run_finetune(ctx, spec_for(train), sink=rec)

    assert result.job.status == JobStatus.completed
    assert result.model_version.ref == "sentiment:1"
    assert set(result.metrics) == {"validation", "test"}
    assert result.metrics["test"]["n"] == 6
    assert 0.0 <= result.metrics["test"]["accuracy"] <= 1.0

    lineage = result.model_version.lineage
    assert lineage["base_model"] == "tiny-bert:1" and lineage["job_id"] == result.job.id
    assert lineage["labels"] == ["negative", "positive"]
    assert lineage["data"][0]["sha256"] and lineage["data"][0]["asset"].endswith(":1")
    assert lineage["hyperparameters"]["max_steps"] == 4

    config = json.loads((Path(result.model_version.path) / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}

    # progress events are rows and a JSONL file; the terminal sink saw every step
    kinds = [e.kind for e in jobs_service.job_events(ctx, result.job.id)]
    assert "train" in kinds and "eval" in kinds and kinds[-1] == "done"
    assert (Path(result.job.folder) / "events.jsonl").read_text().count("\n") == len(kinds)
    assert (Path(result.job.folder) / "log.txt").stat().st_size > 0
    assert rec.steps[-1] == (4, 4)

    out = predict(ctx, "sentiment", ["good movie", "awful film"], top_k=2)
    assert out["model"] == "sentiment:1"
    assert all({p["label"] for p in preds} == {"negative", "positive"} for preds in out["predictions"])

    shown = show_model(ctx, "sentiment:1")
    assert shown["version"]["lineage"]["job_id"] == result.job.id
    assert [c.name for c in list_models(ctx, registry="workspace")] == ["sentiment", "tiny-bert"]


def test_second_run_is_version_two_and_data_asset_is_reused(ctx, base, tmp_path):
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=40)
    first = run_finetune(ctx, spec_for(train, test="none"))
    second = run_finetune(ctx, spec_for(train, test="none"))
    assert (first.model_version.version, second.model_version.version) == (1, 2)
    assert first.model_version.lineage["data"] == second.model_version.lineage["data"]
    assert "test" not in second.metrics


def test_bad_data_stops_before_any_job(ctx, base, tmp_path):
    train = tmp_path / "bad.csv"
    train.write_text("review,stars\ngood,pos\n,neg\nbad,neg\n", encoding="utf-8")
    seen = []
    with pytest.raises(DataError) as exc:
        run_finetune(ctx, spec_for(train, validation="none", test="none"), on_report=seen.append)
    assert f"{train}:3" in exc.value.message and "sentence1" in exc.value.message
    assert seen and not seen[0].ok
    assert jobs_service.list_jobs(ctx) == []


def test_dry_run_validates_without_training(ctx, base, tmp_path):
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=40)
    result = run_finetune(ctx, spec_for(train), dry_run=True)
    assert result.dry_run and result.report.ok and result.job is None
    assert jobs_service.list_jobs(ctx) == []


def test_failure_marks_the_job_failed_and_keeps_its_log(ctx, base, tmp_path, monkeypatch):
    import fmhub.training.trainer as trainer_mod

    def boom(*args, **kwargs):
        raise RuntimeError("simulated out of memory")

    monkeypatch.setattr(trainer_mod, "train_model", boom)
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=40)
    from fmhub.errors import JobFailedError

    with pytest.raises(JobFailedError) as exc:
        run_finetune(ctx, spec_for(train))
    job = jobs_service.list_jobs(ctx)[0]
    assert job.status == JobStatus.failed and "simulated out of memory" in job.error
    assert "log.txt" in exc.value.hint
    assert list_models(ctx, registry="workspace")[0].name == "tiny-bert"  # nothing half-registered


def test_evaluate_a_registered_model_on_a_test_file(ctx, base, tmp_path):
    from fmhub.services.evaluate import run_evaluate
    from fmhub.services.specs import EvaluateSpec

    train = write_sentiment_csv(tmp_path / "reviews.csv", n=40)
    run_finetune(ctx, spec_for(train, test="none"))
    test = write_sentiment_csv(tmp_path / "holdout.csv", n=12)
    result = run_evaluate(ctx, EvaluateSpec(model="sentiment:1", data={"test": str(test)}, device="cpu"))
    assert result["status"] == "completed" and result["test"]["n"] == 12
    assert result["test"]["confusion_matrix"]["labels"] == ["neg", "pos"]
    assert jobs_service.get_job(ctx, result["job_id"]).kind == "evaluate"

    odd = tmp_path / "odd.csv"
    odd.write_text("review,stars\ngood,pos\nmeh,neutral\n", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        run_evaluate(ctx, EvaluateSpec(model="sentiment:1", data={"test": str(odd)}, device="cpu"))
    assert f"{odd}:3" in exc.value.message and "labels of model sentiment:1" in exc.value.message


def test_empty_or_tiny_files_stop_before_training(ctx, base, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("review,stars\n", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        run_finetune(ctx, spec_for(empty))
    assert "no training rows" in exc.value.message
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("review,stars\ngood,pos\nbad,neg\n", encoding="utf-8")
    result = run_finetune(ctx, spec_for(tiny), dry_run=True)
    assert set(result.report.split("train").distribution) == {"neg", "pos"}
    assert any("too small for an automatic" in n for n in result.report.notes)
    assert jobs_service.list_jobs(ctx) == []


def test_max_seq_length_is_capped_at_the_model_limit(ctx, base, tmp_path):
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=20)
    result = run_finetune(ctx, spec_for(train, hp={"max_seq_length": 100000}), dry_run=True)
    assert result.report.split("train").lengths.max_seq_length == 64  # the tiny model's positions
    assert any("using 64 tokens" in n for n in result.report.notes)


def test_untrained_head_and_unknown_names_are_refused(ctx, base, tmp_path):
    from fmhub.errors import ConflictError, NotFoundError, SpecError

    with pytest.raises(SpecError) as exc:
        predict(ctx, "tiny-bert", ["good"], task="text-classification")
    assert "no trained text-classification head" in exc.value.message
    with pytest.raises(NotFoundError) as exc:
        predict(ctx, "tiny-brt", ["good"])
    assert "tiny-bert" in exc.value.hint and "workspace" in exc.value.hint
    with pytest.raises(ConflictError):
        import_model(ctx, base.path, name="all-MiniLM-L6-v2", task="text-classification")


def test_predictions_are_written_next_to_the_metrics(ctx, base, tmp_path):
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=40, labels=("neg", "pos"))
    result = run_finetune(ctx, spec_for(train))
    lines = (Path(result.job.folder) / "predictions-test.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(x) for x in lines]
    assert len(rows) == result.metrics["test"]["n"] == 4
    assert all(r["reference"] in ("neg", "pos") and r["prediction"][0]["label"] in ("neg", "pos") for r in rows)
    correct = sum(r["prediction"][0]["label"] == r["reference"] for r in rows)
    assert correct / len(rows) == pytest.approx(result.metrics["test"]["accuracy"])
