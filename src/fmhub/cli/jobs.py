"""``fmhub jobs``: list, show, follow, wait for, cancel and resume jobs — on this machine's
database, or on a server with ``--url`` / ``FMHUB_URL``."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Optional

import typer
from rich.table import Table

from fmhub.cli.common import JSON_OPTION, TYPER_SETTINGS, context, err, handle_errors, out, print_json
from fmhub.cli.render import print_metrics
from fmhub.cli.render_groups import print_group_comparison

app = typer.Typer(help="List, follow, cancel and resume jobs.", no_args_is_help=True, **TYPER_SETTINGS)

URL_OPTION = typer.Option(None, "--url", envvar="FMHUB_URL",
                          help="An fmhub server (default: FMHUB_URL; unset: this machine's FMHUB_HOME).")
FINAL = ("completed", "failed", "canceled")


class LocalJobs:
    """The jobs operations on this machine's database (same methods as ``Client.jobs``)."""

    def __init__(self) -> None:
        self.ctx = context()

    def list(self, status: str | None = None, kind: str | None = None, limit: int = 50, offset: int = 0) -> list[Any]:
        from fmhub.services.jobs import list_jobs

        return list_jobs(self.ctx, status=status, kind=kind, limit=limit, offset=offset)

    def get(self, job_id: str) -> Any:
        from fmhub.services.jobs import get_job

        return get_job(self.ctx, job_id)

    def events(self, job_id: str, after: int = 0) -> list[Any]:
        from fmhub.services.jobs import job_events

        self.get(job_id)
        return job_events(self.ctx, job_id, after)

    def logs(self, job_id: str, offset: int = 0) -> dict[str, Any]:
        from fmhub.services.jobs import read_log

        text, nxt = read_log(self.ctx, job_id, offset)
        return {"text": text, "offset": offset, "next_offset": nxt, "status": self.get(job_id).status.value}

    def cancel(self, job_id: str) -> Any:
        from fmhub.services.jobs import cancel_job

        return cancel_job(self.ctx, job_id)

    def resume(self, job_id: str) -> Any:
        from fmhub.services.jobs import resume_job

        return resume_job(self.ctx, job_id)


def backend(url: str | None) -> Any:
    """``Client(url).jobs`` when a server URL is given, else :class:`LocalJobs`."""
    if url:
        from fmhub.client import Client

        return Client(url=url).jobs
    return LocalJobs()


