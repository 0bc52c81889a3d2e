"""``fmhub data``: validate a data file for a task before any job."""

from __future__ import annotations

from typing import Optional

import typer

from fmhub.cli.common import JSON_OPTION, context, handle_errors, out, print_json, quiet_libraries
from fmhub.cli.render import print_report

app = typer.Typer(help="Check data files and manage data assets.", no_args_is_help=True)


@app.command("validate")
@handle_errors
def validate_cmd(
    file: str = typer.Argument(..., help="Training data: JSONL, JSON, CSV, TSV or Parquet."),
    task: str = typer.Option(..., "--task", help="The task the data is for."),
    map: Optional[list[str]] = typer.Option(None, "--map", help="KEY=COLUMN, repeatable."),
    validation: str = typer.Option("auto", "--validation", help="FILE, auto or none."),
    test: str = typer.Option("auto", "--test", help="FILE, auto or none."),
    model: str = typer.Option("all-MiniLM-L6-v2", "--model", help="Model whose tokenizer counts tokens."),
    max_seq_length: Optional[int] = typer.Option(None, "--max-seq-length", help="Token limit for the truncation count."),
    format: Optional[str] = typer.Option(None, "--format", help="Force the reader: jsonl, json, csv, tsv, parquet, conll (token<TAB>tag lines)."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding."),
    on_invalid_row: str = typer.Option("error", "--on-invalid-row", help="error or drop."),
    label_type: Optional[str] = typer.Option(None, "--label-type", help="Classification labels: string (default; 1 and 1.0 are two classes, with a warning) or int (1, 1.0 and \"1\" are class 1)."),
    tag_names: Optional[str] = typer.Option(None, "--tag-names", help="Token classification with integer tags: names in id order, comma-separated (O,B-PER,I-PER), or a file with one name per line."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Read, map and check a data file; print the validation report (exit 1 when it has errors)."""
    quiet_libraries()
    from fmhub.cli.finetune import build_finetune_spec
    from fmhub.services.finetune import validate

    flags = {"model": model, "task": task, "train": file, "validation": validation, "test": test, "map": map,
             "format": format, "encoding": encoding, "on_invalid_row": on_invalid_row,
             "label_type": label_type, "tag_names": tag_names,
             "max_seq_length": max_seq_length}
    spec = build_finetune_spec(None, flags)
    _, _, _, _, prepared = validate(context(), spec)
    report = prepared.report
    if as_json:
        print_json(report.to_dict())
    else:
        print_report(out, report)
        out.print("[green]no errors[/]" if report.ok else f"[red]{len(report.errors)} error(s)[/]")
    if not report.ok:
        raise typer.Exit(code=1)
