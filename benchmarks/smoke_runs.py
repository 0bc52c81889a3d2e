"""Smoke runs of the five fine-tuning tasks: ``--max-steps 8 --max-eval-samples 32
--max-predict-samples 32`` on the real data in ``../shared/datasets`` with the packaged models, one
after another, each in a fresh subprocess; prints wall and CPU seconds per task and checks each
against the 3-minute target on a 2-core CPU (exit 1 when one is over).

Usage: ``python benchmarks/smoke_runs.py [TASK ...]`` (default: all five). Run it on a quiet machine:
the load average at the end of each run is printed with it.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
LIMIT_S = 180.0
"""The target: each smoke run under 3 minutes on the 2-core CPU."""

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


def smoke_run(task: str, home: Path, timeout_s: int = 600) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run one task's smoke fine-tune through the CLI.

    Args:
        task: A key of :data:`RUNS`.
        home: The ``FMHUB_HOME`` to use.
        timeout_s: Seconds before the run is killed.

    Returns:
        The finished process (``--json`` result on stdout), its wall seconds and CPU seconds.
    """
    model, files, mapping = RUNS[task]
    train, validation, test = (str(DATASETS / task / f) for f in files)
    env = {**os.environ, "FMHUB_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "fmhub.cli.app", "finetune", "--model", model, "--task", task, "--train", train,
           "--validation", validation, "--test", test, *mapping, *SMOKE]
    t0, cpu0 = time.perf_counter(), _children_cpu_s()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s)
    return proc, time.perf_counter() - t0, _children_cpu_s() - cpu0


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(tasks: list[str]) -> int:
    """Run the smoke runs and print one line each plus the check; 0 when all are under the target."""
    over = []
    with tempfile.TemporaryDirectory() as home:
        for task in tasks or list(RUNS):
            proc, wall, cpu = smoke_run(task, Path(home))
            status = json.loads(proc.stdout)["status"] if proc.returncode == 0 else f"exit {proc.returncode}"
            ok = proc.returncode == 0 and wall < LIMIT_S
            over += [] if ok else [task]
            print(f"{task:22s} {RUNS[task][0]:20s} {status:10s} {wall:6.1f} s wall {cpu:6.1f} s CPU "
                  f"load {os.getloadavg()[0]:.1f}  {'ok' if ok else 'OVER ' + str(int(LIMIT_S)) + ' s'}",
                  flush=True)
    print("all under 3 minutes" if not over else f"over the target: {', '.join(over)}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
