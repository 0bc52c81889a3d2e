"""Shared fixtures: an isolated FMHUB_HOME per test and a tiny random BERT built from a config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO = Path(__file__).resolve().parents[1]
SHARED = os.environ.get("FMHUB_TEST_BACKEND", "") == "shared"  # as tests/shared_backend.py reads it
DATASETS = REPO.parent / "shared" / "datasets"

WORDS = ("good great fine love wonderful best fun bad awful boring worst dull hate poor movie film the a "
         "is was it this and not very plot acting story").split()


@pytest.fixture()
def ctx(tmp_path, monkeypatch):
    """A service context on a fresh FMHUB_HOME (SQLite file, artifacts) under tmp_path; with
    ``FMHUB_TEST_BACKEND=shared``, on the test's own PostgreSQL database."""
    from fmhub.config import reset_settings
    from fmhub.services.context import Context

    home = tmp_path / "fmhub-home"
    monkeypatch.setenv("FMHUB_HOME", str(home))
    if not SHARED:  # the shared backend set the test's own PostgreSQL database
        monkeypatch.delenv("FMHUB_DATABASE_URL", raising=False)
    reset_settings()
    yield Context.from_settings()
    reset_settings()


def build_tiny_bert(folder: Path) -> Path:
    """Save a tiny random BERT (2 layers, hidden 32) and a WordPiece tokenizer to ``folder``."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", ".", "!"] + WORDS
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """Folder of a tiny random BERT in Hugging Face format (built once per test session)."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def write_sentiment_csv(path: Path, n: int = 40, labels: tuple[str, str] = ("neg", "pos")) -> Path:
    """A small sentiment CSV with columns ``review,stars``: positive words -> labels[1].

    Every row is different (rows past the sixth of each label end in neutral words that count
    the row), so automatic splits, which keep exact duplicates together, split rows, not groups.
    """
    import csv

    pos = ["good movie", "great film", "love this plot", "wonderful acting", "the best story", "very fun"]
    neg = ["bad movie", "awful film", "hate this plot", "boring acting", "the worst story", "very dull"]
    fillers = ["the", "a", "it", "this", "is", "was", "and", "story"]

    def tail(k: int) -> str:
        words = []
        while k:
            k, digit = divmod(k, len(fillers))
            words.append(fillers[digit])
        return "".join(" " + w for w in words)

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["review", "stars"])
        for i in range(n):
            if i % 2:
                w.writerow([pos[i % len(pos)] + tail(i // len(pos)), labels[1]])
            else:
                w.writerow([neg[i % len(neg)] + tail(i // len(neg)), labels[0]])
    return path


pytest_plugins = ["browser_fixtures",  # chromium + a served UI for tests/e2e
                  "shared_backend",  # PostgreSQL + S3 (FMHUB_TEST_BACKEND=shared, tests marked postgres)
                  "ray_cluster"]  # the test Ray head (tests marked ray)
