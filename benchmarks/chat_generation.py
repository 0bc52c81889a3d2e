"""Chat test generation speed: ``ChatCompletion.predict`` (greedy, up to 128 new tokens) on a seeded
sample of the shared chat test file with the offline SmolLM2-135M-Instruct, in seconds per row.

    python benchmarks/chat_generation.py --rows 16 --batch-size 8 --threads 1
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # the scripts of this folder import fmhub, not each other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--test", default=str(REPO.parent / "shared" / "datasets" / "chat" / "test.jsonl"))
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer

    from fmhub.config import Settings
    from fmhub.services.context import Context
    from fmhub.services.models import resolve_model
    from fmhub.tasks import get_task

    torch.set_num_threads(args.threads)
    path = resolve_model(Context.from_settings(Settings()), "SmolLM2-135M-Instruct").path
    task = get_task("chat-completion")
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = task.load_model(str(path), None)
    rows = [json.loads(line) for line in Path(args.test).read_text(encoding="utf-8").splitlines()]
    random.Random(0).shuffle(rows)
    rows = rows[:args.rows]
    t0 = time.perf_counter()
    out = task.predict(model, tokenizer, [r["messages"] for r in rows], batch_size=args.batch_size,
                       max_seq_length=1024, max_new_tokens=args.max_new_tokens)
    took = time.perf_counter() - t0
    stopped = sum(o["finish_reason"] == "stop" for o in out)
    print(json.dumps({"rows": len(rows), "batch_size": args.batch_size, "threads": args.threads,
                      "seconds": round(took, 1), "seconds_per_row": round(took / len(rows), 2),
                      "stopped": stopped}))


if __name__ == "__main__":
    main()
