"""Every registered task has the same shape: schema, metrics, defaults, docs and an example job."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fmhub.services.specs import FinetuneSpec
from fmhub.tasks import get_task, task_names
from fmhub.tasks.base import Task

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_registry_lists_the_tasks():
    assert task_names() == ["text-classification", "token-classification", "question-answering",
                            "summarization", "translation"]


@pytest.mark.parametrize("name", task_names())
def test_each_task_is_complete(name):
    task = get_task(name)
    assert isinstance(task, Task) and task.name == name
    assert task.schema.required and set(task.schema.required) <= set(task.schema.keys)
    assert task.metric_for_best_model in (*task.metric_names, "loss")
    for key in ("learning_rate", "num_train_epochs", "per_device_train_batch_size", "max_seq_length"):
        assert key in task.default_hyperparameters
    assert type(task).__doc__ and type(task).__module__ and __import__(type(task).__module__, fromlist=["x"]).__doc__
    job = EXAMPLES / name / "job.yaml"
    spec = FinetuneSpec.model_validate(yaml.safe_load(job.read_text(encoding="utf-8")))
    assert spec.task == name
    assert set(spec.data.column_mapping) <= set(task.schema.keys)
