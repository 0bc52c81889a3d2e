"""``fmhub evaluate``: a model's metrics on your own test data."""

from __future__ import annotations

from typing import Optional

import typer

from fmhub.cli.common import JSON_OPTION, context, err, handle_errors, out, print_json, quiet_libraries
from fmhub.cli.render import ProgressBar, print_metrics, print_report


@handle_errors
def evaluate_cmd(
    model: str = typer.Option(..., "--model", help="Workspace NAME[:VERSION] (latest when no version) or a catalog model (then give --task)."),
    test: str = typer.Option(..., "--test", help="Test data: a JSONL, JSON, CSV, TSV, Parquet or CoNLL file, or a data asset NAME:VERSION."),
    task: Optional[str] = typer.Option(None, "--task", help="Task (default: the model version's task)."),
    map: Optional[list[str]] = typer.Option(None, "--map", help="KEY=COLUMN, repeatable."),
    format: Optional[str] = typer.Option(None, "--format", help="Force the reader: jsonl, json, csv, tsv, parquet, conll (token<TAB>tag lines)."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding."),
    on_invalid_row: str = typer.Option("error", "--on-invalid-row", help="error or drop."),
    label_type: Optional[str] = typer.Option(None, "--label-type", help="Classification labels: string (default; 1 and 1.0 are two classes, with a warning) or int (1, 1.0 and \"1\" are class 1)."),
    tag_names: Optional[str] = typer.Option(None, "--tag-names", help="Token classification with integer tags: names in id order, comma-separated (O,B-PER,I-PER), or a file with one name per line."),
    batch_size: int = typer.Option(64, "--per-device-eval-batch-size", "--batch-size", help="Rows per forward pass."),
    max_seq_length: Optional[int] = typer.Option(None, "--max-seq-length", help="Truncate inputs to this many tokens (default: what the model was fine-tuned with, else 512)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    num_beams: Optional[int] = typer.Option(None, "--num-beams", help="Summarization/translation: beam width when generating (default from the model card, else 1 = greedy)."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="Summarization/translation: longest generated text in tokens (default from the model card, else 64)."),
    length_penalty: Optional[float] = typer.Option(None, "--length-penalty", help="Summarization/translation: beam-search length penalty (> 1 favours longer texts)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Evaluate a model on your test file: the task's metrics, stored as an evaluate job."""
    quiet_libraries()
    from fmhub.services.evaluate import run_evaluate
    from fmhub.services.specs import EvaluateSpec, build_spec, parse_map_options

    spec = build_spec(EvaluateSpec, {
        "model": model, "task": task, "device": device, "per_device_eval_batch_size": batch_size,
        **({"max_seq_length": max_seq_length} if max_seq_length else {}),
        "generation": {k: v for k, v in {"num_beams": num_beams, "max_new_tokens": max_new_tokens,
                                         "length_penalty": length_penalty}.items() if v is not None},
        "data": {"test": test, "column_mapping": parse_map_options(map or []), "format": format,
                 "encoding": encoding, "on_invalid_row": on_invalid_row,
                 **({"label_type": label_type} if label_type else {}),
                 **({"tag_names": tag_names} if tag_names else {})}}, "the command-line flags")
    console = err if as_json else out
    bar = ProgressBar(err)
    try:
        result = run_evaluate(context(), spec, on_report=lambda r: print_report(console, r, show_errors=False),
                              progress=lambda done, total: bar.predicting("predicting test", done, total))
    finally:
        bar.close()
    if as_json:
        print_json(result)
        return
    print_metrics(out, {"test": result["test"]})
    out.print(f"job [bold]{result['job_id']}[/] {result['status']} ({result['model']})", highlight=False)
