"""Data intake speed and memory on the large shared files: read, map, check and report (with token
length statistics from the packaged MiniLM tokenizer), each file in a fresh subprocess.

Usage::

    python benchmarks/data_intake.py [--datasets ../shared/datasets] [--json-out FILE]

For each ``<task>/large/*`` file it prints the rows read, the seconds fmhub's validation takes
(``prepare_data`` as ``fmhub data validate`` runs it: read, column mapping, row checks, label
distribution and token lengths), the peak resident memory of that subprocess, and as a baseline in
the same run the seconds pandas alone takes to parse the same file (no checks, no tokenizer). Exit
code 0 when every file validates in under 10 s with peak memory under 1 GiB, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

LIMIT_S = 10.0
LIMIT_MB = 1024.0
FILES = {  # task -> (file under <task>/large/, extra DataSpec fields)
    "text-classification": ("train_full.csv", {}),
    "token-classification": ("train_full.jsonl", {}),
    "question-answering": ("all.jsonl", {}),
    "summarization": ("train_full.jsonl", {"column_mapping": {"document": "dialogue", "summary": "summary"}}),
    "translation": ("train_full.tsv", {}),
}

CHILD = r"""
import json, resource, sys, time
task_name, path, extra = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
from fmhub.catalog.cards import get_system_card
from fmhub.catalog.sources import require_local_path
from transformers import AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained(str(require_local_path(get_system_card("all-MiniLM-L6-v2"), False)))
from fmhub.services.data_prep import prepare_data
from fmhub.services.specs import DataSpec
from fmhub.tasks import get_task
task = get_task(task_name)
spec = DataSpec(train=path, validation="none", test="none", **extra)
t0 = time.perf_counter()
prepared = prepare_data(spec, task, tokenizer, task.default_hyperparameters.get("max_seq_length", 128), 42)
seconds = time.perf_counter() - t0
split = prepared.report.splits[0]
print(json.dumps({"rows_read": split.rows_read, "rows_kept": split.rows_kept, "errors": len(prepared.report.errors),
                  "validate_s": round(seconds, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""

BASELINE = r"""
import sys, time
import pandas as pd
path = sys.argv[1]
t0 = time.perf_counter()
if path.endswith(".csv"):
    frame = pd.read_csv(path, keep_default_na=False)
elif path.endswith(".tsv"):
    frame = pd.read_csv(path, sep="\t", quoting=3, keep_default_na=False)
else:
    frame = pd.read_json(path, lines=True)
print(round(time.perf_counter() - t0, 2), len(frame))
"""


def run_child(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter and return its last stdout line."""
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return proc.stdout.strip().splitlines()[-1]


def main() -> int:
    here = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=here.parent / "shared" / "datasets")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    results, ok = [], True
    print(f"{'file':48} {'rows':>7} {'validate_s':>10} {'peak_mb':>8} {'pandas_s':>8}  check")
    for task, (name, extra) in FILES.items():
        path = args.datasets / task / "large" / name
        figures = json.loads(run_child(CHILD, task, str(path), json.dumps(extra)))
        pandas_s, _ = run_child(BASELINE, str(path)).split()
        figures.update({"file": f"{task}/large/{name}", "size_mb": round(path.stat().st_size / 1e6, 1),
                        "pandas_parse_s": float(pandas_s)})
        passed = figures["validate_s"] < LIMIT_S and figures["peak_rss_mb"] < LIMIT_MB and figures["errors"] == 0
        ok &= passed
        results.append(figures)
        print(f"{figures['file']:48} {figures['rows_read']:>7} {figures['validate_s']:>10} "
              f"{figures['peak_rss_mb']:>8} {figures['pandas_parse_s']:>8}  {'ok' if passed else 'FAIL'}")
    print(f"limits: validate < {LIMIT_S} s, peak memory < {LIMIT_MB:.0f} MB, no errors -> {'all ok' if ok else 'FAILED'}")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
