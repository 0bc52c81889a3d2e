"""Data roots: the folders a server reads user files from.

A path that arrives at the server (a data file in a job spec, a file to register as a data asset, a
model folder to import, a tag names file) is resolved first (``~``, ``..`` and every symlink), then
accepted only when it lies under one of the roots. Anything else is a :class:`ForbiddenPathError`
(403) whose hint names the roots and the upload route. The local CLI has no roots
(``Context.data_roots`` is None): it reads the files its user names.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmhub.config import Settings
from fmhub.errors import ForbiddenPathError, SpecError

if TYPE_CHECKING:
    from fmhub.services.context import Context

UPLOAD_ROUTE = "PUT /api/v1/data/{name}/upload?filename=FILE"
"""The route that takes a file's bytes and registers them as a data asset."""

NOT_PATHS = ("", "auto", "none")
"""Data spec values that name no file."""


def resolve_path(value: str | Path) -> Path | None:
    """``value`` made absolute with ``~``, ``..`` and every symlink resolved (strictly where the
    file exists; the existing part of a missing path is resolved too, so a missing file under a
    symlinked folder is placed where the link points).

    Relative paths are taken from the process's working folder.

    Returns:
        The resolved path, or None when it cannot be resolved (a symlink loop, a NUL byte, a name
        too long for the file system).
    """
    if "\0" in str(value):  # no file name holds a NUL byte; the OS refuses it
        return None
    try:
        path = Path(value).expanduser()
    except RuntimeError:  # ``~user`` of an unknown user
        return None
    try:
        return path.resolve(strict=True)
    except FileNotFoundError:
        pass
    except OSError as exc:  # a symlink loop, a component that is not a folder ...
        if exc.errno == errno.ENAMETOOLONG:  # no such file can exist, and every look at it fails
            return None
    except RuntimeError:
        pass
    try:
        resolved = path.resolve(strict=False)
    except (OSError, RuntimeError):
        return None
    return resolved if len(os.fsencode(str(resolved))) < _PATH_MAX else None


