"""Listing a large catalog over the REST API: ``GET /api/v1/models`` with filters and paging against a
real ``fmhub serve`` holding 10,000 workspace model versions (plus the system catalog).

Usage::

    python benchmarks/api.py [--models 10000] [--requests 200] [--baseline-runs 5] [--json-out FILE]

Steps: a fresh temporary ``FMHUB_HOME``; the database migrated to head and filled in one bulk insert
with ``--models`` workspace model versions (a mix of tasks and licenses, every tenth name with two
versions, each row with a lineage of a few hundred bytes); ``python -m fmhub serve --no-scheduler`` on
a free loopback port; a warm-up; then ``--requests`` sequential requests per query with one
``httpx.Client`` (keep-alive). For each query it prints the median and 95th percentile latency in ms
and the total number of matches, and, as a baseline in the same run, the time of the same page built
the naive way in this process (``services.models.list_models``: every latest version loaded and
filtered in Python, then sliced). Exit code 0 (``PASS``) when every filtered query has a median under
50 ms, 1 (``FAIL``) otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 50.0
TASKS = ["text-classification", "token-classification", "question-answering", "summarization", "translation"]
LICENSES = ["apache-2.0", "mit", "cc-by-4.0", "cc-by-sa-4.0", "other", None]
BASES = ["all-MiniLM-L6-v2", "bert-base-uncased", "roberta-base", "distilbert-base-uncased", "t5-small",
         "flan-t5-base", "minilm-l6-bert2bert", "opus-mt-en-de", "SmolLM2-135M-Instruct", "deberta-v3-base"]
STEMS = ["bert", "roberta", "minilm", "t5", "smollm", "deberta", "distil", "opus", "flan", "bart"]
DOMAINS = ["sst2", "conll", "wnut", "squad", "dialogsum", "scitldr", "multi30k", "reviews", "tickets", "news"]

# (label, query string, filtered?) -- the filtered ones are held to the target.
QUERIES = [
    ("task", {"task": "text-classification", "limit": 50}, True),
    ("license+search", {"license": "apache-2.0", "search": "bert", "limit": 50}, True),
    ("workspace+task+offset", {"registry": "workspace", "task": "translation", "offset": 5000, "limit": 50}, True),
    ("workspace+task+last-page", {"registry": "workspace", "task": "translation", "offset": 1750, "limit": 50}, True),
    ("license=unknown", {"license": "unknown", "limit": 50}, True),
    ("unfiltered", {"limit": 50}, False),
    ("workspace deep page", {"registry": "workspace", "offset": 5000, "limit": 50}, False),
]


def fill(db_url: str, home: Path, n_models: int, seed: int = 0) -> tuple[int, int]:
    """Bulk-insert ``n_models`` workspace model versions; returns (rows, distinct names)."""
    from sqlalchemy import insert

    from fmhub.store.db import get_engine
    from fmhub.store.tables import ModelVersionRow, utcnow

    rng = random.Random(seed)
    engine = get_engine(db_url)  # migrates to head
    rows = []
    i = 0
    while len(rows) < n_models:
        i += 1
        stem, domain = STEMS[i % len(STEMS)], DOMAINS[(i // len(STEMS)) % len(DOMAINS)]
        name = f"{stem}-{domain}-{i:05d}"
        task = TASKS[rng.randrange(len(TASKS))]
        license = LICENSES[rng.randrange(len(LICENSES))]
        base = BASES[i % len(BASES)]
        versions = 2 if i % 10 == 0 else 1
        for version in range(1, versions + 1):
            if len(rows) >= n_models:
                break
            lineage = {
                "source": "finetune", "base_model": base, "base_version": None,
                "architecture": "BertForSequenceClassification", "parameters": 22_713_602,
                "finetuning_tasks": [task], "languages": ["en"],
                "data": [{"name": f"{domain}-train", "version": 1, "sha256": f"{rng.getrandbits(256):064x}"},
                         {"name": f"{domain}-validation", "version": 1, "sha256": f"{rng.getrandbits(256):064x}"}],
                "job_id": f"{rng.getrandbits(64):016x}",
                "hyperparameters": {"learning_rate": 1e-4, "epochs": 3, "batch_size": 32, "seed": 42,
                                    "max_seq_length": 128, "weight_decay": 0.01},
            }
            rows.append({
                "name": name, "version": version, "task": task,
                "path": str(home / "artifacts" / "models" / name / str(version)),
                "license": license, "description": f"{base} fine-tuned on {domain} for {task} (run {version})",
                "base_model": f"{base}", "lineage": lineage,
                "metrics": {"test": {"accuracy": round(rng.random(), 4), "f1_macro": round(rng.random(), 4)}},
                "created_at": utcnow(),
            })
    with engine.begin() as conn:
        conn.execute(insert(ModelVersionRow.__table__), rows)
    return len(rows), i


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, FMHUB_HOME=str(home), HF_HUB_OFFLINE="1")
    env.pop("FMHUB_DATABASE_URL", None)
    return subprocess.Popen([sys.executable, "-m", "fmhub", "serve", "--port", str(port), "--no-scheduler",
                             "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ready(client, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            if client.get("/ready").status_code == 200:
                return
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        time.sleep(0.1)
    raise SystemExit("server not ready in time")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=10_000, help="Workspace model versions to insert.")
    parser.add_argument("--requests", type=int, default=200, help="Timed requests per query.")
    parser.add_argument("--baseline-runs", type=int, default=5, help="Timed in-process naive listings per query.")
    parser.add_argument("--json-out", type=Path, help="Write the results as one JSON document.")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="fmhub-bench-api-")
    home = Path(tmp.name) / "home"
    os.environ["FMHUB_HOME"] = str(home)
    os.environ.pop("FMHUB_DATABASE_URL", None)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import httpx

    from fmhub.config import Settings
    from fmhub.services.context import Context
    from fmhub.services.models import list_models

    ctx = Context.from_settings(Settings(home=home))
    t0 = time.perf_counter()
    n_rows, n_names = fill(ctx.db_url, home, args.models)
    print(f"inserted {n_rows} workspace model versions ({n_names} names) in {time.perf_counter() - t0:.1f} s; "
          f"db {ctx.db_url}", flush=True)

    port = free_port()
    proc = start_server(home, port)
    results = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as client:
            wait_ready(client, proc)
            for label, params, filtered in QUERIES:
                url = "/api/v1/models"
                for _ in range(10):  # warm-up: caches, connections, SQLite page cache
                    client.get(url, params=params).raise_for_status()
                times = []
                body = None
                for _ in range(args.requests):
                    t = time.perf_counter()
                    response = client.get(url, params=params)
                    times.append((time.perf_counter() - t) * 1000)
                    response.raise_for_status()
                    body = response.json()
                assert body is not None
                # Baseline: the same page the naive way, in this process (no HTTP).
                naive = {k: v for k, v in params.items() if k not in ("limit", "offset")}
                offset, limit = params.get("offset", 0), params["limit"]
                base_times = []
                for _ in range(args.baseline_runs):
                    t = time.perf_counter()
                    everything = list_models(ctx, **naive)
                    page = everything[offset:offset + limit]
                    base_times.append((time.perf_counter() - t) * 1000)
                same = body["items"] == [c.model_dump(mode="json") for c in page] and body["total"] == len(everything)
                results.append({"query": label, "params": params, "filtered": filtered,
                                "median_ms": round(statistics.median(times), 2),
                                "p95_ms": round(percentile(times, 0.95), 2), "total": body["total"],
                                "items": len(body["items"]), "baseline_median_ms": round(statistics.median(base_times), 1),
                                "same_page_as_baseline": same})
                r = results[-1]
                print(f"{label:24s} median {r['median_ms']:7.2f} ms  p95 {r['p95_ms']:7.2f} ms  "
                      f"total {r['total']:6d}  items {r['items']:3d}  | baseline list_models+slice "
                      f"{r['baseline_median_ms']:8.1f} ms  same page: {same}", flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        from fmhub.store.db import dispose_all

        dispose_all()
        tmp.cleanup()

    checked = [r for r in results if r["filtered"]]
    ok = all(r["median_ms"] < TARGET_MS and r["same_page_as_baseline"] for r in checked) and \
        all(r["same_page_as_baseline"] for r in results)
    if args.json_out:
        args.json_out.write_text(json.dumps({"models": n_rows, "names": n_names, "requests": args.requests,
                                             "target_ms": TARGET_MS, "results": results, "pass": ok}, indent=2))
    worst = max(r["median_ms"] for r in checked)
    print(f"{'PASS' if ok else 'FAIL'}: slowest filtered median {worst:.2f} ms (target < {TARGET_MS:.0f} ms) "
          f"over {n_rows} workspace model versions")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
