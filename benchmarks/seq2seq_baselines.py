"""Trivial baselines for the text-to-text tasks, scored with fmhub's own metric code, so that every
fine-tuned figure can be read beside one:

- summarization: the first 30 words of the document ("lead-30") as the summary;
- translation: the source sentence copied unchanged as the translation.

Usage::

    python benchmarks/seq2seq_baselines.py [--datasets ../shared/datasets] [--json-out FILE]

Prints ROUGE-1/2/L/Lsum for summarization and BLEU (cased, lower-cased) / chrF for translation on
each task's ``test`` file. Runs in seconds on a CPU; needs no model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fmhub.data.readers import read_table
from fmhub.tasks import get_task

LEAD_WORDS = 30


def lead(text: str, n: int = LEAD_WORDS) -> str:
    """The first ``n`` whitespace-separated words of ``text``."""
    return " ".join(text.split()[:n])


def summarization_baseline(test_file: Path) -> dict:
    """Lead-30 ROUGE on a DialogSum-style JSONL (``dialogue``, ``summary``)."""
    rows = read_table(test_file).rows
    task = get_task("summarization")
    return task.compute_metrics([lead(r["dialogue"]) for r in rows], [r["summary"] for r in rows], None)


def translation_baseline(test_file: Path) -> dict:
    """Copy-source BLEU/chrF on a TSV with ``en`` and ``de`` columns."""
    rows = read_table(test_file).rows
    task = get_task("translation")
    from fmhub.tasks.base import LabelInfo

    return task.compute_metrics([r["en"] for r in rows], [r["de"] for r in rows],
                                LabelInfo(extra={"target_lang": "de"}))


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=here.parent / "shared" / "datasets")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    results = {
        "summarization lead-30": summarization_baseline(args.datasets / "summarization" / "test.jsonl"),
        "translation copy-source": translation_baseline(args.datasets / "translation" / "test.tsv"),
    }
    for name, metrics in results.items():
        shown = ", ".join(f"{k} {v:.2f}" for k, v in metrics.items() if isinstance(v, float))
        print(f"{name}: {shown} (n={metrics['n']})")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
