"""bf16 on the CPU for chat: LoRA training steps under bf16 autocast against fp32, and test generation
by a bf16 copy of the weights against fp32, SmolLM2-135M-Instruct on the shared chat data.

Training: fmhub's labelled-positions loss (``training/causal_loss.py``), LoRA rank 16 on every linear
layer, batches of ``--batch-size`` rows cut or padded to ``--tokens`` tokens with the last 20% of
each row labelled, AdamW; fp32 and bf16 alternate (``--rounds``), the first step of each round is
not timed. Generation: ``ChatCompletion.predict`` on a seeded sample of the test file (greedy, up to
128 new tokens) by the fp32 model and by its bf16 copy (``training.precision.bf16_copy``).

    python benchmarks/cpu_bf16.py                  # both parts, ~6 minutes on 2 cores
    python benchmarks/cpu_bf16.py --skip-generation
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # the scripts of this folder import fmhub, not each other


def train_rates(path: str, train_file: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    """Trained tokens/s per round for fp32 and bf16 (the same batches, the same LoRA start)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fmhub.training.causal_loss import labelled_loss

    tokenizer = AutoTokenizer.from_pretrained(path)
    rows = [json.loads(line) for line in train_file.read_text(encoding="utf-8").splitlines()]
    random.Random(args.seed).shuffle(rows)
    texts = [tokenizer.apply_chat_template(r["messages"], tokenize=False) for r in rows]
    steps = args.steps + 1
    batches = []
    for step in range(steps):
        enc = tokenizer(texts[step * args.batch_size:(step + 1) * args.batch_size], return_tensors="pt",
                        padding="max_length", truncation=True, max_length=args.tokens)
        labels = enc["input_ids"].clone()
        labels[:, :int(args.tokens * 0.8)] = -100
        labels[enc["attention_mask"] == 0] = -100
        batches.append({**enc, "labels": labels})
    rates: dict[str, list[float]] = {"fp32": [], "bf16": []}
    losses: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(args.rounds):
        for mode in ("fp32", "bf16"):
            torch.manual_seed(args.seed)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
            model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                                     target_modules="all-linear", task_type="CAUSAL_LM"))
            optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
            timed = 0.0
            run_losses = []
            for i, batch in enumerate(batches):
                t0 = time.perf_counter()
                ctx = torch.autocast("cpu", dtype=torch.bfloat16) if mode == "bf16" else contextlib.nullcontext()
                with ctx:
                    loss = labelled_loss(model, batch)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                if i:
                    timed += time.perf_counter() - t0
                run_losses.append(round(loss.item(), 4))
            rate = args.steps * args.batch_size * args.tokens / timed
            rates[mode].append(round(rate, 1))
            losses[mode] = run_losses
            print(json.dumps({"part": "train", "mode": mode, "tokens_per_s": round(rate, 1), "losses": run_losses}),
                  flush=True)
            del model, optimizer
    return {"rates": rates, "losses": losses}  # type: ignore[dict-item]


def generation_rates(path: str, test_file: Path, args: argparse.Namespace) -> dict[str, float]:
    """Seconds per generated reply, fp32 model against its bf16 copy."""
    from transformers import AutoTokenizer

    from fmhub.tasks import get_task
    from fmhub.training.precision import bf16_copy

    task = get_task("chat-completion")
    tokenizer = AutoTokenizer.from_pretrained(path)
    rows = [json.loads(line) for line in test_file.read_text(encoding="utf-8").splitlines()]
    random.Random(args.seed).shuffle(rows)
    inputs = [r["messages"] for r in rows[:args.rows]]
    fp32 = task.load_model(path, None)
    out: dict[str, float] = {}
    for mode in ("fp32", "bf16"):
        model = bf16_copy(fp32) if mode == "bf16" else fp32
        t0 = time.perf_counter()
        replies = task.predict(model, tokenizer, inputs, batch_size=args.generation_batch_size, max_seq_length=1024,
                               max_new_tokens=128)
        out[mode] = round((time.perf_counter() - t0) / len(inputs), 3)
        stopped = sum(r["finish_reason"] == "stop" for r in replies)
        print(json.dumps({"part": "generate", "mode": mode, "seconds_per_row": out[mode], "rows": len(inputs),
                          "stopped": stopped}), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=str(REPO.parent / "shared" / "datasets"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=200, help="tokens per row (cut or padded)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=2, help="fp32/bf16 alternations")
    parser.add_argument("--rows", type=int, default=32, help="test rows generated")
    parser.add_argument("--generation-batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: every core)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-generation", action="store_true")
    args = parser.parse_args()

    import os

    import torch

    from fmhub.config import Settings
    from fmhub.services.context import Context
    from fmhub.services.models import resolve_model
    from fmhub.training.precision import cpu_has_native_bf16

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    path = str(resolve_model(Context.from_settings(Settings()), "SmolLM2-135M-Instruct").path)
    chat = Path(args.datasets) / "chat"
    print(json.dumps({"native_bf16": cpu_has_native_bf16(), "threads": torch.get_num_threads()}), flush=True)
    train = train_rates(path, chat / "train.jsonl", args)
    fp32, bf16 = (sum(v) / len(v) for v in (train["rates"]["fp32"], train["rates"]["bf16"]))
    summary = {"train_tokens_per_s": {"fp32": round(fp32, 1), "bf16": round(bf16, 1)},
               "train_speedup": round(bf16 / fp32, 2)}
    if not args.skip_generation:
        gen = generation_rates(path, chat / "test.jsonl", args)
        summary["generate_seconds_per_row"] = gen
        summary["generate_speedup"] = round(gen["fp32"] / gen["bf16"], 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
