"""CPU deployment runtimes side by side: the order ``--runtime auto`` tries them in.

Loads one text classifier (``--model DIR``, else a short fine-tune of the packaged all-MiniLM-L6-v2 on
SST-2 into a temporary FMHUB_HOME), then, in one process, with the threads one instance of a
default deployment gets (``--threads``, default 1), predicts the SST-2 test sentences through the
task's ``predict`` as an endpoint instance does (length-sorted batches of 8) with each runtime:
``pytorch`` (fp32), ``pytorch-bf16``, ``pytorch-int8`` and ``onnx`` (when ONNX Runtime is installed).
Each runtime runs ``--repeats`` times, alternating, and keeps its best time.

Prints one JSON line per runtime (sentences/s, speed-up over fp32, test accuracy, labels that differ
from fp32) and the order, fastest first.

    python benchmarks/cpu_runtimes.py                 # ~3 min on 2 cores (the fine-tune included)
    python benchmarks/cpu_runtimes.py --model DIR --threads 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.pop(0)  # the scripts of this folder import fmhub, not each other
REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets" / "text-classification"


def fine_tune(home: Path) -> Path:
    """A short fine-tune of MiniLM on SST-2 (120 steps); returns the registered model's folder."""
    env = {**os.environ, "FMHUB_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "fmhub", "finetune", "--model", "all-MiniLM-L6-v2", "--task",
                    "text-classification", "--train", str(DATA / "train.csv"), "--validation", "none", "--test",
                    "none", "--max-steps", "120", "--max-seq-length", "64", "--registered-model-name", "sst2",
                    "--json"], env=env, check=True, stdout=subprocess.DEVNULL)
    return home / "artifacts" / "models" / "sst2" / "1"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="a text-classification model folder (default: fine-tune one)")
    ap.add_argument("--threads", type=int, default=1, help="torch / ONNX Runtime threads (default 1)")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers import AutoTokenizer

    from fmhub.devices import cpu_has_native_bf16
    from fmhub.serving.instance import CPU_FORWARD_BATCH, model_max_tokens
    from fmhub.serving.runtimes import build_runtime, onnx_available
    from fmhub.tasks import get_task

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory(prefix="fmhub-runtimes-") as tmp:
        folder = a.model or fine_tune(Path(tmp))
        with (DATA / "test.csv").open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        sentences, gold = [r["sentence"] for r in rows], [r["label"] for r in rows]
        task = get_task("text-classification")
        model = task.load_model(str(folder), None).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        limit = model_max_tokens(model)
        names = ["pytorch", "pytorch-bf16", "pytorch-int8"] + (["onnx"] if onnx_available() else [])
        served = {name: build_runtime(name, model, task, a.threads) for name in names}
        best = {name: float("inf") for name in names}
        labels = {}
        for _ in range(a.repeats):
            for name in names:
                t0 = time.perf_counter()
                out = task.predict(served[name], tokenizer, sentences, batch_size=CPU_FORWARD_BATCH,
                                   max_seq_length=limit)
                best[name] = min(best[name], time.perf_counter() - t0)
                labels[name] = [p[0]["label"] for p in out]
    print(json.dumps({"native_bf16": cpu_has_native_bf16(), "threads": a.threads, "sentences": len(sentences)}))
    for name in names:
        print(json.dumps({"runtime": name, "sentences_per_s": round(len(sentences) / best[name], 1),
                          "speedup_vs_fp32": round(best["pytorch"] / best[name], 2),
                          "test_accuracy": round(sum(p == g for p, g in zip(labels[name], gold)) / len(gold), 4),
                          "labels_differing_from_fp32": sum(p != q for p, q in zip(labels[name], labels["pytorch"]))}))
    order = sorted(names, key=lambda n: best[n])
    print("fastest first: " + " > ".join(f"{n} ({len(sentences) / best[n]:.0f}/s)" for n in order))
    return 0


if __name__ == "__main__":
    sys.exit(main())
