"""What the CLI prints: help at 80 columns, wrapped cards, ordered plain progress lines, endpoint
invoke/delete, job lists and job specs."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from fmhub.cli.app import app
from fmhub.entities import Job, JobEvent, JobStatus


def _commands(command, path: list[str]):
    yield path, command
    if hasattr(command, "commands"):  # a group
        for name, sub in command.commands.items():
            if not sub.hidden:
                yield from _commands(sub, [*path, name])


def test_every_help_fits_80_columns_and_never_cuts_an_option_name():
    runner = CliRunner()
    seen = 0
    for path, command in _commands(typer.main.get_command(app), []):
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
        assert result.exit_code == 0, (path, result.output)
        lines = result.output.splitlines()
        assert max(len(line) for line in lines) <= 80, (path, max(lines, key=len))
        assert "…" not in result.output, path
        assert not [line for line in lines if line.rstrip().endswith("-")], path  # no break after a hyphen
        assert "\u2011" not in result.output
        for param in command.params:
            for flag in (*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])):
                if flag.startswith("-"):
                    # the whole name on one line, followed by a separator (not cut or folded)
                    assert any(f"{flag} " in line or f"{flag}," in line or line.endswith(flag)
                               for line in lines), (path, flag)
        seen += 1
    assert seen > 30  # the groups and every command


def test_a_group_lists_its_commands_with_their_whole_first_sentence():
    result = CliRunner().invoke(app, ["data", "--help"], env={"COLUMNS": "80"})
    text = " ".join(result.output.split())
    assert "Register a data file as a versioned data asset (copied into the artifact store" in text
    assert "its validation report)." in text
    finetune = CliRunner().invoke(app, ["finetune", "--help"], env={"COLUMNS": "80"}).output
    from fmhub.tasks import task_names

    for name in task_names():  # the --task help lists every task, each hyphenated name whole
        assert name in finetune


def test_a_model_card_wraps_long_text_instead_of_cutting_it():
    from fmhub.cli.render import print_card

    long_item = " ".join(f"word{i}" for i in range(60))
    card = {"name": "m", "registry": "system", "architecture": "an encoder " + " ".join(["wide"] * 30),
            "parameters": 1000, "license": "mit", "languages": ["en"], "inference_tasks": [],
            "finetuning_tasks": ["text-classification"], "source": {"kind": "hub", "hub_id": "x/m"},
            "available_offline": False, "description": f"Intro paragraph {long_item}.\n\n- a bullet {long_item} end"}
    buffer = io.StringIO()
    print_card(Console(file=buffer, width=80, soft_wrap=True), {"card": card})
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    words = [w.strip(".") for w in buffer.getvalue().split()]
    assert words.count("word59") == 2 and "end" in words and words.count("wide") == 30


def test_progress_to_a_file_is_plain_ordered_lines_and_final_metrics_are_not_repeated():
    from fmhub.cli.render import ProgressBar

    buffer = io.StringIO()
    bar = ProgressBar(Console(file=buffer, width=120))  # a file: not a terminal
    bar.event("stage", {"stage": "training", "total_steps": 20})
    for step in range(1, 21):
        bar.step(step, 20, 0.5)
    bar.event("eval", {"split": "validation", "epoch": 1.0, "metrics": {"accuracy": 0.75}})
    bar.event("stage", {"stage": "evaluating validation"})
    for done in (8, 16, 32):
        bar.event("predict", {"split": "validation", "done": done, "total": 32})
    bar.event("eval", {"split": "validation", "metrics": {"accuracy": 0.75}})  # final: shown by the table
    bar.event("stage", {"stage": "registering"})
    bar.close()
    text = buffer.getvalue()
    lines = text.splitlines()
    assert "\x1b" not in text and "\r" not in text and "━" not in text
    steps = [line for line in lines if line.startswith("training step")]
    assert len(steps) == 10 and steps[-1].startswith("training step 20/20, loss 0.5000")
    assert sum("accuracy 0.7500" in line for line in lines) == 1
    order = [next(i for i, line in enumerate(lines) if line.startswith(prefix))
             for prefix in ("training total_steps", "training step 20/20", "validation epoch 1.0",
                            "evaluating validation", "predicting validation: 32/32", "registering")]
    assert order == sorted(order), lines


class FakeEndpoints:
    def __init__(self):
        self.deleted: list[str] = []

    def invoke(self, name, inputs, params, deployment=None):
        return {"deployment": "blue", "model": "m:1", "task": "text-classification",
                "predictions": [[{"label": "pos", "score": 0.9}] for _ in inputs]}

    def delete(self, name):
        self.deleted.append(name)
        return {"deleted": name}


@pytest.fixture()
def endpoints(monkeypatch):
    import fmhub.cli.endpoints as cli_endpoints

    fake = FakeEndpoints()
    monkeypatch.setattr(cli_endpoints, "_client", lambda url: type("C", (), {"endpoints": fake})())
    return fake


def test_endpoints_invoke_json_prints_the_raw_response(endpoints):
    result = CliRunner().invoke(app, ["endpoints", "invoke", "e", "--text", "a", "--text", "b", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == endpoints.invoke("e", ["a", "b"], None)
    plain = CliRunner().invoke(app, ["endpoints", "invoke", "e", "--text", "a"])
    assert plain.exit_code == 0 and plain.stdout.splitlines() == [
        "deployment blue, model m:1", '[0] [{"label": "pos", "score": 0.9}]']


def test_endpoints_delete_asks_first_unless_yes(endpoints):
    refused = CliRunner().invoke(app, ["endpoints", "delete", "e"], input="n\n")
    assert refused.exit_code != 0 and "Delete endpoint e" in refused.output and endpoints.deleted == []
    no_terminal = CliRunner().invoke(app, ["endpoints", "delete", "e"], input="")
    assert no_terminal.exit_code != 0 and endpoints.deleted == []
    confirmed = CliRunner().invoke(app, ["endpoints", "delete", "e"], input="y\n")
    assert confirmed.exit_code == 0 and endpoints.deleted == ["e"]
    scripted = CliRunner().invoke(app, ["endpoints", "delete", "e", "--yes"])
    assert scripted.exit_code == 0 and endpoints.deleted == ["e", "e"] and "endpoint e deleted" in scripted.stdout


START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
JOBS = [
    Job(id="job-a", kind="finetune", status=JobStatus.completed, created_at=START, started_at=START,
        finished_at=START + timedelta(minutes=3, seconds=5),
        spec={"model": "base", "task": "text-classification", "data": {"train": "t.csv", "format": None},
              "hyperparameters": {"learning_rate": 5e-05, "max_steps": None}, "register_model": True},
        outputs={"registered_model": "tuned:1", "warnings": ["the model predicts one class only on test"],
                 "metrics": {
            "validation": {"accuracy": 0.5, "f1_macro": 0.4},
            "test": {"accuracy": 0.9, "f1_macro": 0.8123, "per_class": {}, "n": 10}}}),
    Job(id="job-b", kind="finetune", status=JobStatus.queued, created_at=START,
        spec={"model": "base", "task": "summarization"}),
]


@pytest.fixture()
def local_jobs(monkeypatch):
    import fmhub.cli.jobs as cli_jobs

    class Fake:
        def list(self, status=None, kind=None, limit=50, offset=0):
            return JOBS

        def get(self, job_id):
            return next(j for j in JOBS if j.id == job_id)

        def events(self, job_id, after=0):
            return [JobEvent(job_id=job_id, seq=1, kind="eval",
                             data={"split": "test", "metrics": {"accuracy": 0.9, "per_class": {"x": {}}}})]

    monkeypatch.setattr(cli_jobs, "backend", lambda url: Fake())


def test_jobs_list_shows_task_duration_and_headline_metric(local_jobs):
    result = CliRunner().invoke(app, ["jobs", "list"])
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0]
    for column in ("task", "duration", "metric"):
        assert column in header
    row_a = next(line for line in result.stdout.splitlines() if "job-a" in line)
    assert "text-classification" in row_a and "3m 05s" in row_a and "f1_macro 0.8123 (test)" in row_a
    row_b = next(line for line in result.stdout.splitlines() if "job-b" in line)
    assert "summarization" in row_b and "rougeL" not in row_b


def test_jobs_wait_ends_with_the_registered_model_and_its_warnings(local_jobs):
    result = CliRunner().invoke(app, ["jobs", "wait", "job-a"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "registered tuned:1" in lines
    assert "warning: the model predicts one class only on test" in lines


def test_jobs_show_prints_the_spec_as_key_value_lines(local_jobs):
    result = CliRunner().invoke(app, ["jobs", "show", "job-a"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    spec = lines[lines.index("spec:") + 1:lines.index("last events:")]
    assert spec == ["  model: base", "  task: text-classification", "  data:", "    train: t.csv",
                    "  hyperparameters:", "    learning_rate: 5e-05", "  register_model: true"]
    assert "{'" not in result.stdout and "duration: 3m 05s" in lines
    assert "     1 eval: test: accuracy 0.9000" in lines


def test_headline_metric_and_duration_helpers():
    from fmhub.cli.render_jobs import duration, headline_metric

    assert headline_metric("translation", {"test": {"bleu": 12.3456, "chrf": 40.0}}) == "bleu 12.3456 (test)"
    assert headline_metric("question-answering", {"validation": {"exact_match": 50.0, "f1": 61.5}}) == "f1 61.5000 (validation)"
    assert headline_metric(None, {"test": {"n": 3, "loss": 0.25}}) == "loss 0.2500 (test)"
    assert headline_metric("summarization", {}) == "-"
    assert duration(None, None) == "-"
    assert duration(START, START + timedelta(hours=1, minutes=2)) == "1h 02m"
    assert duration(START, None, now=START + timedelta(seconds=42)) == "42s"


def test_serve_on_a_taken_port_says_so_before_starting_anything(tmp_path, monkeypatch):
    import socket

    monkeypatch.setenv("FMHUB_HOME", str(tmp_path / "home"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "another --port" in result.output
    assert not (tmp_path / "home" / "fmhub.db").exists()  # nothing started: no database was made


def test_metrics_table_shows_every_splits_own_metrics_validation_first():
    """A chat fine-tune's validation split has only loss and perplexity; the test splits have
    generation metrics: each row shows its own figures and "-" for the others."""
    from fmhub.cli.render import print_metrics

    buf = io.StringIO()
    print_metrics(Console(file=buf, width=200), {
        "test": {"rougeL": 31.25, "bleu": 12.5, "n": 400},
        "validation": {"loss": 1.5, "perplexity": 4.4817},
        "test_zero_shot": {"rougeL": 20.0, "bleu": 3.0, "n": 400},
    })
    table = [[cell.strip() for cell in line.split("│")] for line in buf.getvalue().splitlines() if "│" in line]
    header = [cell.strip() for cell in next(line for line in buf.getvalue().splitlines() if "split" in line).split("┃")]
    assert header == ["split", "rougeL", "bleu", "loss", "perplexity", "rows"]
    assert [row[0] for row in table] == ["validation", "test", "test_zero_shot"]
    assert table[0][1:] == ["-", "-", "1.5000", "4.4817", ""]
    assert table[1][1:] == ["31.2500", "12.5000", "-", "-", "400"]
    assert "nan" not in buf.getvalue()


def test_library_root_logging_never_prints_the_job_log_into_command_output(capsys):
    """absl (under rouge_score) calls logging.basicConfig() when the root logger has no handler;
    the CLI's own stderr handler (warnings and errors only) keeps the job log's INFO lines out."""
    import logging

    from absl import logging as absl_logging

    from fmhub.cli.common import quiet_root_logging

    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()
    job_log = logging.getLogger("fmhub.job")
    level = job_log.level
    try:
        quiet_root_logging()
        quiet_root_logging()  # once only
        assert len(root.handlers) == 1
        absl_logging.info("Using default tokenizer.")
        job_log.setLevel(logging.INFO)
        job_log.info("stage {}")
        job_log.warning("disk almost full")
        err = capsys.readouterr().err
        assert len(root.handlers) == 1  # absl added none
        assert "stage" not in err and "INFO" not in err
        assert "disk almost full" in err
    finally:
        root.handlers[:] = saved
        job_log.setLevel(level)


def test_predict_prints_a_generated_reply_on_its_own_lines(monkeypatch, tmp_path):
    """A chat or summarization reply may span lines: it is printed alone (under a "> input" line when
    several inputs are given), never as REPLY<TAB>INPUT."""
    import fmhub.services.predict as predict_service

    monkeypatch.setenv("FMHUB_HOME", str(tmp_path))
    replies = iter([["Hallo.\nWie geht's?"], ["one", "two"]])
    monkeypatch.setattr(predict_service, "predict", lambda ctx, ref, inputs, **kw: {
        "predictions": [{"generated_text": t, "finish_reason": "stop"} for t in next(replies)]})
    runner = CliRunner()
    one = runner.invoke(app, ["predict", "m:1", "--text", "Translate: Hello. How are you?"])
    assert one.exit_code == 0, one.output
    assert one.output.splitlines() == ["Hallo.", "Wie geht's?"]
    two = runner.invoke(app, ["predict", "m:1", "--text", "a", "--text", "b"])
    assert two.exit_code == 0, two.output
    assert two.output.splitlines() == ["> a", "one", "> b", "two"]
    assert "\t" not in one.output + two.output