@app.command("list")
@handle_errors
def list_cmd(status: Optional[str] = typer.Option(None, "--status", help="queued, running, completed, failed, canceled."),
             kind: Optional[str] = typer.Option(None, "--kind", help="finetune, evaluate or import."),
             limit: int = typer.Option(50, "--limit", help="Jobs to show."),
             url: Optional[str] = URL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """List jobs, newest first."""
    jobs = backend(url).list(status=status, kind=kind, limit=limit)
    if as_json:
        print_json({"jobs": [j.model_dump(mode="json") for j in jobs], "count": len(jobs)})
        return
    from fmhub.cli.render_jobs import duration, headline_metric

    table = Table(show_edge=False)
    for col in ("id", "kind", "status", "task", "model", "created", "duration", "metric", "registered model"):
        table.add_column(col, overflow="fold")
    for j in jobs:
        table.add_row(j.id, j.kind, j.status.value, str(j.spec.get("task") or "-"),
                      str(j.spec.get("model") or j.spec.get("name") or ""),
                      j.created_at.strftime("%Y-%m-%d %H:%M") if j.created_at else "",
                      duration(j.started_at, j.finished_at), headline_metric(j.spec.get("task"), j.outputs.get("metrics")),
                      str(j.outputs.get("registered_model") or ""))
    out.print(table)


@app.command("show")
@handle_errors
def show_cmd(job_id: str = typer.Argument(..., help="Job id."), url: Optional[str] = URL_OPTION,
             as_json: bool = JSON_OPTION) -> None:
    """Show a job: status, spec, outputs, folder, last events."""
    jobs = backend(url)
    job = jobs.get(job_id)
    events = jobs.events(job_id)
    from fmhub.cli.render_jobs import where_it_ran, where_text

    where = where_it_ran(job, events)
    if as_json:
        print_json({**job.model_dump(mode="json"), "resources": where["resources"], "node": where["node"],
                    "events": [e.model_dump(mode="json") for e in events]})
        return
    out.print(f"[bold]{job.id}[/] {job.kind} {job.status.value} (attempts {job.attempts})", highlight=False)
    for line in where_text(where):
        out.print(line, highlight=False, markup=False)
    out.print(f"folder: {job.folder}", highlight=False)
    if job.error:
        out.print(f"[red]error:[/] {job.error}", highlight=False)
    if job.exit_cause:
        out.print(f"process: {job.exit_cause}", highlight=False)
    from fmhub.cli.render_jobs import duration, event_text, spec_lines

    if job.started_at:
        out.print(f"duration: {duration(job.started_at, job.finished_at)}", highlight=False)
    out.print("spec:", highlight=False)
    for line in spec_lines(job.spec):
        out.print(line, highlight=False, markup=False)
    out.print("last events:")
    for e in events[-10:]:
        out.print(f"  {e.seq:>4} {e.kind}: {event_text(e.kind, e.data)}", highlight=False, markup=False)
    if job.outputs.get("registered_model"):
        out.print(f"registered model: {job.outputs['registered_model']}", highlight=False)
    if job.outputs.get("metrics"):
        print_metrics(out, job.outputs["metrics"])
        print_group_comparison(out, job.outputs["metrics"])


@app.command("logs")
@handle_errors
def logs_cmd(job_id: str = typer.Argument(..., help="Job id."),
             follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the job ends."),
             url: Optional[str] = URL_OPTION) -> None:
    """Print a job's log file (with --follow, as it grows)."""
    jobs = backend(url)
    offset = 0
    while True:
        chunk = jobs.logs(job_id, offset)
        if chunk["text"]:
            sys.stdout.write(chunk["text"])
            sys.stdout.flush()
        offset = chunk["next_offset"]
        if not follow or (chunk["status"] in FINAL and not chunk["text"]):
            return
        if not chunk["text"]:
            time.sleep(1.0)


@app.command("wait")
@handle_errors
def wait_cmd(job_id: str = typer.Argument(..., help="Job id."),
             timeout_s: Optional[float] = typer.Option(None, "--timeout-s", help="Give up after this many seconds (exit 2)."),
             url: Optional[str] = URL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Wait for a job to end, showing its progress; exit 0 when it completed, 1 otherwise."""
    from fmhub.cli.render import ProgressBar

    jobs = backend(url)
    bar = None if as_json else ProgressBar(err)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    after = 0
    try:
        while True:
            job = jobs.get(job_id)
            for e in jobs.events(job_id, after):
                after = e.seq
                if bar is not None:
                    bar.event(e.kind, e.data)
                    if e.kind == "train":
                        bar.step(e.data.get("step", 0), e.data.get("total", 0), e.data.get("loss"))
            if job.status.value in FINAL:
                break
            if deadline is not None and time.monotonic() > deadline:
                err.print(f"job {job_id} still {job.status.value} after {timeout_s} s", highlight=False)
                raise typer.Exit(code=2)
            time.sleep(1.0)
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        print_json(job.model_dump(mode="json"))
    else:
        out.print(f"job [bold]{job.id}[/] {job.status.value}" + (f": {job.error}" if job.error else ""), highlight=False)
        if job.outputs.get("metrics"):
            print_metrics(out, job.outputs["metrics"])
            print_group_comparison(out, job.outputs["metrics"])
        if job.outputs.get("registered_model"):
            out.print(f"registered [bold]{job.outputs['registered_model']}[/]", highlight=False)
        for text in job.outputs.get("warnings") or []:  # e.g. one class only: registered all the same
            out.print(f"[yellow]warning:[/] {text}", highlight=False)
    if job.status.value != "completed":
        raise typer.Exit(code=1)


@app.command("cancel")
@handle_errors
def cancel_cmd(job_id: str = typer.Argument(..., help="Job id."), url: Optional[str] = URL_OPTION,
               as_json: bool = JSON_OPTION) -> None:
    """Cancel a job: a queued one at once; a running one is stopped (SIGTERM, then SIGKILL) and keeps
    its checkpoints (continue it with `fmhub jobs resume`)."""
    job = backend(url).cancel(job_id)
    if as_json:
        print_json(job.model_dump(mode="json"))
        return
    state = "canceled" if job.status.value == "canceled" else "cancel requested (its worker stops it)"
    out.print(f"job {job.id}: {state}", highlight=False)


@app.command("resume")
@handle_errors
def resume_cmd(job_id: str = typer.Argument(..., help="Job id."),
               foreground: bool = typer.Option(False, "--foreground", help="Run it here now instead of queueing it for a server or worker."),
               url: Optional[str] = URL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Continue a failed or canceled fine-tune job from its latest checkpoint (the step count goes on).
    It is queued for `fmhub serve` / `fmhub worker`; with --foreground it runs in this terminal."""
    job = backend(None if foreground else url).resume(job_id)
    if foreground:
        from fmhub.cli.common import quiet_libraries
        from fmhub.cli.render import ProgressBar
        from fmhub.services.jobs import claim_queued_here

        quiet_libraries()
        ctx = context()
        job = claim_queued_here(ctx, job_id)
        from fmhub.services.finetune import execute_finetune

        bar = ProgressBar(err)
        try:
            result = execute_finetune(ctx, job, sink=bar)
        finally:
            bar.close()
        if as_json:
            print_json(result.to_dict())
        else:
            print_metrics(out, result.metrics)
            print_group_comparison(out, result.metrics)
            if result.model_version:
                out.print(f"registered [bold]{result.model_version.ref}[/]", highlight=False)
        return
    if as_json:
        print_json(job.model_dump(mode="json"))
        return
    out.print(f"job {job.id} queued to resume from its last checkpoint (from the start if it has none); "
              f"a running `fmhub serve` or "
              f"`fmhub worker` starts it (follow: fmhub jobs wait {job.id})", highlight=False)


@app.command("execute", hidden=True)
def execute_cmd(job_id: str = typer.Argument(..., help="Job id.")) -> None:
    """Run a job claimed by a scheduler, in this process (the scheduler starts this command)."""
    from fmhub.cli.common import quiet_libraries
    from fmhub.errors import FmhubError
    from fmhub.services.job_exec import run_job_process

    quiet_libraries()
    try:
        result = run_job_process(context(), job_id)
    except FmhubError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(code=1) from None
    except KeyboardInterrupt:
        raise typer.Exit(code=130) from None
    sys.stdout.write(json.dumps({"job_id": job_id, "status": result.get("status", "completed")}) + "\n")
