"""--group-by on a classification task (every task): the data layer keeps the column's value, the
evaluation adds metrics per group equal to the task's metrics on that group's rows, and the command
line prints them per group (fine-tuned beside zero-shot)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rich.console import Console

from fmhub.cli.render_groups import print_group_comparison
from fmhub.services.evaluate import run_evaluate
from fmhub.services.finetune import run_finetune
from fmhub.services.models import import_model
from fmhub.services.specs import EvaluateSpec, FinetuneSpec
from fmhub.tasks import get_task
from fmhub.tasks.base import LabelInfo

POS = ["good movie", "great film", "love this plot", "wonderful acting", "the best story", "very fun"]
NEG = ["bad movie", "awful film", "hate this plot", "boring acting", "the worst story", "very dull"]


def write_csv(path: Path, n: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["review", "stars", "site"])
        for i in range(n):
            text = (POS if i % 2 else NEG)[i % 6] + " the" * (i // 6)
            w.writerow([text, "pos" if i % 2 else "neg", "" if i % 5 == 4 else ("imdb" if i % 3 else "yelp")])
    return path


def test_classification_metrics_per_group_in_finetune_and_evaluate(ctx, tiny_bert, tmp_path):
    import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification", license="apache-2.0")
    train, test = write_csv(tmp_path / "train.csv", 40), write_csv(tmp_path / "test.csv", 15)
    spec = FinetuneSpec(model="tiny-bert:1", task="text-classification",
                        data={"train": str(train), "validation": "none", "test": str(test), "group_by": "site"},
                        hyperparameters={"max_steps": 2, "per_device_train_batch_size": 8},
                        registered_model_name="sites", device="cpu")
    result = run_finetune(ctx, spec)
    groups = result.metrics["test"]["groups"]
    assert set(groups) == {"imdb", "yelp", "(none)"}  # an empty cell is group (none)
    assert "test_zero_shot" not in result.metrics  # classification has no zero-shot baseline

    task = get_task("text-classification")
    rows = [json.loads(x) for x in (Path(result.job.folder) / "predictions-test.jsonl").read_text().splitlines()]
    for value, metrics in groups.items():
        mine = [r for r in rows if r["group"] == value]
        preds = task.predictions_for_metrics([r["prediction"] for r in mine])
        expected = task.compute_metrics(preds, [r["reference"] for r in mine], LabelInfo(["neg", "pos"]))
        assert mine and metrics == expected

    evaluated = run_evaluate(ctx, EvaluateSpec(model="sites:1", data={"test": str(test), "group_by": "site"},
                                               device="cpu"))
    assert evaluated["test"]["groups"] == groups


def test_per_group_table_puts_fine_tuned_beside_zero_shot():
    metrics = {"test": {"rougeL": 0.5, "n": 3, "groups": {"a": {"rougeL": 0.6, "n": 2}, "b": {"rougeL": 0.3, "n": 1}}},
               "test_zero_shot": {"rougeL": 0.2, "n": 3,
                                  "groups": {"a": {"rougeL": 0.25, "n": 2}, "b": {"rougeL": 0.1, "n": 1}}}}
    buf = io.StringIO()
    print_group_comparison(Console(file=buf, width=200), metrics)
    text = buf.getvalue()
    cells = [line.replace("│", " ").split() for line in text.splitlines()]
    assert ["a", "fine-tuned", "2", "0.6000"] in cells and ["zero-shot", "2", "0.2500"] in cells
    assert ["overall", "fine-tuned", "3", "0.5000"] in cells and ["zero-shot", "3", "0.2000"] in cells
    assert max(len(line) for line in text.splitlines()) < 80  # fits a terminal whatever the number of metrics
    buf = io.StringIO()
    print_group_comparison(Console(file=buf, width=200), {"test": {"rougeL": 0.5}})
    assert buf.getvalue() == ""  # no groups, no table
