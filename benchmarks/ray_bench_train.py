"""Ray Train throughput: the same fine-tune on 1 and on 2 Ray Train workers (distributed data
parallel), samples per second of training and the wall time of the whole job.

The model is a tiny random BERT built from a config (2 layers, hidden 32; the packaged MiniLM is
too slow for 2 workers on a 2-core CPU): the figures show Ray Train's overhead and scaling, not a
model's speed. Both runs take the same rows per optimizer step (8 on one worker; 4 on each of 2),
the same steps, data and seed. ``samples_per_s`` is measured inside the workers over training only
(rows / training seconds); ``wall_s`` is the job from start to registration, worker start included.
On a machine with 2 CPU cores expect no speed-up from a second worker.

Usage: ``python benchmarks/ray_bench_train.py [--address HOST:PORT] [--device cpu|cuda]``
(``--address`` defaults to ``FMHUB_RAY_ADDRESS``). With ``--device cuda`` each worker asks for one
GPU; a cluster with fewer GPUs than workers skips that row, saying why.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # the scripts of this folder import fmhub, not each other
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
STEPS = 40
GLOBAL_BATCH = 8
ROWS = 256


def _run(ctx: Any, spec: Any) -> dict[str, Any]:
    from fmhub.services import finetune
    from fmhub.services import jobs as jobs_service

    validated = finetune.validate(ctx, spec)
    job = finetune._create_job(ctx, spec, validated[3], validated[4].report)
    job = jobs_service.claim_foreground(ctx, job)
    t0 = time.perf_counter()
    result = finetune.execute_finetune(ctx, job, validated=validated)
    return {"wall_s": round(time.perf_counter() - t0, 1), **result.train}


def bench_train_workers(ray_address: str, device: str = "cpu") -> dict[str, Any]:
    """Fine-tune a tiny BERT on 1 and on 2 Ray Train workers of the cluster at ``ray_address``.

    Args:
        ray_address: The cluster's ``HOST:PORT``.
        device: ``cpu`` (1 CPU per worker) or ``cuda`` (1 GPU and 1 CPU per worker).

    Returns:
        ``{"model", "device", "steps", "global_batch", "runs": {1: {...}, 2: {...}}}``; each run has
        ``samples_per_s``, ``runtime_s`` (training), ``wall_s`` (the whole job), ``global_step``,
        ``workers``, or ``skipped`` (why).
    """
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import build_tiny_bert, write_sentiment_csv

    os.environ["FMHUB_RAY_ADDRESS"] = ray_address
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a loopback head stays on loopback
    home = Path(tempfile.mkdtemp(prefix="fmhub-ray-bench-"))
    os.environ["FMHUB_HOME"] = str(home)
    os.environ.pop("FMHUB_DATABASE_URL", None)
    from fmhub import raycluster
    from fmhub.config import reset_settings
    from fmhub.services import finetune
    from fmhub.services.context import Context
    from fmhub.services.models import import_model
    from fmhub.services.specs import FinetuneSpec

    reset_settings()
    ctx = Context.from_settings()
    import_model(ctx, build_tiny_bert(home / "tiny-bert"), name="tiny-bert", task="text-classification",
                 license="apache-2.0")
    train = write_sentiment_csv(home / "train.csv", n=ROWS)
    gpus = raycluster.cluster_resources(ray_address).gpus if device == "cuda" else 0.0
    runs: dict[int, dict[str, Any]] = {}
    real = finetune.is_distributed
    # One worker through the same Ray Train path (fmhub itself runs a 1-worker job as a plain Ray task).
    finetune.is_distributed = lambda spec: spec.compute == "ray"  # type: ignore[assignment]
    try:
        for workers in (1, 2):
            per_gpu = 1.0 if device == "cuda" else 0.0
            if per_gpu and gpus < workers * per_gpu:
                runs[workers] = {"skipped": f"{workers} workers need {workers:g} GPUs; the cluster has {gpus:g}"}
                continue
            spec = FinetuneSpec(model="tiny-bert:1", task="text-classification", compute="ray",
                                resources={"num_workers": workers, "num_cpus": 1, "num_gpus": per_gpu},
                                data={"train": str(train), "validation": "none", "test": "none",
                                      "column_mapping": {"sentence1": "review", "label": "stars"}},
                                hyperparameters={"max_steps": STEPS, "per_device_train_batch_size": GLOBAL_BATCH // workers,
                                                 "logging_steps": 10, "seed": 7},
                                registered_model_name=f"bench-{workers}")
            runs[workers] = _run(ctx, spec)
    finally:
        finetune.is_distributed = real  # type: ignore[assignment]
    return {"model": "tiny BERT from a config (2 layers, hidden 32)", "device": device, "steps": STEPS,
            "global_batch": GLOBAL_BATCH, "runs": runs}


def print_table(result: dict[str, Any]) -> None:
    """Print :func:`bench_train_workers`'s result as a small table."""
    print(f"Ray Train, {result['model']}, {result['steps']} steps of {result['global_batch']} rows, "
          f"device {result['device']}")
    print(f"{'workers':>7}  {'samples/s':>10}  {'train s':>8}  {'job wall s':>10}")
    for workers, run in result["runs"].items():
        if "skipped" in run:
            print(f"{workers:>7}  skipped: {run['skipped']}")
        else:
            print(f"{workers:>7}  {run['samples_per_s']:>10.1f}  {run['runtime_s']:>8.1f}  {run['wall_s']:>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=os.environ.get("FMHUB_RAY_ADDRESS"), help="the Ray head, HOST:PORT")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    if not args.address:
        parser.error("give --address HOST:PORT or set FMHUB_RAY_ADDRESS")
    print_table(bench_train_workers(args.address, args.device))


if __name__ == "__main__":
    main()
