"""Scale out on Ray, measured in one run on one machine: training workers, serving backends and job
start-up, each beside its local baseline.

Usage::

    scripts/test-services.sh start && eval "$(scripts/test-services.sh env)"   # a Ray head on 127.0.0.1
    python benchmarks/ray_scale.py [--ray-address 127.0.0.1:56379] [--device cpu|cuda]
                                   [--parts train,serve,submit] [--clients 64] [--duration-s 20]
                                   [--json-out FILE]

1. ``train``: samples/s of a fine-tune with 1 and with 2 Ray Train workers (same data, same global
   batch); on a 2-core machine no speed-up is expected — the figures say what it costs.
2. ``serve``: requests/s, p50 and p99 latency (ms) of the same model on the Ray Serve backend and on
   the local backend, ``--clients`` concurrent clients for ``--duration-s`` seconds each, through a real
   fmhub server.
3. ``submit``: seconds from submit to the first training step for a local job and a Ray job.

Each part's code is in ``benchmarks/ray_bench_{train,serve,submit}.py``. Prints one table per part
and, with ``--json-out``, every figure as one JSON document. It reports; it holds no target.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Drop this folder,
# which Python puts first on a script's path, and load the parts by file instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from types import ModuleType  # noqa: E402

PARTS = ("train", "serve", "submit")


def _part(name: str) -> ModuleType:
    """Load ``benchmarks/ray_bench_<name>.py`` as a module (without putting its folder on the path)."""
    spec = importlib.util.spec_from_file_location(f"ray_bench_{name}", _HERE / f"ray_bench_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    """Run the parts asked for and print their tables; returns the exit code (0, or 2 without a head)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ray-address", default=os.environ.get("FMHUB_TEST_RAY_ADDRESS")
                        or os.environ.get("FMHUB_RAY_ADDRESS"),
                        help="the Ray head (default FMHUB_TEST_RAY_ADDRESS, else FMHUB_RAY_ADDRESS)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where models run (default cpu)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients of the serve part (64)")
    parser.add_argument("--duration-s", type=float, default=20.0, help="seconds of load per backend (20)")
    parser.add_argument("--json-out", type=Path, help="write every figure here as JSON")
    args = parser.parse_args(argv)
    if not args.ray_address:
        print("no Ray head: start one (scripts/test-services.sh start) or pass --ray-address", file=sys.stderr)
        return 2
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    results: dict[str, object] = {"ray_address": args.ray_address, "device": args.device}
    t0 = time.perf_counter()
    if "train" in parts:
        train = _part("train")
        results["train"] = train.bench_train_workers(args.ray_address, device=args.device)
        train.print_table(results["train"])
    if "serve" in parts:
        serve = _part("serve")
        results["serve"] = serve.bench_serving(args.ray_address, clients=args.clients, duration_s=args.duration_s,
                                               device=args.device)
        serve.print_table(results["serve"])
    if "submit" in parts:
        submit = _part("submit")
        results["submit"] = submit.bench_submit_to_first_step(args.ray_address)
        submit.print_table(results["submit"])
    results["wall_s"] = round(time.perf_counter() - t0, 1)
    print(f"\nall parts in {results['wall_s']} s")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
