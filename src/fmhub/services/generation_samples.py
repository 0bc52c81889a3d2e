"""Sample generations of a job: the first rows of its test predictions (``predictions-test.jsonl``)
as prompt, reference and generated text, for the tasks that generate text. The job page shows them
beside the metrics, so a user sees what the numbers mean.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmhub.entities import Job
from fmhub.errors import FmhubError
from fmhub.services.context import Context

PREDICTIONS_FILE = "predictions-test.jsonl"
"""The test predictions a fine-tune or evaluate job writes in its folder."""

ZERO_SHOT_FILE = "predictions-test_zero_shot.jsonl"
"""The base model's predictions on the same test rows, before training (chat fine-tunes)."""

SAMPLES = 5
"""Rows shown by default."""

MAX_LINES_READ = 200
"""Lines read at most while looking for samples (a file of non-text predictions stops there)."""

MAX_TEXT_CHARS = 2000
"""Longest text kept per field (the rest is cut and marked)."""


def sample_generations(ctx: Context, job: Job, limit: int = SAMPLES) -> list[dict[str, Any]]:
    """The first ``limit`` test rows of a job whose predictions are generated text.

    The predictions are read from the job's folder, or, in a bucket artifact store, from the copy
    made when the job ended; only the first lines are read.

    Args:
        ctx: Service context.
        job: A fine-tune or evaluate job.
        limit: Rows at most.

    Returns:
        One dict per row, in file order: ``line`` (in the user's file), ``prompt`` (the last user
        message of a conversation, or the input text), ``system`` (the system message, or None),
        ``turns`` (messages before the reply, 1 for a plain text input), ``reference`` (the expected
        reply; several references joined by `` | ``), ``generated`` (the model's text) and
        ``finish_reason`` (``stop``, ``length`` or None), ``zero_shot`` (the base model's text
        for the same row before training, when the job scored it; else None), ``group`` (the row's value of the group
        column, ``--group-by``, or None). Empty when the job wrote no predictions
        (yet), or when they are not text (labels, entity tags, spans).
    """
    if limit <= 0:
        return []
    lines = _first_lines(ctx, job, PREDICTIONS_FILE, MAX_LINES_READ)
    samples: list[dict[str, Any]] = []
    for raw in lines:
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        sample = generation_sample(record) if isinstance(record, dict) else None
        if sample is None:
            return []  # not a generation task: its predictions are labels or spans
        samples.append(sample)
        if len(samples) >= limit:
            break
    if samples:
        base = {}
        for raw in _first_lines(ctx, job, ZERO_SHOT_FILE, MAX_LINES_READ):
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            sample = generation_sample(record) if isinstance(record, dict) else None
            if sample is not None and sample["line"] is not None:
                base.setdefault(sample["line"], sample["generated"])
        for sample in samples:
            sample["zero_shot"] = base.get(sample["line"])
    return samples


def generation_sample(record: dict[str, Any]) -> dict[str, Any] | None:
    """One predictions line (``{"line", "input", "prediction", "reference"}``) as a sample, or None
    when its prediction is not generated text.

    Args:
        record: A parsed line of ``predictions-<split>.jsonl``.

    Returns:
        As an item of :func:`sample_generations`.
    """
    prediction = record.get("prediction")
    if isinstance(prediction, dict) and isinstance(prediction.get("generated_text"), str):
        generated, finish = prediction["generated_text"], prediction.get("finish_reason")
    elif isinstance(prediction, str) and isinstance(record.get("reference"), (str, list)):
        generated, finish = prediction, None
    else:
        return None
    prompt, system, turns = _prompt_of(record.get("input"))
    return {"line": record.get("line"), "prompt": _cut(prompt), "system": _cut(system) if system else None,
            "turns": turns, "reference": _cut(_reference_text(record.get("reference"))),
            "generated": _cut(generated), "finish_reason": finish if isinstance(finish, str) else None,
            "zero_shot": None,
            "group": None if record.get("group") is None else str(record["group"])}


def _prompt_of(value: Any) -> tuple[str, str | None, int]:
    """(last user message or the text, system message, messages before the reply)."""
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        messages = list(value)
        if messages[-1].get("role") == "assistant":  # the reply to come is the reference
            messages = messages[:-1]
        users = [m for m in messages if m.get("role") == "user"]
        systems = [m for m in messages if m.get("role") == "system"]
        prompt = str(users[-1].get("content", "")) if users else ""
        system = str(systems[0].get("content", "")) if systems else None
        return prompt, system, len(messages)
    if isinstance(value, dict):  # a pair of texts, a question with its context
        return " / ".join(str(v) for v in value.values() if isinstance(v, str)), None, 1
    return ("" if value is None else str(value)), None, 1


def _reference_text(value: Any) -> str:
    if isinstance(value, list):
        return " | ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS] + " …"


def _first_lines(ctx: Context, job: Job, name: str, count: int) -> list[str]:
    """The first ``count`` non-empty lines of the job's file ``name`` ([] when there is none)."""
    local = Path(job.folder) / name if job.folder else None
    try:
        if local is not None and local.is_file():
            return _read_lines(local.open("rb"), count)
        if not ctx.artifacts.is_local:
            with ctx.artifacts.open(ctx.artifacts.job_url(job.id, name), "rb") as f:
                return _read_lines(f, count)
    except (OSError, ValueError, FmhubError):  # an unreachable bucket leaves the samples out, not the page
        return []
    return []


def _read_lines(f: Any, count: int) -> list[str]:
    out: list[str] = []
    with f:
        for raw in f:
            text = raw.decode("utf-8", errors="replace").strip()
            if text:
                out.append(text)
            if len(out) >= count:
                break
    return out
