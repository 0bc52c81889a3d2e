"""``fmhub evaluate`` with several ``--model`` options: one comparison table (or one JSON document)."""

from __future__ import annotations

import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from fmhub.data.report import ValidationReport

METRICS = {
    "base:1": {"accuracy": 0.5, "f1_macro": 0.3333333, "per_class": {"neg": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}},
               "confusion_matrix": {"labels": ["neg", "pos"], "matrix": [[0, 2], [0, 2]]}, "n": 4},
    "tuned:2": {"accuracy": 0.75, "f1_macro": 0.7333333, "per_class": {"neg": {"precision": 1.0, "recall": 0.5, "f1": 0.6666667, "support": 2}},
                "confusion_matrix": {"labels": ["neg", "pos"], "matrix": [[1, 1], [0, 2]]}, "n": 4},
}


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """An isolated FMHUB_HOME under tmp_path."""
    from fmhub.config import reset_settings

    monkeypatch.setenv("FMHUB_HOME", str(tmp_path / "fmhub-home"))
    monkeypatch.delenv("FMHUB_DATABASE_URL", raising=False)
    reset_settings()
    yield tmp_path
    reset_settings()


@pytest.fixture()
def calls(home, monkeypatch):
    """Replace ``run_evaluate`` with a fake returning fixed metrics per model; records its calls."""
    import fmhub.services.evaluate as evaluate_service

    seen: list[dict] = []

    def fake_run_evaluate(ctx, spec, on_report=None, progress=None):
        seen.append({"spec": spec, "on_report": on_report is not None})
        if on_report:
            on_report(ValidationReport(task="text-classification"))
        if progress:
            progress(4, 4)
        return {"job_id": f"job-{len(seen)}", "status": "completed", "model": spec.model,
                "task": "text-classification", "test": METRICS[spec.model], "report": {}}

    monkeypatch.setattr(evaluate_service, "run_evaluate", fake_run_evaluate)
    return seen


def _invoke(args: list[str]):
    from fmhub.cli.app import app

    return CliRunner().invoke(app, args)


def test_two_models_print_one_table(calls, tmp_path):
    result = _invoke(["evaluate", "--model", "base:1", "--model", "tuned:2", "--test", str(tmp_path / "t.csv"),
                      "--map", "sentence1=review", "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    assert [c["spec"].model for c in calls] == ["base:1", "tuned:2"]
    assert [c["on_report"] for c in calls] == [True, False]  # the validation report once
    assert all(c["spec"].per_device_eval_batch_size == 8 for c in calls)
    assert all(c["spec"].data.column_mapping == {"sentence1": "review"} for c in calls)
    rows = {line.split()[0]: [c for c in line.split() if c != "│"] for line in result.output.splitlines()
            if line.strip().startswith(("base:1", "tuned:2"))}
    assert rows["base:1"][1:] == ["0.5000", "0.3333", "4", "job-1"]
    assert rows["tuned:2"][1:] == ["0.7500", "0.7333", "4", "job-2"]
    assert result.output.count("Validation report") == 1


def test_two_models_json(calls, tmp_path):
    result = _invoke(["evaluate", "--model", "base:1", "--model", "tuned:2", "--test", str(tmp_path / "t.csv"),
                      "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["task"] == "text-classification"
    assert len(doc["results"]) == 2
    assert [r["model"] for r in doc["results"]] == ["base:1", "tuned:2"]
    assert [r["test"]["accuracy"] for r in doc["results"]] == [0.5, 0.75]


def test_one_model_json_is_the_single_result(calls, tmp_path):
    result = _invoke(["evaluate", "--model", "tuned:2", "--test", str(tmp_path / "t.csv"), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["job_id"] == "job-1"
    assert doc["model"] == "tuned:2"
    assert doc["test"]["f1_macro"] == 0.7333333


def test_one_model_prints_metrics_as_before(calls, tmp_path):
    result = _invoke(["evaluate", "--model", "base:1", "--test", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    assert "Metrics" in result.output
    assert "per class" in result.output  # print_metrics, not the comparison table
    assert "job job-1 completed (base:1)" in result.output


def test_failure_of_second_model_is_reported(calls, tmp_path, monkeypatch):
    import fmhub.services.evaluate as evaluate_service
    from fmhub.errors import SpecError

    fake = evaluate_service.run_evaluate

    def failing(ctx, spec, on_report=None, progress=None):
        if spec.model == "tuned:2":
            raise SpecError("model 'tuned:2' has no head")
        return fake(ctx, spec, on_report=on_report, progress=progress)

    monkeypatch.setattr(evaluate_service, "run_evaluate", failing)
    result = _invoke(["evaluate", "--model", "base:1", "--model", "tuned:2", "--test", str(tmp_path / "t.csv")])
    assert result.exit_code == 1
    assert "model 'tuned:2' has no head" in result.output


def test_print_comparison_columns_and_values():
    from fmhub.cli.render import print_comparison

    console = Console(record=True, width=200)
    print_comparison(console, [
        {"job_id": "j1", "model": "base:1", "task": "translation",
         "test": {"bleu": 12.345678, "chrf": 40.0, "bleu_signature": "nrefs:1|tok:13a", "n": 10}},
        {"job_id": "j2", "model": "tuned:2", "task": "translation",
         "test": {"bleu": 20.5, "extra": 3, "bleu_signature": "nrefs:1|tok:13a", "n": 10}},
    ])
    lines = console.export_text().splitlines()
    header = next(line for line in lines if "model" in line and "job" in line).split()
    assert header == ["model", "┃", "bleu", "┃", "chrf", "┃", "extra", "┃", "rows", "┃", "job"]
    body = {line.split()[0]: [c for c in line.split() if c != "│"] for line in lines
            if line.strip().startswith(("base:1", "tuned:2"))}
    assert body["base:1"] == ["base:1", "12.3457", "40.0000", "-", "10", "j1"]
    assert body["tuned:2"] == ["tuned:2", "20.5000", "-", "3", "10", "j2"]
    assert "  bleu_signature: nrefs:1|tok:13a" in lines
    assert not any("per_class" in line for line in lines)
