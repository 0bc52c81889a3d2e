"""Time from submit to the first training step: a local job and a Ray job (tiny model, same data).

Usage::

    scripts/test-services.sh start && eval "$(scripts/test-services.sh env)"
    python benchmarks/ray_bench_submit.py [--ray-address 127.0.0.1:56379] [--json-out FILE]

Each job is a fine-tune of a tiny random BERT (built from a config, 2 layers, hidden 32) on 40
rows, 4 steps, queued with ``services.finetune.submit_finetune`` and started by a
``services.scheduler.Scheduler`` ticked every 0.1 s in this process. Measured per job:

- ``submit_s``: the submit call (data checks; for Ray, the cluster check);
- ``to_first_step_s``: from the queued job to its first ``train`` event (step 1): the job process
  start, imports, model and data loading, and for Ray the connection (first Ray job of the
  process), the task's scheduling on a node and the Ray worker start;
- ``total_s``: from the queued job to its end.

Without a Ray address (``--ray-address``, else ``FMHUB_TEST_RAY_ADDRESS``, else
``FMHUB_RAY_ADDRESS``) only the local job runs. Everything lives in a temporary ``FMHUB_HOME``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/queue.py shadows the standard library's `queue` (torch imports it): drop this folder,
# which Python puts first on the path of a script, before importing anything else.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

WORDS = ("good great fine love wonderful best fun bad awful boring worst dull hate poor movie film the a "
         "is was it this and not very plot acting story").split()
TIMEOUT_S = 300.0


def _tiny_bert(folder: Path) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", ".", "!"] + WORDS
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    return folder


def _data(path: Path, n: int = 40) -> Path:
    good, bad = ["good movie", "great film", "very fun"], ["bad movie", "awful film", "very dull"]
    lines = ["review,stars"] + [f"{(good if i % 2 else bad)[i % 3]} {WORDS[i % len(WORDS)]},{'pos' if i % 2 else 'neg'}"
                                for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(ctx: Any, sched: Any, spec: Any) -> dict[str, float]:
    from fmhub.services import jobs as jobs_service
    from fmhub.services.finetune import submit_finetune

    t0 = time.monotonic()
    job, _ = submit_finetune(ctx, spec)
    queued = time.monotonic()
    first = None
    deadline = queued + TIMEOUT_S
    while time.monotonic() < deadline:
        sched.tick()
        if first is None and any(e.kind == "train" for e in jobs_service.job_events(ctx, job.id)):
            first = time.monotonic()
        done = jobs_service.get_job(ctx, job.id)
        if done.status.value in ("completed", "failed", "canceled") and not any(
                h.job_id == job.id for r in sched.runners.values() for h in r.running()):
            break
        time.sleep(0.1)
    else:
        raise TimeoutError(f"job {job.id} did not end within {TIMEOUT_S:.0f} s")
    if done.status.value != "completed":
        raise RuntimeError(f"job {job.id} {done.status.value}: {done.error}")
    end = time.monotonic()
    return {"submit_s": round(queued - t0, 2), "to_first_step_s": round((first or end) - queued, 2),
            "total_s": round(end - queued, 2)}


def bench_submit_to_first_step(ray_address: str | None) -> dict[str, Any]:
    """Seconds from submit to the first training step for a local job and (with ``ray_address``)
    a Ray job, on the same tiny model and data.

    Args:
        ray_address: ``HOST:PORT`` of a Ray head, or None to time the local job only.

    Returns:
        ``{"local": {submit_s, to_first_step_s, total_s}, "ray": {...} | None, "ray_address": ...}``.

    Raises:
        TimeoutError: a job did not end within 300 s.
        RuntimeError: a job failed (its error).
    """
    from fmhub import raycluster
    from fmhub.config import reset_settings
    from fmhub.runners.local import LocalRunner
    from fmhub.runners.ray import RayRunner
    from fmhub.services.context import Context
    from fmhub.services.models import import_model
    from fmhub.services.scheduler import Scheduler, SchedulerOptions
    from fmhub.services.specs import FinetuneSpec

    saved = {k: os.environ.get(k) for k in ("FMHUB_HOME", "FMHUB_RAY_ADDRESS", "FMHUB_DATABASE_URL")}
    with tempfile.TemporaryDirectory(prefix="fmhub-ray-bench-") as tmp:
        os.environ["FMHUB_HOME"] = str(Path(tmp) / "home")
        os.environ.pop("FMHUB_DATABASE_URL", None)
        if ray_address:
            os.environ["FMHUB_RAY_ADDRESS"] = ray_address
        reset_settings()
        try:
            ctx = Context.from_settings()
            import_model(ctx, _tiny_bert(Path(tmp) / "tiny-bert"), name="tiny-bert", task="text-classification")
            train = _data(Path(tmp) / "reviews.csv")
            runners: dict[str, Any] = {"local": LocalRunner(gpus=0)}
            if ray_address:
                runners["ray"] = RayRunner(address=ray_address)
            sched = Scheduler(ctx, SchedulerOptions(poll_s=0.1, gpus=0), runners=runners)

            def spec(compute: str) -> FinetuneSpec:
                return FinetuneSpec(model="tiny-bert:1", task="text-classification",
                                    data={"train": str(train), "validation": "none", "test": "none",
                                          "column_mapping": {"sentence1": "review", "label": "stars"}},
                                    hyperparameters={"max_steps": 4, "logging_steps": 1,
                                                     "per_device_train_batch_size": 4},
                                    registered_model_name=f"bench-{compute}", device="cpu", compute=compute)

            try:
                result: dict[str, Any] = {"local": _run(ctx, sched, spec("local")), "ray": None,
                                          "ray_address": ray_address}
                if ray_address:
                    result["ray"] = _run(ctx, sched, spec("ray"))
            finally:
                sched.stop()
                if ray_address:
                    raycluster.disconnect()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            reset_settings()
    return result


def print_table(result: dict[str, Any]) -> None:
    """The result as a small table."""
    print(f"{'job':<8}{'submit s':>10}{'to first step s':>18}{'total s':>10}")
    for name in ("local", "ray"):
        row = result.get(name)
        if row is None:
            print(f"{name:<8}{'(no Ray address given)':>38}")
            continue
        print(f"{name:<8}{row['submit_s']:>10.2f}{row['to_first_step_s']:>18.2f}{row['total_s']:>10.2f}")


def main() -> None:
    """Run the benchmark and print the table (and write JSON with ``--json-out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ray-address", default=os.environ.get("FMHUB_TEST_RAY_ADDRESS")
                        or os.environ.get("FMHUB_RAY_ADDRESS"))
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    result = bench_submit_to_first_step(args.ray_address or None)
    print_table(result)
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
