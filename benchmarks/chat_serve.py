"""Chat endpoint throughput against one-request-at-a-time ``generate``, in one run.

1. Starts ``fmhub serve`` in a temporary FMHUB_HOME (or ``--home``) and deploys the chat model
   (default: the offline SmolLM2-135M-Instruct of the catalog) to an endpoint (continuous batching).
2. Baseline: the same model loaded in this process, with the torch threads of one instance, answers
   the same conversations one at a time with ``model.generate`` (greedy, same ``max_tokens``, stops
   at the end-of-turn token).
3. Ours: ``--clients`` concurrent streaming clients (the official ``openai`` package) send the
   conversations through the endpoint, each client one request after another.

Conversations are the user turns of ``../shared/datasets/chat/test.jsonl`` (the reference reply
dropped). Prints one JSON line per measurement: generated tokens/s in total, time to first token
p50 and p99 (ours: from sending the request to the first content chunk; the baseline: the prefill
and first token of a request that does not wait behind others). Exit code 0 when ours reaches
``--target`` times the baseline's tokens/s.

    python benchmarks/chat_serve.py                   # ~4 min on 2 cores
    python benchmarks/chat_serve.py --requests 16     # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

# the scripts of this folder import fmhub, not each other
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets" / "chat" / "test.jsonl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer in {timeout_s} s")


def conversations(n: int, max_chars: int) -> list[list[dict[str, str]]]:
    """``n`` conversations of the chat test file without their last (reference) reply; user turns
    longer than ``max_chars`` are cut (so prompts stay a few hundred tokens)."""
    out = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        messages = json.loads(line)["messages"]
        if messages[-1]["role"] == "assistant":
            messages = messages[:-1]
        out.append([{"role": m["role"], "content": m["content"][:max_chars]} for m in messages])
        if len(out) == n:
            break
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def baseline(model_path: str, base_path: str | None, convs: list, max_tokens: int, threads: int) -> dict:
    """One request at a time through ``model.generate``."""
    import torch
    from transformers import AutoTokenizer
    from transformers.generation.streamers import BaseStreamer

    from fmhub.tasks.chat_generation import generation_stop_ids
    from fmhub.tasks.adapters import load_causal_lm
    from fmhub.tasks.chat_template import ensure_chat_template

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    ensure_chat_template(tokenizer)
    model = load_causal_lm(model_path, base_path).eval()
    end = generation_stop_ids(model, tokenizer)

    class FirstToken(BaseStreamer):
        def __init__(self) -> None:
            self.calls, self.first_s = 0, None

        def put(self, value) -> None:
            self.calls += 1
            if self.calls == 2 and self.first_s is None:  # the first put is the prompt
                self.first_s = time.perf_counter()

        def end(self) -> None:
            pass

    tokens, ttft = 0, []
    t0 = time.perf_counter()
    for messages in convs:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        streamer = FirstToken()
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, max_new_tokens=max_tokens, do_sample=False, eos_token_id=end,
                                 pad_token_id=tokenizer.pad_token_id or end[0], streamer=streamer)
        new = out[0, ids.shape[1]:].tolist()
        tokens += len(new)
        ttft.append((streamer.first_s or time.perf_counter()) - start)
    wall = time.perf_counter() - t0
    return {"what": "baseline: generate, one request at a time", "requests": len(convs), "threads": threads,
            "generated_tokens": tokens, "wall_s": round(wall, 2), "tokens_per_s": round(tokens / wall, 2),
            "ttft_p50_s": round(percentile(ttft, 0.5), 3), "ttft_p99_s": round(percentile(ttft, 0.99), 3)}


async def ours(url: str, key: str, convs: list, max_tokens: int, clients: int) -> dict:
    """``clients`` concurrent streaming clients, each sending its share of ``convs`` in turn."""
    import openai

    api = openai.AsyncOpenAI(base_url=f"{url}/endpoints/chat/v1", api_key=key, max_retries=0, timeout=600)
    queue: asyncio.Queue = asyncio.Queue()
    for messages in convs:
        queue.put_nowait(messages)
    ttft: list[float] = []
    tokens = 0
    finish: dict[str, int] = {}

    async def client() -> None:
        nonlocal tokens
        while not queue.empty():
            messages = queue.get_nowait()
            start = time.perf_counter()
            first = None
            stream = await api.chat.completions.create(model="chat", messages=messages, max_tokens=max_tokens,
                                                       temperature=0, stream=True,
                                                       stream_options={"include_usage": True})
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content and first is None:
                    first = time.perf_counter() - start
                if chunk.choices and chunk.choices[0].finish_reason:
                    reason = chunk.choices[0].finish_reason
                    finish[reason] = finish.get(reason, 0) + 1
                if chunk.usage:
                    tokens += chunk.usage.completion_tokens
            ttft.append(first if first is not None else time.perf_counter() - start)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    await api.close()
    return {"what": f"fmhub endpoint: {clients} concurrent streaming clients", "requests": len(convs),
            "generated_tokens": tokens, "wall_s": round(wall, 2), "tokens_per_s": round(tokens / wall, 2),
            "ttft_p50_s": round(percentile(ttft, 0.5), 3), "ttft_p99_s": round(percentile(ttft, 0.99), 3),
            "finish_reasons": finish}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="SmolLM2-135M-Instruct", help="catalog or workspace chat model")
    parser.add_argument("--home", type=Path, help="FMHUB_HOME to use (default: a temporary one)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=16, help="conversations in all (each side)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--max-chars", type=int, default=400, help="longest user turn, in characters")
    parser.add_argument("--target", type=float, default=3.0, help="tokens/s ratio ours / baseline to pass")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="fmhub-chat-bench-"))
    env = {**os.environ, "FMHUB_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    os.environ.update(FMHUB_HOME=str(home), HF_HUB_OFFLINE="1")
    convs = conversations(args.requests, args.max_chars)
    threads = max(1, (os.cpu_count() or 2) // 2)  # what one instance of `fmhub serve` takes

    from fmhub.services.context import Context
    from fmhub.services.models import resolve_model

    resolved = resolve_model(Context.from_settings(), args.model)  # fetches/dequantises a catalog model once
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(home / "serve.log", "ab")
    server = subprocess.Popen([sys.executable, "-m", "fmhub", "serve", "--port", str(port)], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"{url}/health")
        import fmhub

        client = fmhub.Client(url=url)
        client.endpoints.create("chat")
        client.endpoints.deploy("chat", args.model, "blue", task="chat-completion", device=args.device,
                                max_batch_size=args.clients, max_queue=args.requests)
        key = client.endpoints.keys("chat")["primary_key"]
        asyncio.run(ours(url, key, convs[:2], 4, 2))  # warm-up
        result = asyncio.run(ours(url, key, convs, args.max_tokens, args.clients))
        status = next(d for d in client.endpoints.get("chat")["deployments"] if d["name"] == "blue")
        result.update(max_step_batch=status.get("max_step_batch"), runtime=status.get("runtime_detail"))
        print(json.dumps(result), flush=True)
        client.close()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    base = baseline(str(resolved.path), str(resolved.base_path) if resolved.base_path else None, convs,
                    args.max_tokens, threads)
    print(json.dumps(base), flush=True)
    ratio = result["tokens_per_s"] / base["tokens_per_s"] if base["tokens_per_s"] else float("inf")
    passed = ratio >= args.target
    print(json.dumps({"check": f"tokens/s ours / baseline >= {args.target:g}", "ratio": round(ratio, 2),
                      "passed": passed}), flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
