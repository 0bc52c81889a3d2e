"""``fmhub models``: list, show and import models."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fmhub.cli.common import JSON_OPTION, TYPER_SETTINGS, context, handle_errors, out, print_json
from fmhub.cli.render import print_card, print_cards

app = typer.Typer(help="Browse the catalog (system registry) and your workspace models; import models.",
                  no_args_is_help=True, **TYPER_SETTINGS)


@app.command("list")
@handle_errors
def list_cmd(
    task: Optional[str] = typer.Option(None, "--task", help="Only models that serve or fine-tune this task."),
    license: Optional[str] = typer.Option(None, "--license", help="Only models with this license, e.g. apache-2.0."),
    search: Optional[str] = typer.Option(None, "--search", help="Text search over name, description, architecture."),
    registry: Optional[str] = typer.Option(None, "--registry", help="system (built-in catalog) or workspace (yours)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List catalog models as a table (name, registry, size, license, fine-tuning tasks, offline)."""
    from fmhub.services.models import list_models

    cards = list_models(context(), task=task, license=license, search=search, registry=registry)
    if as_json:
        print_json({"models": [c.model_dump(exclude={"description"}) for c in cards], "count": len(cards)})
    else:
        print_cards(out, cards)


@app.command("show")
@handle_errors
def show_cmd(
    ref: str = typer.Argument(..., help="NAME (catalog) or NAME[:VERSION] (workspace; latest when no version)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a model card; for workspace versions also lineage, metrics and the version list."""
    from fmhub.services.models import show_model

    data = show_model(context(), ref)
    if as_json:
        print_json(data)
    else:
        print_card(out, data)


@app.command("import")
@handle_errors
def import_cmd(
    path: Path = typer.Argument(..., help="A local Hugging Face folder: config.json, *.safetensors, tokenizer files."),
    name: str = typer.Option(..., "--name", help="Workspace model name; each import adds a version."),
    task: str = typer.Option(..., "--task", help="The task the model serves."),
    license: Optional[str] = typer.Option(None, "--license", help="License id, e.g. apache-2.0."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle",
                                      help="Accept pickle weights (pytorch_model.bin): only for files you trust."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a local model folder in the workspace registry (never runs remote code)."""
    from fmhub.services.models import import_model

    version = import_model(context(), path, name=name, task=task, license=license, allow_pickle=allow_pickle)
    if as_json:
        print_json(version.model_dump(mode="json"))
    else:
        out.print(f"registered [bold]{version.ref}[/] ({task}) at {version.path}", highlight=False)
