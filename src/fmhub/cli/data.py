"""``fmhub data``: validate a data file for a task before any job."""

from __future__ import annotations

from typing import Optional

import typer

from fmhub.cli.common import JSON_OPTION, TYPER_SETTINGS, context, handle_errors, out, print_json, quiet_libraries
from fmhub.cli.render import print_report
from fmhub.services.task_facts import tasks_text, token_count_model

app = typer.Typer(help="Check data files and manage data assets.", no_args_is_help=True, **TYPER_SETTINGS)


@app.command("validate")
@handle_errors
def validate_cmd(
    file: str = typer.Argument(..., help="The data file (JSONL, JSON, CSV, TSV, Parquet or CoNLL) or a data asset NAME:VERSION."),
    task: str = typer.Option(..., "--task", help=f"{tasks_text()}."),
    map: Optional[list[str]] = typer.Option(None, "--map", help="KEY=COLUMN, repeatable."),
    validation: str = typer.Option("auto", "--validation", help="FILE, auto or none."),
    test: str = typer.Option("auto", "--test", help="FILE, auto or none."),
    model: Optional[str] = typer.Option(None, "--model", help="Model whose tokenizer counts tokens (default all-MiniLM-L6-v2, or the first catalog model that fine-tunes the task, e.g. SmolLM2-135M-Instruct for conversations)."),
    max_seq_length: Optional[int] = typer.Option(None, "--max-seq-length", help="Token limit for the truncation count."),
    format: Optional[str] = typer.Option(None, "--format", help="Force the reader: jsonl, json, csv, tsv, parquet, conll (token<TAB>tag lines)."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding."),
    on_invalid_row: str = typer.Option("error", "--on-invalid-row", help="error or drop."),
    label_type: Optional[str] = typer.Option(None, "--label-type", help="Classification labels that are numbers: number (1, 1.0 and 01 are one class), string (separate classes) or int (whole numbers only). Default: labels equal as numbers but written differently stop the job."),
    tag_names: Optional[str] = typer.Option(None, "--tag-names", help="Token classification with integer tags: names in id order, comma-separated (O,B-PER,I-PER), or a file with one name per line."),
    label_names: Optional[str] = typer.Option(None, "--label-names", help="Text classification with integer labels 0..n-1: class names in id order, comma-separated (negative,positive), or a file with one name per line."),
    # -- delimiter --
    delimiter: Optional[str] = typer.Option(None, "--delimiter", help="CSV/TSV field separator: one character or comma, semicolon, pipe, tab (default: detected from the CSV header; tab for TSV)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Read, map and check a data file; print the validation report (exit 1 when it has errors)."""
    quiet_libraries()
    from fmhub.cli.finetune import build_finetune_spec
    from fmhub.services.finetune import validate

    flags = {"model": model or token_count_model(task), "task": task, "train": file, "validation": validation, "test": test, "map": map,
             "format": format, "encoding": encoding, "on_invalid_row": on_invalid_row,
             "label_type": label_type, "tag_names": tag_names, "label_names": label_names,
             "max_seq_length": max_seq_length,
             "delimiter": delimiter}
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


@app.command("create")
@handle_errors
def create_cmd(
    name: str = typer.Option(..., "--name", help="Asset name; identical content returns the existing version."),
    path: str = typer.Option(..., "--path", help="The data file: JSONL, JSON, CSV, TSV, Parquet or CoNLL."),
    task: Optional[str] = typer.Option(None, "--task", help="Validate the rows for this task first (the report is stored with the asset)."),
    map: Optional[list[str]] = typer.Option(None, "--map", help="KEY=COLUMN, repeatable (with --task)."),
    format: Optional[str] = typer.Option(None, "--format", help="Force the reader: jsonl, json, csv, tsv, parquet, conll."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding."),
    label_type: Optional[str] = typer.Option(None, "--label-type", help="Classification labels that are numbers: number (1 and 1.0 are one class), string (separate classes) or int."),
    tag_names: Optional[str] = typer.Option(None, "--tag-names", help="Names of integer tags, in id order (comma-separated or a file)."),
    label_names: Optional[str] = typer.Option(None, "--label-names", help="Names of integer classes 0..n-1, in id order (comma-separated or a file)."),
    on_invalid_row: str = typer.Option("error", "--on-invalid-row", help="error (default: refuse a file with bad rows) or drop (register it; jobs leave those rows out, listed in the report)."),
    # -- delimiter --
    delimiter: Optional[str] = typer.Option(None, "--delimiter", help="CSV/TSV field separator: one character or comma, semicolon, pipe, tab (default: detected from the CSV header; tab for TSV)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a data file as a versioned data asset (copied into the artifact store, with its sha256,
    columns, row count and, with --task, its validation report). Jobs then take it as --train NAME:VERSION."""
    quiet_libraries()
    from fmhub.services.assets import create_data_asset
    from fmhub.services.specs import ReadOptions, build_spec, parse_map_options

    options = build_spec(ReadOptions, {"column_mapping": parse_map_options(map or []), "format": format,
                                       "encoding": encoding, "on_invalid_row": on_invalid_row, **({"label_type": label_type} if label_type else {}),
                                       **({"tag_names": tag_names} if tag_names else {}),
                                       **({"label_names": label_names} if label_names else {}),
                                       **({"delimiter": delimiter} if delimiter else {})}, "the command-line flags")
    asset, created = create_data_asset(context(), path, name, task=task, options=options)
    if as_json:
        print_json({**asset.model_dump(mode="json"), "created": created})
        return
    verb = "registered" if created else "already registered (identical content)"
    out.print(f"{verb}: [bold]{asset.ref}[/]  {asset.rows} rows, {asset.format}, sha256 {asset.sha256[:16]}...",
              highlight=False)
    out.print(f"use it with: fmhub finetune ... --train {asset.ref}", highlight=False)


@app.command("list")
@handle_errors
def list_cmd(name: Optional[str] = typer.Option(None, "--name", help="Only versions of this asset."),
             as_json: bool = JSON_OPTION) -> None:
    """List registered data assets, newest version first."""
    from rich.table import Table

    from fmhub.services.assets import list_assets

    assets = list_assets(context(), name)
    if as_json:
        print_json({"data_assets": [a.model_dump(mode="json", exclude={"report"}) for a in assets],
                    "count": len(assets)})
        return
    table = Table(show_edge=False)
    for col in ("asset", "rows", "format", "task", "columns", "sha256", "created"):
        table.add_column(col)
    for a in assets:
        table.add_row(a.ref, str(a.rows), a.format, a.task or "", ", ".join(a.columns), a.sha256[:12],
                      a.created_at.strftime("%Y-%m-%d %H:%M") if a.created_at else "")
    out.print(table)
    out.print(f"{len(assets)} data asset(s)")


@app.command("show")
@handle_errors
def show_cmd(ref: str = typer.Argument(..., help="NAME[:VERSION] (latest without a version)."),
             as_json: bool = JSON_OPTION) -> None:
    """Show a data asset: file, sha256, columns, row count, mapping and validation report."""
    from fmhub.services.assets import asset_report, get_data_asset

    asset = get_data_asset(context(), ref)
    if as_json:
        print_json(asset.model_dump(mode="json"))
        return
    out.print(f"[bold]{asset.ref}[/]  {asset.rows} rows, {asset.format}", highlight=False)
    for label, value in (("file", asset.path), ("registered from", asset.source_path), ("sha256", asset.sha256),
                         ("columns", ", ".join(asset.columns)), ("task", asset.task),
                         ("column mapping", asset.column_mapping), ("read options", asset.read_options)):
        if value:
            out.print(f"  {label}: {value}", highlight=False)
    report = asset_report(asset)
    if report is not None:
        print_report(out, report)
