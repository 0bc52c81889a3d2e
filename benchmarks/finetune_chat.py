"""Chat fine-tuning benchmark: fmhub against TRL's ``SFTTrainer``, same data, model, LoRA and steps.

One run trains, each in its own subprocess and one after the other:

  trl    TRL 1.16 ``SFTTrainer`` set up as its documentation shows for assistant-only loss with LoRA:
         a conversational ``messages`` dataset, ``SFTConfig(assistant_only_loss=True, ...)`` and
         ``peft_config=LoraConfig(...)``. ``assistant_only_loss`` needs a chat template with
         ``{% generation %}`` / ``{% endgeneration %}`` markers; SmolLM2's template has none and TRL
         ships no training template for it, so, as TRL's documentation says, the model's own template
         is used with the markers added around each assistant reply and its end-of-turn token
         (:data:`SMOLLM2_TRAINING_TEMPLATE`; the rendered text is unchanged, checked at start). Other
         SFTConfig values are TRL's documented defaults (``gradient_checkpointing=True``,
         ``bf16=True``, the chunked ``nll`` loss), except the shared settings below.
  fmhub  ``fmhub.services.finetune.run_finetune`` (task ``chat-completion``, LoRA) in a fresh
         temporary ``FMHUB_HOME``; the registered adapter is loaded on its base for the test.

Shared: the seeded ``--rows`` subset of ``chat/train.jsonl``, the model, LoRA r / alpha / dropout /
targets (16 / 32 / 0.05 / all linear layers), per-device batch 8, learning rate 2e-4, warm-up 3%,
linear schedule, ``--max-steps`` (default one epoch of the subset), seed, max length 1,024.

Each trained model then answers the ``--test-rows`` test rows with the same greedy generation
(:meth:`fmhub.tasks.chat_completion.ChatCompletion.predict`, 128 new tokens at most, stops at the
end-of-turn token), scored per source with the chat task's metrics (ROUGE-L for the DialogSum
sources, chrF and BLEU for Multi30k, SQuAD F1 / exact match for SQuAD).

Figures per config: trained tokens per second (non-padding tokens of the batches trained: TRL's own
``num_tokens`` count; for fmhub the rows its seeded length-bucketed order puts in the steps trained,
rendered with the chat template; divided by the training time: ``trainer.train()`` for TRL, fmhub's
own training time for fmhub), peak memory
(process RSS; ``torch.cuda.max_memory_allocated`` on CUDA), test metrics per source.

Checks (exit code 0 when all pass, 1 otherwise): fmhub tokens/s >= 1.5x TRL's; for every source,
fmhub's headline metric (ROUGE-L, chrF, SQuAD F1; in points, 0-100) >= TRL's - 1.

Usage::

    python benchmarks/finetune_chat.py                         # 800 rows, one epoch (100 steps)
    python benchmarks/finetune_chat.py --max-steps 30 --json-out /tmp/chat.json
    python benchmarks/finetune_chat.py --quick                 # smoke: 24 rows, 2 steps, 8 test rows
    python benchmarks/finetune_chat.py --device cuda --model NAME
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # the scripts of this folder import fmhub, not each other

CONFIGS = ("trl", "fmhub")
TASK = "chat-completion"
MIN_SPEEDUP = 1.5
MAX_METRIC_GAP = 1.0  # points
HEADLINE = {"dialogsum-summary": "rougeL", "dialogsum-chat": "rougeL", "multi30k-en-de": "chrf", "squad": "f1"}
LORA = {"r": 16, "alpha": 32.0, "dropout": 0.05, "targets": "all-linear"}
BATCH = 8
LR = 2e-4
WARMUP = 0.03
MAX_LENGTH = 1024
MAX_NEW_TOKENS = 128

# SmolLM2-Instruct's chat template (ChatML with a default system prompt) with TRL's generation markers
# around each assistant reply and its end-of-turn token.
SMOLLM2_TRAINING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# -- data ---------------------------------------------------------------------------------------
def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def subset(rows: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` rows drawn without replacement by ``random.Random(seed)`` (the file order if n >= len)."""
    if n >= len(rows):
        return list(rows)
    return random.Random(seed).sample(rows, n)


