"""The ``fmhub`` command line: one Typer app, one module per resource."""

from __future__ import annotations

import typer

from fmhub import __version__
from fmhub.cli import data, db, endpoints, jobs, keys, models
from fmhub.cli.common import TYPER_SETTINGS, quiet_root_logging
from fmhub.cli.evaluate import evaluate_cmd
from fmhub.cli.finetune import finetune_cmd
from fmhub.cli.predict import predict_cmd
from fmhub.cli.serve import serve_cmd, worker_cmd

app = typer.Typer(
    name="fmhub",
    help="fmhub: a self-hosted model catalog. Browse models, fine-tune one on your data, evaluate, "
         "register and predict — offline on this machine. State lives in FMHUB_HOME (default ~/.fmhub).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    **TYPER_SETTINGS,
)
app.add_typer(models.app, name="models")
app.add_typer(data.app, name="data")
app.add_typer(jobs.app, name="jobs")
app.add_typer(keys.app, name="keys")
app.add_typer(endpoints.app, name="endpoints")
app.add_typer(db.app, name="db")
app.command("finetune", help=finetune_cmd.__doc__)(finetune_cmd)
app.command("evaluate", help=evaluate_cmd.__doc__)(evaluate_cmd)
app.command("predict", help=predict_cmd.__doc__)(predict_cmd)
app.command("serve", help=serve_cmd.__doc__)(serve_cmd)
app.command("worker", help=worker_cmd.__doc__)(worker_cmd)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                       help="Print the fmhub version and exit.")) -> None:
    """fmhub: browse models, fine-tune, evaluate, register and predict."""
    quiet_root_logging()


@app.command("version")
def version_cmd() -> None:
    """Print the fmhub version."""
    typer.echo(__version__)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
