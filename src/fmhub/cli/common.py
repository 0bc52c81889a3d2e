"""Shared CLI plumbing: the service context, error handling, JSON output, consoles."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from typer.core import TyperGroup

from fmhub.errors import FmhubError

F = TypeVar("F", bound=Callable[..., Any])

# Piped output gets a wide fixed width so tables do not fold at 80 columns.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 160)


# A hyphen stands in for this one-character mark while help text is wrapped, so that lines never
# break inside a hyphenated word (`--max-seq-length`, `all-MiniLM-L6-v2`).
_HYPHEN = "\u2011"


class HelpFormatter(TyperGroup.context_class.formatter_class):  # type: ignore[misc,name-defined]
    """Click's help formatter, wrapping lines at spaces only (never after a hyphen)."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        """The ``Usage:`` line."""
        super().write_usage(prog, args.replace("-", _HYPHEN), prefix)

    def write_text(self, text: str) -> None:
        """A paragraph of help text."""
        super().write_text(text.replace("-", _HYPHEN))

    def write_dl(self, rows: Any, *args: Any, **kwargs: Any) -> None:
        """A definition list (options, commands)."""
        super().write_dl([(a.replace("-", _HYPHEN), b.replace("-", _HYPHEN)) for a, b in rows], *args, **kwargs)

    def getvalue(self) -> str:
        """The help text."""
        return super().getvalue().replace(_HYPHEN, "-")


class HelpContext(TyperGroup.context_class):  # type: ignore[misc,name-defined]
    """The CLI's click context: help through :class:`HelpFormatter`."""

    formatter_class = HelpFormatter


class HelpGroup(TyperGroup):
    """A command group whose ``--help`` lists each command with its whole first sentence (click's
    default cuts it at about 45 characters with ``...``), and whose commands' help wraps at spaces
    only."""

    context_class = HelpContext

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command named ``cmd_name``, set to use :class:`HelpContext`."""
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            command.context_class = HelpContext
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Write the ``Commands:`` section, wrapped to the formatter's width."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


# Plain click help (no rich panels): at 80 columns an option's name is never cut, its help wraps
# under it; wider terminals get up to 100 columns.
TYPER_SETTINGS: dict[str, Any] = {
    "cls": HelpGroup,
    "rich_markup_mode": None,
    "context_settings": {"help_option_names": ["-h", "--help"], "max_content_width": 100},
}

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON document on stdout (the REST API's objects).")


def context():
    """The service context from the environment (``FMHUB_HOME``, ``FMHUB_DATABASE_URL``)."""
    from fmhub.services.context import Context

    return Context.from_settings()


def print_json(data: Any) -> None:
    """Write ``data`` as one JSON document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def quiet_libraries() -> None:
    """Keep library chatter (load reports, warnings) off the terminal; jobs log it to their file."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # pragma: no cover - transformers missing is reported elsewhere
        pass


def handle_errors(func: F) -> F:
    """Turn :class:`FmhubError` into one line on stderr (or a JSON error body) and exit code 1.

    Any other exception is logged with its traceback to ``FMHUB_HOME/logs/cli.log`` and shown as a
    generic error naming that file.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return func(*args, **kwargs)
        except FmhubError as exc:
            if as_json:
                print_json(exc.to_dict())
            else:
                err.print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False)
                if exc.hint:
                    err.print(f"[yellow]hint:[/] {exc.hint}", markup=True, highlight=False)
            raise typer.Exit(code=1) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # unexpected: keep the traceback in a log file
            from fmhub.config import get_settings

            log_dir = get_settings().home / "logs"
            log_dir.mkdir(parents=True, exist_ok=True)
            path = log_dir / "cli.log"
            logging.basicConfig(filename=path, level=logging.INFO, force=True)
            logging.getLogger("fmhub.cli").exception("unexpected error")
            message = f"unexpected error: {type(exc).__name__}: {exc}"
            if as_json:
                print_json({"error": {"code": "internal", "message": message, "hint": f"see {path}"}})
            else:
                err.print(f"[bold red]{message}[/] (traceback in {path})", markup=True, highlight=False)
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


def quiet_root_logging() -> None:
    """Give the root logger one stderr handler for warnings and errors (formatted as Python's
    last-resort handler formats them) unless it has a handler already.

    Without it, the first library that logs through the root logger while it has no handler (absl,
    under rouge_score, calls ``logging.basicConfig()``) installs a handler of every level, and from
    then on each INFO line of the job log (``fmhub.job``) is printed into the command's output.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING)
    root.addHandler(handler)
