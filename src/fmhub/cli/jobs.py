"""``fmhub jobs``: list and show jobs."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

import json

from fmhub.cli.common import JSON_OPTION, context, handle_errors, out, print_json
from fmhub.cli.render import print_metrics

app = typer.Typer(help="List and inspect jobs.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_cmd(status: Optional[str] = typer.Option(None, "--status", help="queued, running, completed, failed, canceled."),
             as_json: bool = JSON_OPTION) -> None:
    """List jobs, newest first."""
    from fmhub.services.jobs import list_jobs

    jobs = list_jobs(context(), status=status)  # raises SpecError for an unknown status
    if as_json:
        print_json({"jobs": [j.model_dump(mode="json") for j in jobs], "count": len(jobs)})
        return
    table = Table(show_edge=False)
    for col in ("id", "kind", "status", "model", "created", "registered model"):
        table.add_column(col)
    for j in jobs:
        table.add_row(j.id, j.kind, j.status.value, str(j.spec.get("model", "")),
                      j.created_at.strftime("%Y-%m-%d %H:%M:%S") if j.created_at else "",
                      str(j.outputs.get("registered_model") or ""))
    out.print(table)


@app.command("show")
@handle_errors
def show_cmd(job_id: str = typer.Argument(..., help="Job id."), as_json: bool = JSON_OPTION) -> None:
    """Show a job: status, spec, outputs, folder, last events."""
    from fmhub.services.jobs import get_job, job_events

    ctx = context()
    job = get_job(ctx, job_id)
    events = job_events(ctx, job_id)
    if as_json:
        print_json({**job.model_dump(mode="json"), "events": [e.model_dump(mode="json") for e in events]})
        return
    out.print(f"[bold]{job.id}[/] {job.kind} {job.status.value}", highlight=False)
    out.print(f"folder: {job.folder}", highlight=False)
    if job.error:
        out.print(f"[red]error:[/] {job.error}", highlight=False)
    out.print("spec: " + json.dumps(job.spec, default=str), highlight=False)
    out.print("last events:")
    for e in events[-10:]:
        out.print(f"  {e.seq:>4} {e.kind}: {json.dumps(e.data, default=str)}", highlight=False)
    if job.outputs.get("registered_model"):
        out.print(f"registered model: {job.outputs['registered_model']}", highlight=False)
    if job.outputs.get("metrics"):
        print_metrics(out, job.outputs["metrics"])
