"""``fmhub keys``: API keys for the server (stored hashed; a key is shown once)."""

from __future__ import annotations

import typer
from rich.table import Table

from fmhub.cli.common import JSON_OPTION, TYPER_SETTINGS, context, handle_errors, out, print_json

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True, **TYPER_SETTINGS)


@app.command("create")
@handle_errors
def create_cmd(name: str = typer.Option(..., "--name", help="What the key is for, e.g. laptop or ci."),
               as_json: bool = JSON_OPTION) -> None:
    """Create an API key. It is printed once; only its hash is stored."""
    from fmhub.services.keys import create_key

    row = create_key(context(), name)
    if as_json:
        print_json(row)
        return
    out.print(row["key"], highlight=False)
    out.print(f"key {row['id']} ({row['name']}) created; it is shown only now. "
              "Send it as `Authorization: Bearer <key>` or set FMHUB_API_KEY.", highlight=False)


@app.command("list")
@handle_errors
def list_cmd(as_json: bool = JSON_OPTION) -> None:
    """List keys (id, name, prefix, created, revoked)."""
    from fmhub.services.keys import list_keys

    rows = list_keys(context())
    if as_json:
        print_json({"keys": rows})
        return
    table = Table(show_edge=False)
    for col in ("id", "name", "prefix", "created", "revoked"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), r["name"], r["prefix"] + "...", str(r["created_at"])[:19],
                      str(r["revoked_at"] or "")[:19])
    out.print(table)


@app.command("revoke")
@handle_errors
def revoke_cmd(key_id: int = typer.Argument(..., help="Key id (see `fmhub keys list`)."),
               as_json: bool = JSON_OPTION) -> None:
    """Revoke a key (servers stop accepting it within 10 s)."""
    from fmhub.services.keys import revoke_key

    row = revoke_key(context(), key_id)
    if as_json:
        print_json(row)
        return
    out.print(f"key {row['id']} ({row['name']}) revoked", highlight=False)
