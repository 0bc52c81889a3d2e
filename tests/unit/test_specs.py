"""Job specs: flags and YAML fill the same FinetuneSpec; every problem is reported at once."""

from __future__ import annotations

import pytest

from fmhub.errors import SpecError
from fmhub.services.specs import FinetuneSpec, build_spec, load_spec_file
from fmhub.training.hyperparameters import Hyperparameters


def test_unknown_keys_and_bad_values_all_reported():
    with pytest.raises(SpecError) as exc:
        build_spec(FinetuneSpec, {"model": "m", "task": "text-classification", "data": {"train": "t.csv", "trian": 1},
                                  "hyperparameters": {"learning_rate": -1, "epochs": 3}}, "test")
    fields = {d["field"] for d in exc.value.details}
    assert fields == {"data.trian", "hyperparameters.learning_rate", "hyperparameters.epochs"}


def test_unknown_task_is_rejected():
    with pytest.raises(SpecError) as exc:
        build_spec(FinetuneSpec, {"model": "m", "task": "sentiment", "data": {"train": "t.csv"}}, "test")
    assert "unknown task" in exc.value.message


def test_yaml_job_file_equals_flags(tmp_path):
    from fmhub.cli.finetune import build_finetune_spec

    job = tmp_path / "job.yaml"
    job.write_text("model: all-MiniLM-L6-v2\ntask: text-classification\ndata:\n  train: a.csv\n"
                   "  column_mapping: {sentence1: review}\nhyperparameters:\n  num_train_epochs: 2\n", encoding="utf-8")
    from_file = build_finetune_spec(job, {})
    from_flags = build_finetune_spec(None, {"model": "all-MiniLM-L6-v2", "task": "text-classification",
                                            "train": str(tmp_path / "a.csv"), "map": ["sentence1=review"],
                                            "num_train_epochs": 2})
    assert from_file == from_flags  # paths in a job file are relative to the job file's folder
    overridden = build_finetune_spec(job, {"learning_rate": 1e-4})
    assert overridden.hyperparameters.learning_rate == 1e-4 and overridden.hyperparameters.num_train_epochs == 2


def test_invalid_yaml_names_line(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("model: x\ndata:\n  train: [a\n", encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load_spec_file(job)
    assert "line" in exc.value.message


def test_hyperparameter_defaults_resolve_in_order():
    hp = Hyperparameters(learning_rate=1e-3).resolve({"learning_rate": 5e-5, "num_train_epochs": 3.0},
                                                     {"num_train_epochs": 2.0}, "f1_macro")
    assert hp.learning_rate == 1e-3           # explicit value wins
    assert hp.num_train_epochs == 2.0         # card default beats task default
    assert hp.per_device_train_batch_size == 32  # generic default
    assert hp.metric_for_best_model == "f1_macro"