def _path_max() -> int:
    try:
        return os.pathconf("/", "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows)
        return 4096


_PATH_MAX = _path_max()
"""Longest path the file system takes (bytes): a longer one names no file, and looking fails."""


@dataclass(frozen=True)
class DataRoots:
    """The folders a server reads user files from.

    Attributes:
        roots: Absolute folders, symlinks resolved, in the order given (duplicates left out).
        excluded: Folders never read even when under a root (the server's own state, FMHUB_HOME),
            except through a root inside them (its upload area and artifact store).
    """

    roots: tuple[Path, ...]
    excluded: tuple[Path, ...] = ()

    @classmethod
    def of(cls, folders: Iterable[str | Path], excluded: Iterable[str | Path] = ()) -> "DataRoots":
        """Roots from ``folders`` (resolved as :func:`resolve_path` does; they need not exist yet)."""
        return cls(_resolved(folders), _resolved(excluded))

    @classmethod
    def for_server(cls, settings: Settings, folders: Iterable[str | Path] = (),
                   cwd: str | Path | None = None) -> "DataRoots":
        """The roots of a server: ``folders`` (``--data-root``), else ``FMHUB_DATA_ROOTS``
        (``os.pathsep``-separated), else the folder it was started from (``cwd``, default the
        process's working folder); always with the upload area (``FMHUB_HOME/uploads``) and the
        artifact store (``FMHUB_HOME/artifacts``) the server manages itself, and with a bucket
        artifact store, its local copies (``FMHUB_HOME/cache/artifacts``).

        Raises:
            SpecError: a root given (flag or environment) is not an existing folder.
        """
        given = [f for f in folders if str(f).strip()]
        source = "--data-root"
        if not given and settings.data_roots:
            given = [f for f in settings.data_roots.split(os.pathsep) if f.strip()]
            source = "FMHUB_DATA_ROOTS"
        missing = [str(f) for f in given if not Path(f).expanduser().is_dir()]
        if missing:
            raise SpecError(f"{source}: not a folder: {', '.join(missing)}",
                            hint="name existing folders the server may read data files from")
        if not given:
            given = [cwd if cwd is not None else Path.cwd()]
        url = settings.artifacts_url or ""
        cached = [settings.artifacts_cache_dir] if "://" in url and not url.startswith("file://") else []
        return cls.of([*given, settings.uploads_dir, settings.artifacts_dir, *cached], excluded=[settings.home])

    def contains(self, value: str | Path) -> bool:
        """True when ``value``, resolved, is one of the roots or lies under one, and no excluded
        folder holds it more closely than that root (``FMHUB_HOME/fmhub.db`` is refused even when
        the server was started from the folder holding ``FMHUB_HOME``)."""
        path = resolve_path(value)
        if path is None:
            return False
        root = max((len(r.parts) for r in self.roots if path.is_relative_to(r)), default=-1)
        excluded = max((len(e.parts) for e in self.excluded if path.is_relative_to(e)), default=-1)
        return root >= 0 and root > excluded

    def describe(self) -> str:
        """The roots, comma-separated, for messages."""
        return ", ".join(str(r) for r in self.roots) or "(none)"

    def check(self, paths: Mapping[str, str | Path], what: str = "file") -> None:
        """Refuse every path outside the roots at once.

        Args:
            paths: Field name (``data.train``, ``path`` ...) -> the path the request gave.
            what: What the paths are, for the message (``data file``, ``model folder``).

        Raises:
            ForbiddenPathError: naming each refused field and value; ``details`` lists
                ``{"field", "value", "message"}`` per refused path, and the hint names the roots
                and the upload route.
        """
        refused = []
        for field, value in paths.items():
            if self.contains(value):
                continue
            resolved = resolve_path(value)
            shown = f"'{value}'" + (f" (resolved to {resolved})" if resolved is not None and str(resolved) != str(value)
                                    else "")
            refused.append({"field": field, "value": str(value),
                            "message": f"{shown} is outside the server's data roots"})
        if not refused:
            return
        where = "; ".join(f"{r['field']}: {r['message']}" for r in refused)
        raise ForbiddenPathError(
            f"the server does not read this {what}: {where}" if len(refused) == 1
            else f"the server does not read these {what}s: {where}",
            hint=f"the server reads files only under its data roots ({self.describe()}); upload the file "
                 f"instead ({UPLOAD_ROUTE}, the Data page of the web UI, or `--submit` from the CLI, which "
                 "uploads local files) and name the data asset NAME:VERSION, or start the server with "
                 "--data-root FOLDER",
            details=refused)


def _resolved(folders: Iterable[str | Path]) -> tuple[Path, ...]:
    out: list[Path] = []
    for folder in folders:
        resolved = resolve_path(folder)
        if resolved is not None and resolved not in out:
            out.append(resolved)
    return tuple(out)


def check_paths(ctx: "Context", paths: Mapping[str, Any], what: str = "file") -> None:
    """Refuse paths outside the data roots of a server context; nothing to do without roots (the
    local CLI). Values that name no file (``auto``, ``none``, empty, None) are skipped.

    Raises:
        ForbiddenPathError: see :meth:`DataRoots.check`.
    """
    roots = getattr(ctx, "data_roots", None)
    if roots is None:
        return
    named = {k: v for k, v in paths.items()
             if isinstance(v, (str, Path)) and str(v).strip().lower() not in NOT_PATHS}
    roots.check(named, what)


def check_folder(ctx: "Context", field: str, folder: str | Path, what: str = "model folder") -> None:
    """Refuse a folder outside the data roots, or one holding an entry (at any depth) that resolves
    outside them (a symlink that points elsewhere, the server's own FMHUB_HOME): the folder is
    copied into the artifact store, which is itself a root, so such a file would become readable.
    Nothing to do without roots (the local CLI).

    Raises:
        ForbiddenPathError: the folder, or each entry leading out (``field/relative/path``).
    """
    check_paths(ctx, {field: folder}, what)
    roots = getattr(ctx, "data_roots", None)
    base = Path(folder).expanduser()
    if roots is None or not base.is_dir():
        return
    # rglob does not descend into symlinked folders: each such link is checked itself
    entries = {f"{field}/{entry.relative_to(base).as_posix()}": entry for entry in sorted(base.rglob("*"))}
    refused = {k: v for k, v in entries.items() if not roots.contains(v)}
    if refused:
        roots.check(refused, f"{what} file")


def is_tag_names_file(value: Any) -> bool:
    """True when a ``tag_names`` (or ``label_names``) option is read as a file (a string that is not
    a comma-separated list of names), as :func:`fmhub.tasks.token_classification.resolve_tag_names`
    reads it."""
    return isinstance(value, str) and bool(value.strip()) and not ("," in value and not Path(value).is_file())


NAMES_OPTIONS = ("tag_names", "label_names")
"""The reading options that may name a names file (one name per line, or a JSON list)."""


def names_files(options: Any, prefix: str = "") -> dict[str, str]:
    """The :data:`NAMES_OPTIONS` of a spec, reading options or data dict that name a file.

    Args:
        options: A ``ReadOptions``/``DataSpec`` (attributes) or a dict; a missing option is None.
        prefix: Put before each field name (``data.`` gives ``data.label_names``).

    Returns:
        Field name -> the file's path as given, for :func:`check_paths`.
    """
    get = options.get if isinstance(options, dict) else (lambda key: getattr(options, key, None))
    return {f"{prefix}{key}": get(key) for key in NAMES_OPTIONS if is_tag_names_file(get(key))}
