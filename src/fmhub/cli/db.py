"""``fmhub db``: the database schema (a shared PostgreSQL database is upgraded here, once)."""

from __future__ import annotations

import typer

from fmhub.cli.common import JSON_OPTION, TYPER_SETTINGS, context, handle_errors, out, print_json

app = typer.Typer(help="Show and upgrade the database schema (FMHUB_DATABASE_URL).", no_args_is_help=True,
                  **TYPER_SETTINGS)


@app.command("upgrade")
@handle_errors
def upgrade_cmd(as_json: bool = JSON_OPTION) -> None:
    """Migrate the database to this fmhub's schema, creating the tables of an empty one.

    Run it once after installing a new fmhub, before starting its servers and workers: they refuse
    a shared database whose schema is older. A SQLite database upgrades itself on first use.
    """
    from fmhub.services.database import upgrade_database

    result = upgrade_database(context())
    if as_json:
        print_json(result)
        return
    if result["before"] == result["after"]:
        out.print(f"{result['url']}: already at schema revision {result['after']}", highlight=False)
    else:
        out.print(f"{result['url']}: upgraded from schema revision {result['before'] or '(empty database)'} "
                  f"to {result['after']}", highlight=False)


@app.command("current")
@handle_errors
def current_cmd(as_json: bool = JSON_OPTION) -> None:
    """Show the database's schema revision and the one this fmhub needs (exit code 1 when they differ)."""
    from fmhub.services.database import database_status

    status = database_status(context())
    if as_json:
        print_json(status)
    else:
        out.print(f"database: {status['url']}", highlight=False)
        out.print(f"current:  {status['current'] or '(empty database: no fmhub tables)'}", highlight=False)
        out.print(f"head:     {status['head']}", highlight=False)
        if not status["up_to_date"]:
            out.print("run `fmhub db upgrade`" + (" (or use fmhub once: SQLite upgrades itself)"
                                                  if status["migrates_itself"] else ""), highlight=False)
    if not status["up_to_date"]:
        raise typer.Exit(1)
