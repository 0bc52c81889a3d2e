"""Tiny data files for each task, in the layouts of the shared datasets (column names as in each
``examples/<task>/job.yaml``), using only words the tiny test tokenizer knows; and a tiny
encoder-decoder built from the tiny BERT."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import WORDS

# --- tiny data in the layouts of the shared datasets (column names as in each job.yaml) -----------

def _sentences(n: int, offset: int = 0) -> list[list[str]]:
    """``n`` short sentences over WORDS (so the tiny WordPiece vocabulary knows every word)."""
    subjects = ["movie", "film", "plot", "story", "acting"]
    adjectives = ["good", "great", "fine", "wonderful", "fun", "bad", "awful", "boring", "dull", "poor"]
    assert {"the", "was", "very", *subjects, *adjectives} <= set(WORDS)
    out = []
    for i in range(offset, offset + n):
        out.append(["the", subjects[i % len(subjects)], "was", "very", adjectives[(i * 3) % len(adjectives)]])
    return out


def _write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def text_classification_files(folder: Path) -> dict:
    """SST-2 layout: CSV ``sentence,label`` with labels 0/1."""
    positive = {"good", "great", "fine", "wonderful", "fun"}

    def write(name: str, n: int, offset: int) -> str:
        path = folder / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["sentence", "label"])
            for words in _sentences(n, offset):
                w.writerow([" ".join(words), 1 if words[-1] in positive else 0])
        return str(path)

    return {"train": write("train", 24, 0), "validation": write("validation", 8, 24), "test": write("test", 8, 32),
            "column_mapping": {"sentence1": "sentence", "label": "label"}}


def token_classification_files(folder: Path) -> dict:
    """CoNLL-2003 layout: JSONL ``tokens`` and IOB2 ``ner_tags``."""
    kinds = {"movie": "MISC", "film": "MISC", "plot": "ORG", "story": "ORG", "acting": "PER"}

    def rows(n: int, offset: int) -> list[dict]:
        out = []
        for i, words in enumerate(_sentences(n, offset)):
            tags = [f"B-{kinds[w]}" if w in kinds else "O" for w in words]
            out.append({"id": str(offset + i), "tokens": words, "ner_tags": tags})
        return out

    return {name: _write_jsonl(folder / f"{name}.jsonl", rows(n, off))
            for name, n, off in (("train", 20, 0), ("validation", 6, 20), ("test", 6, 26))} | {
        "column_mapping": {"tokens": "tokens", "tags": "ner_tags"}}


def question_answering_files(folder: Path) -> dict:
    """SQuAD layout: JSONL ``question``, ``context``, ``answers: {text, answer_start}``."""

    def rows(n: int, offset: int) -> list[dict]:
        out = []
        for i, words in enumerate(_sentences(n, offset)):
            context = " ".join(words) + " and the story was fun ."
            answer = words[-1]
            out.append({"id": str(offset + i), "title": "t", "context": context,
                        "question": f"what was the {words[1]}",
                        "answers": {"text": [answer], "answer_start": [context.index(" " + answer) + 1]}})
        return out

    return {name: _write_jsonl(folder / f"{name}.jsonl", rows(n, off))
            for name, n, off in (("train", 16, 0), ("validation", 4, 16), ("test", 4, 20))} | {
        "column_mapping": {"question": "question", "context": "context", "answers": "answers"}}


def summarization_files(folder: Path) -> dict:
    """DialogSum layout: JSONL ``dialogue``, ``summary``."""

    def rows(n: int, offset: int) -> list[dict]:
        return [{"fname": f"d{offset + i}", "dialogue": " ".join(w) + " . it was " + w[-1] + " and fun .",
                 "summary": f"{w[-1]} {w[1]}"} for i, w in enumerate(_sentences(n, offset))]

    return {name: _write_jsonl(folder / f"{name}.jsonl", rows(n, off))
            for name, n, off in (("train", 16, 0), ("validation", 4, 16), ("test", 4, 20))} | {
        "column_mapping": {"document": "dialogue", "summary": "summary"}}


def translation_files(folder: Path) -> dict:
    """Multi30k layout: TSV with the header ``en<TAB>de`` (language-code columns map by themselves)."""

    def write(name: str, n: int, offset: int) -> str:
        path = folder / f"{name}.tsv"
        lines = ["en\tde"] + [" ".join(w) + "\t" + " ".join(reversed(w)) for w in _sentences(n, offset)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return str(path)

    return {"train": write("train", 16, 0), "validation": write("validation", 4, 16), "test": write("test", 4, 20)}


DATA_FILES = {"text-classification": text_classification_files, "token-classification": token_classification_files,
              "question-answering": question_answering_files, "summarization": summarization_files,
              "translation": translation_files}


def build_tiny_b2b(tiny_bert: Path, folder: Path) -> Path:
    """A tiny bert2bert encoder-decoder warm-started from the tiny BERT (for text-to-text tasks)."""
    from fmhub.catalog.derived import build_bert2bert

    return build_bert2bert(tiny_bert, folder)