def resolve(home: Path, model: str) -> Path:
    """The catalog model's local folder (a GGUF model is dequantised once into ``home``)."""
    os.environ["FMHUB_HOME"] = str(home)
    from fmhub.config import Settings
    from fmhub.services.context import Context
    from fmhub.services.models import resolve_model

    return Path(resolve_model(Context.from_settings(Settings(home=home)), model).path)


def template_lengths(tokenizer: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Tokens per row rendered with the chat template (cut at :data:`MAX_LENGTH`), in file order."""
    from fmhub.tasks.chat_template import ensure_chat_template

    ensure_chat_template(tokenizer)
    out = []
    for row in rows:
        ids = tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=False)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        out.append(min(len(ids), MAX_LENGTH))
    return out


def fmhub_tokens_trained(lengths: list[int], steps: int, seed: int) -> int:
    """Non-padding tokens of the rows fmhub's first ``steps`` batches hold: its training order is
    :func:`fmhub.training.sampler.bucketed_indices` seeded with the run's seed, replayed here."""
    import torch

    from fmhub.training.sampler import bucketed_indices
    from fmhub.training.trainer import MEGA_BATCH_MULT

    order: list[int] = []
    generator = torch.Generator().manual_seed(seed)
    while len(order) < steps * BATCH:  # later epochs continue the same generator
        order += bucketed_indices(lengths, BATCH, MEGA_BATCH_MULT, generator)
    return sum(lengths[i] for i in order[:steps * BATCH])


def peak_memory_mb(device: str) -> dict[str, float]:
    import resource

    import torch

    out = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device == "cuda" and torch.cuda.is_available():
        out["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def test_metrics(model: Any, tokenizer: Any, test_rows: list[dict[str, Any]], device: str) -> dict[str, Any]:
    """Greedy replies to the test rows (the chat task's ``predict``), scored per source and overall."""
    from fmhub.tasks.chat_completion import ChatCompletion
    from fmhub.tasks.chat_metrics import chat_metrics

    task = ChatCompletion()
    model.to(device).eval()
    t0 = time.perf_counter()
    results = task.predict(model, tokenizer, [r["messages"] for r in test_rows], batch_size=16,
                           max_seq_length=MAX_LENGTH, max_new_tokens=MAX_NEW_TOKENS)
    gen_s = time.perf_counter() - t0
    preds = [r["generated_text"] for r in results]
    refs = [list(r["references"]) if r.get("references") else [r["messages"][-1]["content"]] for r in test_rows]
    per_source: dict[str, Any] = {}
    for source in sorted({r["source"] for r in test_rows}):
        idx = [i for i, r in enumerate(test_rows) if r["source"] == source]
        m = chat_metrics([preds[i] for i in idx], [refs[i] for i in idx])
        per_source[source] = {k: v for k, v in m.items() if not k.endswith("signature")}
    stops = sum(r["finish_reason"] == "stop" for r in results)
    return {"per_source": per_source, "generation_s": round(gen_s, 1), "stopped": stops, "n": len(results),
            "samples": [{"source": test_rows[i]["source"], "reply": preds[i][:200]} for i in range(min(3, len(preds)))]}


# -- children -----------------------------------------------------------------------------------
def child_trl(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    path = resolve(work / "home", args.model)
    train_rows = read_jsonl(work / "train.jsonl")
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if "SmolLM" in args.model or "generation" not in (tokenizer.chat_template or ""):
        sample = train_rows[0]["messages"]
        original = tokenizer.apply_chat_template(sample, tokenize=False)
        tokenizer.chat_template = SMOLLM2_TRAINING_TEMPLATE
        if tokenizer.apply_chat_template(sample, tokenize=False) != original:
            raise SystemExit("the training template with generation markers renders differently from the model's")
    set_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    config = SFTConfig(
        output_dir=str(work / "trl_out"),
        assistant_only_loss=True,
        max_length=MAX_LENGTH,
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        warmup_steps=WARMUP,
        lr_scheduler_type="linear",
        weight_decay=0.0,
        max_steps=args.max_steps,
        seed=args.seed,
        data_seed=args.seed,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=args.device == "cpu",
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list([{"messages": r["messages"]} for r in train_rows]),
        processing_class=tokenizer,
        peft_config=LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                               target_modules=LORA["targets"], task_type="CAUSAL_LM"),
    )
    t0 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t0
    memory = peak_memory_mb(args.device)
    logged = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h]
    if logged:  # TRL's own count: the attention mask's sum over the batches trained
        tokens = float(logged[-1])
    else:
        tokens = sum(template_lengths(tokenizer, train_rows)) * trainer.state.global_step * BATCH / len(train_rows)
    out = {"config": "trl", "train_s": round(train_s, 1), "steps": trainer.state.global_step,
           "tokens": round(tokens), "tokens_per_s": round(tokens / train_s, 1),
           "final_loss": next((h["loss"] for h in reversed(trainer.state.log_history) if "loss" in h), None),
           **memory}
    model = trainer.model.merge_and_unload()
    out["test"] = test_metrics(model, tokenizer, read_jsonl(work / "test.jsonl"), args.device)
    return out


def child_fmhub(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from transformers import AutoTokenizer

    home = work / "home"
    path = resolve(home, args.model)  # warms the dequantised copy outside the timed run
    from fmhub.config import Settings
    from fmhub.services.context import Context
    from fmhub.services.finetune import run_finetune
    from fmhub.services.models import resolve_model
    from fmhub.services.specs import FinetuneSpec
    from fmhub.tasks.adapters import is_adapter_folder
    from fmhub.tasks.chat_completion import ChatCompletion

    train_rows = read_jsonl(work / "train.jsonl")
    spec = FinetuneSpec(model=args.model, task=TASK, device=args.device, register_model=True,
                        data={"train": str(work / "train.jsonl"), "validation": "none", "test": "none"},
                        hyperparameters={"finetuning_type": "lora", "lora_r": LORA["r"], "lora_alpha": LORA["alpha"],
                                         "lora_dropout": LORA["dropout"], "lora_target_modules": ["all-linear"],
                                         "per_device_train_batch_size": BATCH, "learning_rate": LR,
                                         "warmup_steps": WARMUP, "lr_scheduler_type": "linear", "weight_decay": 0.0,
                                         "max_steps": args.max_steps, "seed": args.seed,
                                         "max_seq_length": MAX_LENGTH})
    ctx = Context.from_settings(Settings(home=home))
    t0 = time.perf_counter()
    result = run_finetune(ctx, spec)
    end_to_end = time.perf_counter() - t0
    memory = peak_memory_mb(args.device)
    train_s = float(result.train["runtime_s"]) - float(result.train.get("eval_runtime_s") or 0.0)
    steps = int(result.train["global_step"])
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    tokens = fmhub_tokens_trained(template_lengths(tokenizer, train_rows), steps, args.seed)
    resolved = resolve_model(ctx, result.model_version.ref)
    out = {"config": "fmhub", "train_s": round(train_s, 1), "steps": steps, "tokens": round(tokens),
           "tokens_per_s": round(tokens / train_s, 1), "end_to_end_s": round(end_to_end, 1),
           "registered": result.model_version.ref, "adapter": is_adapter_folder(resolved.path),
           "device": result.train.get("device"), **memory}
    task = ChatCompletion()
    model = task.load_model(str(resolved.path), None, base_path=str(resolved.base_path) if resolved.base_path else None)
    tokenizer = AutoTokenizer.from_pretrained(str(resolved.path))
    out["test"] = test_metrics(model, tokenizer, read_jsonl(work / "test.jsonl"), args.device)
    return out


# -- parent -------------------------------------------------------------------------------------
def run_config(config: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", TRANSFORMERS_VERBOSITY="error", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", config, "--work", str(work),
           "--model", args.model, "--device", args.device, "--max-steps", str(args.max_steps),
           "--seed", str(args.seed)]
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


def headline(result: dict[str, Any], source: str) -> float | None:
    """The source's headline metric in points (0-100, as the chat task's metrics are), or None."""
    metrics = result.get("test", {}).get("per_source", {}).get(source)
    if not metrics:
        return None
    return float(metrics[HEADLINE.get(source, "rougeL")])


def checks(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    trl, fm = results.get("trl", {}), results.get("fmhub", {})
    out = []
    if "tokens_per_s" in trl and "tokens_per_s" in fm:
        ratio = fm["tokens_per_s"] / trl["tokens_per_s"]
        out.append({"check": f"fmhub tokens/s >= {MIN_SPEEDUP}x TRL", "ok": ratio >= MIN_SPEEDUP,
                    "detail": f"{fm['tokens_per_s']} / {trl['tokens_per_s']} = {ratio:.2f}x"})
    else:
        out.append({"check": f"fmhub tokens/s >= {MIN_SPEEDUP}x TRL", "ok": False, "detail": "a config failed"})
    sources = sorted(set(trl.get("test", {}).get("per_source", {})) | set(fm.get("test", {}).get("per_source", {})))
    for source in sources:
        a, b = headline(fm, source), headline(trl, source)
        name = HEADLINE.get(source, "rougeL")
        ok = a is not None and b is not None and a >= b - MAX_METRIC_GAP - 1e-9
        out.append({"check": f"{source} {name}: fmhub >= TRL - {MAX_METRIC_GAP:g}", "ok": ok,
                    "detail": f"fmhub {a if a is None else round(a, 2)} vs TRL {b if b is None else round(b, 2)}"})
    if "fmhub" in results and not fm.get("adapter", False):
        out.append({"check": "fmhub trained a LoRA adapter", "ok": False, "detail": "no adapter registered"})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "datasets")
    p.add_argument("--rows", type=int, default=800, help="training rows (seeded subset of chat/train.jsonl)")
    p.add_argument("--test-rows", type=int, default=0, help="test rows (0: all 400)")
    p.add_argument("--max-steps", type=int, default=0, help="optimizer steps (0: one epoch of the subset)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--model", default="SmolLM2-135M-Instruct", help="catalog model name")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--quick", action="store_true", help="smoke run: 24 rows, 2 steps, 8 test rows")
    p.add_argument("--json-out", type=Path)
    p.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        out = child_trl(args, args.work) if args.child == "trl" else child_fmhub(args, args.work)
        print(json.dumps(out), flush=True)  # the parent reads this last stdout line
        return 0
    if args.quick:
        args.rows, args.max_steps, args.test_rows = 24, 2, 8
    data = args.datasets / "chat"
    train = subset(read_jsonl(data / "train.jsonl"), args.rows, args.seed)
    test = read_jsonl(data / "test.jsonl")
    if args.test_rows:
        test = subset(test, args.test_rows, args.seed)
    if not args.max_steps:
        args.max_steps = math.ceil(len(train) / BATCH)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_chat_") as tmp:
        work = Path(tmp)
        for name, rows in (("train.jsonl", train), ("test.jsonl", test)):
            with open(work / name, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        for config in [c.strip() for c in args.configs.split(",") if c.strip()]:
            results[config] = run_config(config, args, work)
            print(json.dumps(results[config]), flush=True)
    print(f"\nrows {len(train)}, steps {args.max_steps}, batch {BATCH}, test rows {len(test)}, device {args.device}, "
          f"model {args.model}")
    print(f"{'config':<7} {'train_s':>8} {'tokens/s':>9} {'peak RSS MB':>12}  per-source test metric")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<7} error: {r['error']}")
            continue
        per = ", ".join(f"{s} {HEADLINE.get(s, 'rougeL')} {headline(r, s):.2f}" for s in r["test"]["per_source"])
        cuda = f" (cuda {r['cuda_max_allocated_mb']})" if "cuda_max_allocated_mb" in r else ""
        print(f"{name:<7} {r['train_s']:>8.1f} {r['tokens_per_s']:>9.1f} {r['peak_rss_mb']:>12.0f}{cuda}  {per}")
    found = checks(results)
    for c in found:
        print(f"[{'ok' if c['ok'] else 'FAIL'}] {c['check']}: {c['detail']}")
    if args.json_out:
        args.json_out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                             "results": results, "checks": found}, indent=2))
    return 0 if found and all(c["ok"] for c in found) else 1


if __name__ == "__main__":
    sys.exit(main())
