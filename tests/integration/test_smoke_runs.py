"""A smoke run of each fine-tuning task from the CLI on the real data in shared/datasets with the
packaged models: ``--max-steps 8 --max-eval-samples 32 --max-predict-samples 32`` finishes in under
3 minutes on a 2-core CPU (the tasks run one after another; each run's time is printed).
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import pytest

from conftest import DATASETS
from test_cli_finetune import fmhub

pytestmark = pytest.mark.integration

LIMIT_S = 180.0
SMOKE = ("--max-steps", "8", "--max-eval-samples", "32", "--max-predict-samples", "32", "--device", "cpu",
         "--json")

RUNS = {  # task -> (packaged model, data folder file names, column mapping flags)
    "text-classification": ("all-MiniLM-L6-v2", ("train.csv", "validation.csv", "test.csv"), ()),
    "token-classification": ("all-MiniLM-L6-v2", ("train.jsonl", "validation.jsonl", "test.jsonl"),
                             ("--map", "tags=ner_tags")),
    "question-answering": ("all-MiniLM-L6-v2", ("train.jsonl", "validation.jsonl", "test.jsonl"), ()),
    "summarization": ("minilm-l6-bert2bert", ("train.jsonl", "validation.jsonl", "test.jsonl"),
                      ("--map", "document=dialogue")),
    "translation": ("minilm-l6-bert2bert", ("train.tsv", "validation.tsv", "test.tsv"), ()),
}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    if not (DATASETS / "text-classification" / "train.csv").is_file():
        pytest.skip(f"real data not found under {DATASETS}")
    return tmp_path_factory.mktemp("smoke-home")


@pytest.mark.parametrize("task", list(RUNS))
def test_smoke_run_finishes_in_three_minutes(home, task):
    model, files, mapping = RUNS[task]
    folder = DATASETS / task
    train, validation, test = (str(folder / f) for f in files)
    t0, cpu0 = time.perf_counter(), _children_cpu_s()
    proc = fmhub(home, "finetune", "--model", model, "--task", task, "--train", train, "--validation", validation,
                 "--test", test, *mapping, *SMOKE, timeout=600)
    elapsed, cpu = time.perf_counter() - t0, _children_cpu_s() - cpu0
    load = os.getloadavg()[0]
    print(f"\nsmoke run {task} ({model}): {elapsed:.1f} s wall, {cpu:.1f} s CPU, load average {load:.1f}")
    result = json.loads(proc.stdout)
    assert result["status"] == "completed" and result["registered_model"]
    assert result["train"]["global_step"] == 8
    assert result["validation"]["n"] == 32 and result["test"]["n"] == 32
    assert "part of 1 epoch" in proc.stderr  # the plan says 8 steps, not the default epochs
    assert elapsed < LIMIT_S, f"{task} took {elapsed:.0f} s (limit {LIMIT_S:.0f} s)"


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
