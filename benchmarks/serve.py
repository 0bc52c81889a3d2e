"""Online endpoint throughput and latency against a baseline server, in one run.

1. Fine-tunes the packaged all-MiniLM-L6-v2 on SST-2 (a short run: the classifier's accuracy is
   not what is measured) in a temporary FMHUB_HOME, or reuses ``--home`` with a model ``sst2:1``.
2. Starts the baseline: one transformers ``pipeline`` call per request behind a plain FastAPI
   route (``pipeline_server.py``), and measures it with C concurrent clients, one SST-2 test
   sentence per request.
3. With ``--peer litserve``: LitServe (benchmark-only dependency, ``pip install litserve==0.2.19``)
   at its best setting for the machine (``litserve_server.py``: one worker per core, batching 32 /
   10 ms), measured the same way; each answer is checked against the model's fp32 label.
4. Starts ``fmhub serve``, deploys the same model to an endpoint with the defaults (instances,
   threads and runtime chosen by fmhub; ``--instances`` and ``--runtime`` override them), and
   measures it the same way. Every answer is checked against the deployment's own label for that
   sentence (a mixed-up answer counts as wrong).
5. Soak: twice the measured capacity, open loop, for ``--soak-s`` seconds: counts 5xx, 429, wrong
   answers, and samples the server's memory (its whole process tree) every second.

Prints one JSON line per measurement and the checks: ours >= 4x the baseline's requests/s with a
lower p99; with ``--peer litserve`` ours >= 2x LitServe's requests/s with a lower p99; in the soak
no 5xx, no wrong or lost answers, memory growth < 200 MB. Exit code 0 when all pass.

    python benchmarks/serve.py --peer litserve  # ~8 min on 2 cores
    python benchmarks/serve.py --quick          # fewer requests, 20 s soak
"""

from __future__ import annotations

import argparse
import asyncio
import csv
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import closed_loop, open_loop  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets" / "text-classification"


def lit_version() -> str:
    """The installed LitServe's version."""
    from importlib.metadata import version

    return version("litserve")


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


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def prepare_model(home: Path, env: dict[str, str]) -> None:
    """Fine-tune a classifier ``sst2:1`` into ``home`` (skipped when it exists)."""
    if (home / "artifacts" / "models" / "sst2" / "1" / "config.json").is_file():
        return
    print("fine-tuning the classifier (short run) ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "fmhub", "finetune", "--model", "all-MiniLM-L6-v2", "--task",
                    "text-classification", "--train", str(DATA / "train.csv"), "--validation", "none", "--test",
                    str(DATA / "test.csv"), "--max-steps", "120", "--max-seq-length", "64", "--registered-model-name",
                    "sst2", "--json"], env=env, check=True, stdout=subprocess.DEVNULL)


