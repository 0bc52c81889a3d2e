"""Fine-tune options from a new user's trial: hyperparameter ranges that name their flag, smoke-run
caps on the evaluated rows, the training plan in words, early stopping, warnings about a model that
predicts one class only, and names for integer classes (``--label-names``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import write_sentiment_csv
from fmhub.cli.app import app
from fmhub.cli.finetune import build_finetune_spec
from fmhub.errors import DataError, SpecError
from fmhub.services.finetune import run_finetune
from fmhub.services.finetune_checks import check_hyperparameters
from fmhub.services.models import import_model, own_labels, show_model
from fmhub.services.specs import EvaluateSpec, FinetuneSpec
from fmhub.tasks import get_task
from fmhub.tasks.base import LabelInfo
from fmhub.tasks.text_classification import TextClassification
from fmhub.training.progress import training_plan


class Recorder:
    def __init__(self):
        self.events = []

    def event(self, kind, data):
        self.events.append((kind, data))

    def step(self, step, total, loss):
        pass


@pytest.fixture()
def base(ctx, tiny_bert):
    return import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification", license="apache-2.0")


def spec_for(train: Path, **kw) -> FinetuneSpec:
    hp = {"max_steps": 4, "per_device_train_batch_size": 8, "logging_steps": 1, **kw.pop("hp", {})}
    mapping = kw.pop("column_mapping", {"sentence1": "review", "label": "stars"})
    return FinetuneSpec(model="tiny-bert:1", task="text-classification",
                        data={"train": str(train), "column_mapping": mapping, **kw},
                        hyperparameters=hp, registered_model_name="sentiment", device="cpu")


FLAGS = {"model": "m", "task": "question-answering", "train": "train.jsonl"}


# -- ranges -----------------------------------------------------------------------------------------
def test_doc_stride_zero_is_an_error_naming_the_flag():
    with pytest.raises(SpecError) as err:
        build_finetune_spec(None, {**FLAGS, "doc_stride": 0})
    assert "hyperparameters.doc_stride: must be >= 1 (got 0) (flag --doc-stride)" in str(err.value)
    assert err.value.details == [{"field": "hyperparameters.doc_stride", "message": "must be >= 1 (got 0)",
                                  "flag": "--doc-stride"}]


def test_several_bad_values_are_reported_at_once():
    with pytest.raises(SpecError) as err:
        build_finetune_spec(None, {**FLAGS, "doc_stride": -1, "learning_rate": 0.0, "seed": -5,
                                   "warmup_steps": 2.5, "max_eval_samples": 0, "early_stopping_patience": 0,
                                   "num_beams": 0})
    text = str(err.value)
    assert text.startswith("7 problem(s)")
    for flag in ("--doc-stride", "--learning-rate", "--seed", "--warmup-steps", "--max-eval-samples",
                 "--early-stopping-patience", "--num-beams"):
        assert flag in text
    assert [p["flag"] for p in err.value.details] == ["--learning-rate", "--doc-stride", "--warmup-steps",
                                                      "--seed", "--early-stopping-patience", "--max-eval-samples",
                                                      "--num-beams"]


def test_cli_names_the_flag_and_exits_non_zero(ctx):
    result = CliRunner().invoke(app, ["finetune", "--model", "m", "--task", "question-answering",
                                      "--train", "t.jsonl", "--doc-stride", "0", "--max-steps", "-2"])
    assert result.exit_code != 0
    assert "--doc-stride" in result.output and "--max-steps" in result.output


def resolved(spec: FinetuneSpec):
    task = get_task(spec.task)
    return task, spec.hyperparameters.resolve(task.default_hyperparameters, {}, task.metric_for_best_model)


def test_doc_stride_must_fit_the_window_and_all_checks_come_together():
    spec = build_finetune_spec(None, {**FLAGS, "doc_stride": 200, "max_seq_length": 256, "max_steps": 4,
                                      "warmup_steps": 10, "metric_for_best_model": "bleu",
                                      "early_stopping_patience": 2, "validation": "none"})
    task, hp = resolved(spec)
    with pytest.raises(SpecError) as err:
        check_hyperparameters(spec, task, hp)
    text = str(err.value)
    assert text.startswith("4 problem(s)")
    assert "--doc-stride must be >= 1 and at most half of --max-seq-length (got 200" in text
    assert "--warmup-steps 10 is more than --max-steps 4" in text
    assert "--metric-for-best-model 'bleu'" in text
    assert "--early-stopping-patience needs validation data" in text


def test_default_doc_stride_adapts_to_a_short_window():
    spec = build_finetune_spec(None, {**FLAGS, "max_seq_length": 128})  # default stride 128: not the user's
    task, hp = resolved(spec)
    check_hyperparameters(spec, task, hp)  # no error


# -- the training plan -----------------------------------------------------------------------------
def test_training_plan_matches_the_steps():
    assert training_plan(8, 125) == "8 steps: part of 1 epoch of 125 steps"
    assert training_plan(300, 100) == "3 epochs of 100 steps (300 steps)"
    assert training_plan(100, 100) == "1 epoch of 100 steps (100 steps)"
    assert training_plan(250, 100) == "2.5 epochs of 100 steps (250 steps)"


# -- smoke runs on a tiny model --------------------------------------------------------------------
def test_max_eval_and_predict_samples_cap_the_stored_predictions(ctx, base, tmp_path):
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=100)  # auto split: 80 / 10 / 10
    rec = Recorder()
    result = run_finetune(ctx, spec_for(train, hp={"max_eval_samples": 3, "max_predict_samples": 2}), sink=rec)
    folder = Path(result.job.folder)
    assert len((folder / "predictions-validation.jsonl").read_text().splitlines()) == 3
    assert len((folder / "predictions-test.jsonl").read_text().splitlines()) == 2
    assert result.metrics["validation"]["n"] == 3 and result.metrics["test"]["n"] == 2
    assert "validation: evaluating the first 3 of 10 rows (--max-eval-samples 3)" in result.report.notes
    assert [s.rows_kept for s in result.report.splits] == [80, 10, 10]  # the whole splits were validated
    plan = next(d for k, d in rec.events if k == "stage" and d.get("stage") == "training")
    assert plan["plan"] == "4 steps: part of 1 epoch of 10 steps" and plan["epochs"] == 0.4


def test_one_class_model_is_registered_with_a_warning(ctx, base, tmp_path, monkeypatch):
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=60)
    monkeypatch.setattr(TextClassification, "predict",
                        lambda self, model, tok, inputs, **kw: [[{"label": "neg", "score": 0.9}] for _ in inputs])
    result = run_finetune(ctx, spec_for(train))
    assert result.model_version is not None  # registered all the same
    assert len(result.warnings) == 2 and "predicts one class only ('neg') for all 6 validation rows" in result.warnings[0]
    folder = Path(result.job.folder)
    assert "predicts one class only" in (folder / "log.txt").read_text()
    stored = json.loads((folder / "report.json").read_text())
    assert any("one class only" in w["message"] for w in stored["warnings"])
    assert result.job.outputs["warnings"] == result.warnings


def test_one_class_warning_in_cli_output(ctx, base, tmp_path, monkeypatch):
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=60)
    monkeypatch.setattr(TextClassification, "predict",
                        lambda self, model, tok, inputs, **kw: [[{"label": "pos", "score": 0.9}] for _ in inputs])
    result = CliRunner().invoke(app, ["finetune", "--model", "tiny-bert:1", "--task", "text-classification",
                                      "--train", str(train), "--map", "sentence1=review", "--map", "label=stars",
                                      "--max-steps", "2", "--batch-size", "8", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "one class only ('pos')" in result.output
    assert "2 steps: part of 1 epoch of 6 steps" in result.output


def test_prediction_warnings_of_the_tasks():
    tc = get_task("text-classification")
    info = LabelInfo(labels=["neg", "pos"])
    assert tc.prediction_warnings(["neg", "pos", "neg"], info, "test") == []
    assert "one class only" in tc.prediction_warnings(["pos", "pos"], info, "test")[0]
    ner = get_task("token-classification")
    tags = LabelInfo(labels=["O", "B-PER", "I-PER"])
    assert "no entity at all on the 2 validation rows" in ner.prediction_warnings([["O", "O"], ["O"]], tags,
                                                                                   "validation")[0]
    assert ner.prediction_warnings([["O", "B-PER"], ["O"]], tags, "validation") == []


def test_early_stopping_stops_before_the_last_epoch(ctx, base, tmp_path):
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=60)  # 54 train rows: 7 steps per epoch
    # An improvement must exceed the threshold to count, so the second evaluation does not improve.
    hp = {"max_steps": None, "num_train_epochs": 5, "early_stopping_patience": 1,
          "early_stopping_threshold": 1e9, "metric_for_best_model": "loss"}
    rec = Recorder()
    result = run_finetune(ctx, spec_for(train, test="none", hp=hp), sink=rec)
    assert result.train["stopped_early"] is True
    assert result.train["global_step"] == 14  # two epochs of the five
    assert any(k == "stage" and d.get("stage") == "stopped early" for k, d in rec.events)
    assert result.model_version is not None


# -- label names -----------------------------------------------------------------------------------
def test_label_names_name_integer_classes(ctx, base, tmp_path):
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=60, labels=("0", "1"))
    result = run_finetune(ctx, spec_for(train, label_names="negative,positive", test="none"))
    assert result.model_version.lineage["labels"] == ["negative", "positive"]
    config = json.loads((Path(result.model_version.path) / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    shown = show_model(ctx, "sentiment:1")
    predictions = shown["scoring_example"]["response"]["predictions"]
    assert [p["label"] for p in predictions] == ["negative", "positive"]
    assert shown["scoring_example"]["response"]["model"] == "sentiment:1"

    # evaluating the model on integer labels: the same names, and a smoke-run cap on the rows
    from fmhub.services.evaluate import run_evaluate

    test = write_sentiment_csv(tmp_path / "test.csv", n=10, labels=("0", "1"))
    spec = EvaluateSpec(model="sentiment:1", data={"test": str(test), "label_names": "negative,positive",
                                                   "column_mapping": {"sentence1": "review", "label": "stars"}},
                        max_predict_samples=4, device="cpu")
    evaluated = run_evaluate(ctx, spec)
    assert evaluated["test"]["n"] == 4
    assert "test: scoring the first 4 of 10 rows (--max-predict-samples 4)" in evaluated["report"]["notes"]


def test_label_names_from_a_file_and_an_id_without_a_name(ctx, base, tmp_path):
    train = tmp_path / "reviews.csv"
    train.write_text("review,stars\ngood movie,1\nbad movie,0\ngreat film,1.0\nawful film,2\n", encoding="utf-8")
    names = tmp_path / "names.txt"
    names.write_text("negative\npositive\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        run_finetune(ctx, spec_for(train, label_names=str(names), validation="none", test="none"), dry_run=True)
    problems = err.value.details["errors"]
    assert len(problems) == 1 and problems[0]["line"] == 5
    assert "label '2' is not a class id 0-1 (--label-names gives 2 names)" in problems[0]["message"]


def test_repeated_label_names_are_an_error(ctx, base, tmp_path):
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=20, labels=("0", "1"))
    with pytest.raises(DataError, match="--label-names repeat"):
        run_finetune(ctx, spec_for(train, label_names=["a", "a"]), dry_run=True)


def test_label_names_with_label_type_string_is_an_error(ctx, base, tmp_path):
    train = tmp_path / "reviews.csv"
    train.write_text("review,stars\ngood movie,1\nbad movie,0\ngreat film,1.0\nawful film,01\n", encoding="utf-8")
    with pytest.raises(SpecError, match="give one of the two"):
        run_finetune(ctx, spec_for(train, label_names="a,b", label_type="string", validation="none", test="none"),
                     dry_run=True)


def test_sample_response_speaks_the_models_own_tags():
    example = get_task("token-classification").score_response_example
    out = own_labels(example, ["O", "B-ORG", "I-ORG", "B-GPE", "I-GPE"])
    assert out[0]["entities"][0]["type"] == "ORG"
    assert set(out[0]["tags"]) == {"O", "B-ORG", "I-ORG", "B-GPE"}
