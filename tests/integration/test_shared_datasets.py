"""Every file in the shared datasets validates with zero errors and the row count its README gives
(the same code path as `fmhub data validate`, in one process so the tokenizer loads once)."""

from __future__ import annotations

import json

import pytest

from conftest import DATASETS
from test_cli_finetune import fmhub

pytestmark = pytest.mark.integration

DIALOGUE = {"column_mapping": {"document": "dialogue", "summary": "summary"}}
FILES = [  # (task, file under DATASETS/<task>, rows per the dataset README, extra data options)
    ("text-classification", "train.csv", 4000, {}),
    ("text-classification", "validation.csv", 500, {}),
    ("text-classification", "test.csv", 500, {}),
    ("text-classification", "large/train_full.csv", 67349, {}),
    ("token-classification", "train.jsonl", 4000, {}),
    ("token-classification", "validation.jsonl", 500, {}),
    ("token-classification", "test.jsonl", 500, {}),
    ("token-classification", "large/train_full.jsonl", 14041, {}),
    ("token-classification", "wnut17/wnut17train.conll", 3394, {}),
    ("token-classification", "wnut17/emerging.dev.conll", 1009, {}),
    ("token-classification", "wnut17/emerging.test.annotated", 1287, {"format": "conll"}),
    ("question-answering", "train.jsonl", 4000, {}),
    ("question-answering", "validation.jsonl", 500, {}),
    ("question-answering", "test.jsonl", 500, {}),
    ("question-answering", "large/all.jsonl", 11877, {}),
    ("summarization", "train.jsonl", 4000, DIALOGUE),
    ("summarization", "validation.jsonl", 500, DIALOGUE),
    ("summarization", "test.jsonl", 500, DIALOGUE),
    ("summarization", "large/train_full.jsonl", 12460, DIALOGUE),
    ("summarization", "scitldr/train.jsonl", 1992, {}),
    ("summarization", "scitldr/dev.jsonl", 619, {}),
    ("summarization", "scitldr/test.jsonl", 618, {}),
    ("translation", "train.tsv", 4000, {}),
    ("translation", "validation.tsv", 500, {}),
    ("translation", "test.tsv", 500, {}),
    ("translation", "large/train_full.tsv", 29000, {}),
]


@pytest.fixture(scope="module")
def minilm_tokenizer():
    from transformers import AutoTokenizer

    from fmhub.catalog.cards import get_system_card
    from fmhub.catalog.sources import require_local_path

    return AutoTokenizer.from_pretrained(str(require_local_path(get_system_card("all-MiniLM-L6-v2"), False)))


def test_every_shared_file_is_listed():
    """Every data file of a task fmhub has is listed above (folders of tasks to come are skipped)."""
    from fmhub.tasks import task_names

    listed = {f"{task}/{name}" for task, name, _, _ in FILES}
    found = {str(p.relative_to(DATASETS)) for p in DATASETS.glob("*/**/*")
             if p.is_file() and p.name != "README.md" and p.relative_to(DATASETS).parts[0] in task_names()}
    assert found == listed


@pytest.mark.parametrize("task,name,rows,extra", FILES, ids=[f"{t}/{n}" for t, n, _, _ in FILES])
def test_shared_file_validates_with_its_row_count(task, name, rows, extra, minilm_tokenizer):
    from fmhub.services.data_prep import prepare_data
    from fmhub.services.specs import DataSpec
    from fmhub.tasks import get_task

    path = DATASETS / task / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    t = get_task(task)
    spec = DataSpec(train=str(path), validation="none", test="none", **extra)
    prepared = prepare_data(spec, t, minilm_tokenizer, t.default_hyperparameters.get("max_seq_length", 128), 42)
    report = prepared.report
    assert report.errors == []
    split = report.splits[0]
    assert (split.rows_read, split.rows_kept) == (rows, rows)
    assert split.lengths is not None and split.lengths.max > 0


def test_data_validate_cli_on_a_conll_file(tmp_path):
    path = DATASETS / "token-classification" / "wnut17" / "emerging.test.annotated"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    proc = fmhub(tmp_path / "home", "data", "validate", str(path), "--task", "token-classification", "--format",
                 "conll", "--validation", "none", "--test", "none", "--json")
    report = json.loads(proc.stdout)
    assert report["ok"] and report["splits"][0]["rows_kept"] == 1287
    assert "B-person" in report["splits"][0]["distribution"]
