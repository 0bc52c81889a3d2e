"""``fmhub predict``: predict with a registered model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from fmhub.cli.common import JSON_OPTION, context, handle_errors, out, print_json, quiet_libraries
from fmhub.errors import DataError, SpecError


def _read_inputs(file: Path) -> list[Any]:
    """One input per line (text), or a JSON list / JSONL of inputs (strings or [text, pair])."""
    if not file.is_file():
        raise DataError(f"input file '{file}' does not exist")
    text = file.read_text(encoding="utf-8")
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise DataError(f"{file}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})") from None
        return data if isinstance(data, list) else [data]
    return [line for line in text.splitlines() if line.strip()]


@handle_errors
def predict_cmd(
    ref: str = typer.Argument(..., help="Workspace NAME[:VERSION] (latest when no version)."),
    text: Optional[list[str]] = typer.Option(None, "--text", help="An input text (repeatable)."),
    question: Optional[str] = typer.Option(None, "--question", help="Question answering: the question (with --context)."),
    context_text: Optional[str] = typer.Option(None, "--context", help="Question answering: the context to answer from."),
    file: Optional[Path] = typer.Option(None, "--file", help="Inputs: one text per line, or a JSON list."),
    task: Optional[str] = typer.Option(None, "--task", help="Task (default: the model version's task)."),
    top_k: int = typer.Option(1, "--top-k", help="Labels per input, best first."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    url: Optional[str] = typer.Option(None, "--url", envvar="FMHUB_URL", help="Predict on an fmhub server (default FMHUB_URL; unset: in this process)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Predict with a model: label names with scores (classification), tagged entities (token
    classification), the answer span (question answering) or generated text (text-to-text
    tasks)."""
    quiet_libraries()
    inputs: list[Any] = list(text or [])
    if question is not None or context_text is not None:
        if not (question and context_text):
            raise SpecError("question answering needs both --question and --context")
        inputs.append({"question": question, "context": context_text})
    if file:
        inputs.extend(_read_inputs(file))
    if not inputs:
        raise SpecError("nothing to predict",
                        hint='give --text "..." (repeatable), --question/--context, or --file FILE')
    if url:
        from fmhub.client import Client

        with Client(url=url) as client:
            result = client.models.predict(ref, inputs, top_k=top_k, task=task)
    else:
        from fmhub.services.predict import predict

        result = predict(context(), ref, inputs, task=task, top_k=top_k, device=device)
    if as_json:
        print_json(result)
        return
    for inp, pred in zip(inputs, result["predictions"]):
        shown = inp if isinstance(inp, str) else json.dumps(inp, ensure_ascii=False)
        if isinstance(pred, dict) and "generated_text" in pred:
            # Generated text may span lines: the reply on its own, under its input when there are several.
            if len(inputs) > 1:
                out.print(f"> {shown if len(shown) <= 100 else shown[:99] + '…'}", style="dim", highlight=False,
                          markup=False)
            out.print(pred["generated_text"], highlight=False, markup=False)
            continue
        out.print(_describe(pred) + "\t" + shown, highlight=False)


def _describe(pred: Any) -> str:
    """One line per prediction: labels with scores, tagged entities, or the answer."""
    if isinstance(pred, list):
        return ", ".join(f"{p['label']} ({p['score']:.3f})" if isinstance(p.get("score"), (int, float))
                         else f"{p['label']} (no score)" for p in pred)
    if isinstance(pred, dict) and "entities" in pred:
        return "; ".join(f"{e['type']}: {e['text']}" for e in pred["entities"]) or "(no entities)"
    if isinstance(pred, dict) and "generated_text" in pred:
        return pred["generated_text"]
    if isinstance(pred, dict) and "answer" in pred:
        return repr(pred["answer"]) if pred["answer"] else "(no answer)"
    return json.dumps(pred)
