"""A smoke run of each fine-tuning task from the CLI on the real data in shared/datasets with the
packaged models: ``--max-steps 8 --max-eval-samples 32 --max-predict-samples 32`` trains 8 steps,
evaluates 32 rows per split and registers the model. Its time target (under 3 minutes each on a
2-core CPU) is checked by ``benchmarks/smoke_runs.py``, not here (shared machines are noisy).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from conftest import DATASETS, REPO

pytestmark = pytest.mark.integration

sys.path.insert(0, str(REPO / "benchmarks"))
from smoke_runs import RUNS, smoke_run  # noqa: E402  (the benchmark times the same runs)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    if not (DATASETS / "text-classification" / "train.csv").is_file():
        pytest.skip(f"real data not found under {DATASETS}")
    return tmp_path_factory.mktemp("smoke-home")


@pytest.mark.parametrize("task", list(RUNS))
def test_smoke_run_completes_with_capped_evaluation(home, task):
    proc, elapsed, cpu = smoke_run(task, home)
    print(f"\nsmoke run {task}: {elapsed:.1f} s wall, {cpu:.1f} s CPU, load average {os.getloadavg()[0]:.1f}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["status"] == "completed" and result["registered_model"]
    assert result["train"]["global_step"] == 8
    assert result["validation"]["n"] == 32 and result["test"]["n"] == 32
    assert "part of 1 epoch" in proc.stderr  # the plan says 8 steps, not the default epochs