def measure(label: str, url: str, bodies: list[bytes], n: int, c: int, headers: dict[str, str], check=None) -> dict:
    result = asyncio.run(closed_loop(url, bodies, n, c, headers, check))
    result["label"] = label
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, help="FMHUB_HOME to use (default: a temporary one)")
    ap.add_argument("-n", type=int, default=2000, help="requests per closed-loop measurement")
    ap.add_argument("-c", type=int, default=64, help="concurrent clients")
    ap.add_argument("--runtime", default=None,
                    choices=["auto", "pytorch", "pytorch-bf16", "pytorch-int8", "onnx"],
                    help="the deployment's runtime (default: fmhub's default, auto)")
    ap.add_argument("--instances", type=int, default=None,
                    help="instances of the deployment (default: fmhub's default, one per core for this model)")
    ap.add_argument("--peer", choices=["none", "litserve"], default="none",
                    help="also measure LitServe at its best setting (workers = cores, batching 32 / 10 ms)")
    ap.add_argument("--max-batch-size", type=int, default=None, help="default: fmhub's (32)")
    ap.add_argument("--max-batch-wait-ms", type=float, default=None, help="default: fmhub's (10, adaptive)")
    ap.add_argument("--soak-s", type=float, default=60.0)
    ap.add_argument("--quick", action="store_true", help="n=600, 20 s soak")
    a = ap.parse_args()
    if a.quick:
        a.n, a.soak_s = 600, 20.0
    home = a.home or Path(tempfile.mkdtemp(prefix="fmhub-serve-bench-"))
    env = {**os.environ, "FMHUB_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("FMHUB_DATABASE_URL", None)
    prepare_model(home, env)
    model_dir = home / "artifacts" / "models" / "sst2" / "1"
    with (DATA / "test.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    sentences = [r["sentence"] for r in rows]
    gold = [r["label"] for r in rows]

    # -- baseline ---------------------------------------------------------------------------------
    port = free_port()
    base = subprocess.Popen([sys.executable, str(Path(__file__).parent / "pipeline_server.py"), str(model_dir),
                             str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        bodies = [json.dumps({"text": s}).encode() for s in sentences]
        baseline = measure("baseline: FastAPI + pipeline per request", f"http://127.0.0.1:{port}/predict",
                           bodies, a.n, a.c, {})
    finally:
        stop(base)

    # -- the peer ---------------------------------------------------------------------------------
    peer = None
    if a.peer == "litserve":
        from transformers import pipeline

        fp32_labels = [p["label"] for p in pipeline("text-classification", model=str(model_dir), device=-1)(
            sentences, batch_size=32, truncation=True)]
        port = free_port()
        lit = subprocess.Popen([sys.executable, str(Path(__file__).parent / "litserve_server.py"), str(model_dir),
                                str(port), str(os.cpu_count() or 1)], env=env, stdout=subprocess.DEVNULL,
                               stderr=open(home / "litserve-bench.log", "ab"))
        try:
            wait_http(f"http://127.0.0.1:{port}/health", timeout_s=300)
            bodies = [json.dumps({"text": s}).encode() for s in sentences]
            peer = measure(f"LitServe {lit_version()} ({os.cpu_count()} workers, batch 32 / 10 ms)",
                           f"http://127.0.0.1:{port}/predict", bodies, a.n, a.c, {},
                           lambda i, body: body["label"] == fp32_labels[i])
        finally:
            stop(lit)

    # -- fmhub endpoint ---------------------------------------------------------------------------
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "fmhub", "serve", "--port", str(port), "--no-scheduler",
                               "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(home / "serve-bench.log", "ab"))
    try:
        root = f"http://127.0.0.1:{port}"
        wait_http(root + "/health")
        api = root + "/api/v1"
        httpx.delete(api + "/endpoints/bench", timeout=60)  # a fresh endpoint when --home is reused
        httpx.post(api + "/endpoints", json={"name": "bench"}, timeout=30)
        given = {"instances": a.instances, "runtime": a.runtime, "max_batch_size": a.max_batch_size,
                 "max_batch_wait_ms": a.max_batch_wait_ms}
        settings = {k: v for k, v in given.items() if v is not None}  # the rest: fmhub's defaults
        key = httpx.get(api + "/endpoints/bench/keys").json()["primary_key"]
        headers = {"Authorization": f"Bearer {key}"}
        score = root + "/endpoints/bench/score"
        r = httpx.post(api + "/endpoints/bench/deployments", timeout=600,
                       json={"name": "blue", "model": "sst2:1", **settings})
        r.raise_for_status()
        expected = []
        for i in range(0, len(sentences), 64):  # the deployment's answers, 64 sentences per request
            out = httpx.post(score, headers=headers, timeout=120, json={"input_data": sentences[i:i + 64]}).json()
            expected.extend(p["label"] for p in out["predictions"])
        shown = next(d for d in httpx.get(api + "/endpoints/bench").json()["deployments"] if d["name"] == "blue")
        accuracy = sum(p == g for p, g in zip(expected, gold)) / len(gold)
        print(json.dumps({"deployment": {k: shown.get(k) for k in ("instances", "runtime", "max_batch_size",
                                                                     "max_batch_wait_ms", "runtime_detail")},
                          "test_accuracy": round(accuracy, 4)}), flush=True)
        bodies = [json.dumps({"input_data": [s]}).encode() for s in sentences]

        def check(i: int, body: dict) -> bool:
            return body["deployment"] == "blue" and body["predictions"][0]["label"] == expected[i]

        ours = measure(f"fmhub endpoint ({shown['instances']} instances, {shown.get('runtime_detail')})",
                       score, bodies, a.n, a.c, headers, check)
        shown = next(d for d in httpx.get(api + "/endpoints/bench").json()["deployments"] if d["name"] == "blue")
        print(json.dumps({"mean_batch_size": shown.get("mean_batch_size")}), flush=True)
        rate = 2 * ours["req_per_s"]
        soak = asyncio.run(open_loop(score, bodies, rate, a.soak_s, headers, check, pid=server.pid))
        soak["label"] = f"soak: 2x capacity ({rate:.0f} req/s offered) for {a.soak_s:.0f} s"
        print(json.dumps(soak), flush=True)
    finally:
        stop(server)

    fivexx = sum(v for k, v in soak["statuses"].items() if int(k) >= 500)
    answered = sum(soak["statuses"].values())
    checks = {
        f"throughput >= 4x baseline ({ours['req_per_s']} vs {baseline['req_per_s']} req/s, "
        f"{ours['req_per_s'] / baseline['req_per_s']:.2f}x)": ours["req_per_s"] >= 4 * baseline["req_per_s"],
        f"p99 lower than baseline ({ours['p99_ms']} vs {baseline['p99_ms']} ms)": ours["p99_ms"] < baseline["p99_ms"],
        **({f"throughput >= 2x LitServe ({ours['req_per_s']} vs {peer['req_per_s']} req/s, "
            f"{ours['req_per_s'] / peer['req_per_s']:.2f}x)": ours["req_per_s"] >= 2 * peer["req_per_s"],
            f"p99 lower than LitServe ({ours['p99_ms']} vs {peer['p99_ms']} ms)": ours["p99_ms"] < peer["p99_ms"],
            f"LitServe: every answer matches the model's label (wrong {peer['wrong_answers']}, ok {peer['ok']})":
                peer["wrong_answers"] == 0 and peer["ok"] == a.n} if peer else {}),
        "closed loop: every answer matches its request": ours["wrong_answers"] == 0 and ours["ok"] == a.n,
        f"soak: no 5xx ({fivexx})": fivexx == 0,
        f"soak: no wrong or lost answers (wrong {soak['wrong_answers']}, transport errors "
        f"{soak['transport_errors']}, answered {answered} of {soak['n']})":
            soak["wrong_answers"] == 0 and soak["transport_errors"] == 0 and answered == soak["n"],
        f"soak: memory bounded ({soak['rss_mb_first']} -> {soak['rss_mb_last']} MB, max {soak['rss_mb_max']})":
            soak["rss_mb_max"] is not None and soak["rss_mb_max"] - soak["rss_mb_first"] < 200,
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
