"""Data asset use cases: register a data file (copied, hashed), list and show assets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmhub.data.fingerprint import sha256_file
from fmhub.data.readers import read_table
from fmhub.entities import DataAsset
from fmhub.errors import DataError, FmhubError, SpecError
from fmhub.services.context import Context
from fmhub.services.data_roots import NAMES_OPTIONS, check_paths, names_files
from fmhub.store import assets_repo

if TYPE_CHECKING:
    from fmhub.services.specs import ReadOptions


def default_asset_name(path: Path) -> str:
    """A name for a data file: ``<parent folder>-<file stem>``, e.g. ``reviews-train`` for ``reviews/train.csv``."""
    raw = f"{path.parent.name}-{path.stem}" if path.parent.name else path.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-.") or "data"


def register_data_file(ctx: Context, path: str | Path, name: str | None = None, format: str | None = None,
                       encoding: str = "utf-8", *, task: str | None = None,
                       column_mapping: dict[str, str] | None = None, read_options: dict[str, Any] | None = None,
                       report: dict[str, Any] | None = None, new_version: bool = False,
                       source_name: str | None = None, delimiter: str | None = None) -> DataAsset:
    """Register ``path`` as a data asset, or return the existing version with the same sha256.

    The file is copied into the artifact store, so later edits of the user's file do not change
    what a job trained on. Without ``name``, any asset with the same content is returned (a job
    reading a registered asset's copy does not register it again).

    Args:
        task, column_mapping, read_options, report: What the file was validated as (stored with it).
        new_version: Register a new version even when identical content is already registered.
        source_name: What to record as the source (an uploaded file's own name instead of the
            server's temporary copy).
        delimiter: The CSV/TSV field separator (None: detected); the one used is stored in
            ``read_options`` unless it is the format's own (a comma for CSV, a tab for TSV).

    Raises:
        DataError: when the file is missing or unreadable.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"data file '{path}' does not exist", hint="check the path")
    digest = sha256_file(p)
    existing = None if new_version else (assets_repo.find_by_sha(ctx.db_url, name, digest) if name
                                         else assets_repo.find_any_by_sha(ctx.db_url, digest))
    if existing is not None:
        return existing
    asset_name = name or default_asset_name(p.resolve())
    table = read_table(p, format=format, encoding=encoding, delimiter=delimiter)
    version = assets_repo.next_version(ctx.db_url, asset_name)
    dest = ctx.artifacts.put_file(p, ctx.artifacts.data_url(asset_name, version, p.name))
    asset = DataAsset(name=asset_name, version=version, path=dest, format=table.format, sha256=digest,
                      rows=len(table.rows), columns=table.columns, source_path=source_name or str(p.resolve()), task=task,
                      column_mapping=column_mapping, report=report,
                      read_options={"format": table.format, "encoding": encoding, **(read_options or {}),
                                    **({"delimiter": table.delimiter}
                                       if table.delimiter not in (None, {"csv": ",", "tsv": "\t"}.get(table.format)) else {})})
    return assets_repo.add_asset(ctx.db_url, asset)


ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
ASSET_REF = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*):(?P<version>\d+|latest)$")
FILE_REF_PREFIX = "asset:"
"""``asset:NAME:VERSION`` in a queued spec: that data asset's file, read as the spec says (the
asset's stored reading options and column mapping do not apply, unlike ``NAME:VERSION``)."""


def resolve_data_ref(ctx: Context, value: str) -> DataAsset | None:
    """The data asset ``value`` names (``NAME:VERSION``, ``NAME:latest``, or either after ``asset:``),
    or None when ``value`` is a file path (an existing file always wins) or ``auto``/``none``.

    Raises:
        NotFoundError: ``value`` looks like ``NAME:VERSION`` but no such asset exists.
    """
    if value.strip().lower() in ("auto", "none", "") or _exists(value):
        return None
    match = ASSET_REF.match(value.strip().removeprefix(FILE_REF_PREFIX))
    if not match:
        return None
    version = None if match["version"] == "latest" else int(match["version"])
    return assets_repo.get_asset(ctx.db_url, match["name"], version)


def _exists(value: str) -> bool:
    """True when ``value`` names an existing file or folder (False when it cannot name one)."""
    try:
        return Path(value).expanduser().exists()
    except (RuntimeError, OSError, ValueError):  # unknown ~user, a name too long, a NUL byte
        return False


def asset_file(ctx: Context, asset: DataAsset) -> Path:
    """The local file of a data asset: its store path, or (a bucket) a copy downloaded once into
    ``FMHUB_HOME/cache/artifacts/<sha256>/``.

    Raises:
        ArtifactStoreError: the file is not in the store, or does not match its sha256.
    """
    return ctx.artifacts.local_path(asset.path, asset.sha256)


def list_assets(ctx: Context, name: str | None = None) -> list[DataAsset]:
    """Registered data assets."""
    return assets_repo.list_assets(ctx.db_url, name)


def create_data_asset(ctx: Context, path: str, name: str, task: str | None = None,
                      options: "ReadOptions | None" = None, source_name: str | None = None) -> tuple[DataAsset, bool]:
    """``fmhub data create``: validate ``path`` for ``task`` (when given) and register it as ``name``.

    Args:
        path: The data file.
        name: Asset name; a new version is made unless this name already has identical content.
        task: Validate the rows for this task first (the report is stored with the asset).
        options: Column mapping and reading options (format, encoding, label_type, tag_names,
            label_names).
        source_name: The name to show for the file (an upload's own name): errors, the stored
            report and ``source_path`` say it instead of ``path``.

    Returns:
        (the asset, True when it was created; False when identical content was already registered).

    Raises:
        DataError: the file cannot be read, or has errors for ``task`` (all listed); nothing is
            registered then.
        ForbiddenPathError: on a server, ``path`` (or a ``tag_names`` / ``label_names`` file) is
            outside its data roots.
    """
    if source_name is None:
        return _create_data_asset(ctx, path, name, task, options, None)
    try:
        asset, created = _create_data_asset(ctx, path, name, task, options, source_name)
    except FmhubError as exc:
        raise rename_path(exc, str(path), source_name) from None
    return asset, created


def rename_path(value: Any, path: str, name: str) -> Any:
    """``value`` (an error, a report dict, text) with every mention of ``path`` replaced by ``name``."""
    if isinstance(value, FmhubError):
        value.message, value.hint, value.details = (rename_path(value.message, path, name),
                                                    rename_path(value.hint, path, name),
                                                    rename_path(value.details, path, name))
        value.args = (value.message,)
        return value
    if isinstance(value, str):
        return value.replace(path, name)
    if isinstance(value, list):
        return [rename_path(v, path, name) for v in value]
    if isinstance(value, dict):
        return {k: rename_path(v, path, name) for k, v in value.items()}
    return value


def _create_data_asset(ctx: Context, path: str, name: str, task: str | None, options: "ReadOptions | None",
                       source_name: str | None) -> tuple[DataAsset, bool]:
    from fmhub.services.data_prep import prepare_data, report_error
    from fmhub.services.specs import DataSpec, ReadOptions
    from fmhub.tasks import get_task

    options = options or ReadOptions()
    check_paths(ctx, {"path": path, **names_files(options)}, "data file")
    if not ASSET_NAME.match(name):
        raise SpecError(f"invalid data asset name {name!r}",
                        hint="use letters, digits, '.', '_' and '-' (starting with a letter or digit), "
                             "e.g. --name reviews-train")
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"data file '{path}' does not exist", hint="check the path")
    read = {k: v for k, v in options.model_dump(include={"label_type", "tag_names", "on_invalid_row",
                                                         "label_names"}).items()
            if v not in (None, "error")}
    existing = assets_repo.find_by_sha(ctx.db_url, name, sha256_file(p))
    if existing is not None and _same_use(existing, task, options, read):
        return existing, False
    report, mapping = None, None
    if task:
        spec = DataSpec(train=str(p), validation="none", test="none", **options.model_dump())
        prepared = prepare_data(spec, get_task(task), None, 512, 42)
        if not prepared.report.ok:
            raise report_error(prepared.report)
        report, mapping = prepared.report.to_dict(), dict(prepared.splits["train"].columns)
        if source_name:
            report = rename_path(report, str(p), source_name)
    # Same content read or validated differently than ``existing``: a new version says so.
    asset = register_data_file(ctx, p, name=name, format=options.format, encoding=options.encoding, task=task,
                               column_mapping=mapping, read_options=read, report=report,
                               new_version=existing is not None, source_name=source_name,
                               delimiter=options.delimiter)
    return asset, True


def asset_report(asset: DataAsset) -> Any:
    """The validation report stored with ``asset`` as a ``ValidationReport``, or None."""
    from fmhub.data.report import ValidationReport

    return ValidationReport.from_dict(asset.report) if asset.report else None


def _same_use(asset: DataAsset, task: str | None, options: "ReadOptions", read: dict[str, Any]) -> bool:
    """True when registering again would describe the asset exactly as it is (task, mapping given,
    encoding, label options)."""
    stored = asset.read_options or {}
    same_read = all(stored.get(k) == v for k, v in read.items()) and \
        all(k in read for k in ("label_type", "tag_names", "on_invalid_row", "label_names") if k in stored)
    same_map = not options.column_mapping or all((asset.column_mapping or {}).get(k) == v
                                                 for k, v in options.column_mapping.items())
    same_delimiter = options.delimiter is None or stored.get("delimiter") == options.delimiter
    return asset.task == task and same_read and same_map and same_delimiter and \
        stored.get("encoding", "utf-8") == options.encoding


def get_data_asset(ctx: Context, ref: str) -> DataAsset:
    """``NAME[:VERSION]`` (latest without a version).

    Raises:
        NotFoundError: no such asset or version.
    """
    name, _, version = ref.partition(":")
    return assets_repo.get_asset(ctx.db_url, name, int(version) if version.isdigit() else None)


def resolve_data_spec(ctx: Context, data: Any, task: str | None = None) -> Any:
    """Replace ``NAME:VERSION`` data asset references in a data spec's ``train`` / ``validation`` /
    ``test`` by the assets' files. The stored format, encoding, label options and column mapping of
    the training (or, for an evaluation, test) asset apply unless the spec sets them.

    On a server (``ctx.data_roots`` set) every file path the spec names, a ``tag_names`` or
    ``label_names`` file included (given by the spec or stored with the asset), must lie under the
    data roots.

    Raises:
        NotFoundError: a reference names no registered asset.
        ForbiddenPathError: a path outside the server's data roots (every one listed).
    """
    update: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for key in ("train", "validation", "test"):
        value = getattr(data, key, None)
        asset = resolve_data_ref(ctx, value) if isinstance(value, str) else None
        if asset is None:
            paths[f"data.{key}"] = value
            continue
        update[key] = str(asset_file(ctx, asset))
        if value.startswith(FILE_REF_PREFIX):  # a file registered at submit: read as the spec says
            continue
        stored = asset.read_options or {}
        if key == "train" or key == "test" and not hasattr(data, "train"):
            if data.format is None and stored.get("format"):
                update["format"] = stored["format"]
            if data.encoding == "utf-8" and stored.get("encoding"):
                update["encoding"] = stored["encoding"]
            if data.delimiter is None and stored.get("delimiter"):
                update["delimiter"] = stored["delimiter"]
            if data.label_type is None and stored.get("label_type"):
                update["label_type"] = stored["label_type"]
            if data.tag_names is None and stored.get("tag_names"):
                update["tag_names"] = stored["tag_names"]
            if getattr(data, "label_names", None) is None and stored.get("label_names"):
                update["label_names"] = stored["label_names"]
            if data.on_invalid_row == "error" and stored.get("on_invalid_row") == "drop":
                update["on_invalid_row"] = "drop"
            if asset.column_mapping and asset.task == task:  # its validated mapping, unless the spec maps a key
                update["column_mapping"] = {**asset.column_mapping, **data.column_mapping}
    paths.update(names_files({key: update.get(key, getattr(data, key, None)) for key in NAMES_OPTIONS}, "data."))
    check_paths(ctx, paths, "data file")
    return data.model_copy(update=update) if update else data


def queued_data_refs(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """A data spec for the queue, which a worker on any machine can run later as submitted:

    - every ``train``/``validation``/``test`` entry naming a file is registered as a data asset
      (named after its folder and file, see :func:`default_asset_name`; identical content already
      registered under that name is reused) and replaced by ``asset:NAME:VERSION``, so the job reads
      the asset through the artifact store, never the submitter's path;
    - a data asset named by ``NAME:latest`` (or ``asset:NAME:latest``) is pinned to the version that
      is the latest now, so a version registered later does not change what the job reads;
    - a ``tag_names`` / ``label_names`` file is read now and its names put in the spec (a list), so
      the job does not depend on a path of the submitting machine.

    Raises:
        DataError: a file cannot be read, or a names file holds no names.
        NotFoundError: ``NAME:latest`` names no registered asset.
        ForbiddenPathError: on a server, a names file outside its data roots.
    """
    out = dict(data)
    for key in ("train", "validation", "test"):
        value = out.get(key)
        if isinstance(value, str) and value not in ("auto", "none", "") and _is_file(value):
            path = Path(value).expanduser().resolve()
            asset = register_data_file(ctx, path, name=default_asset_name(path), format=data.get("format"),
                                       encoding=data.get("encoding") or "utf-8", delimiter=data.get("delimiter"))
            out[key] = f"{FILE_REF_PREFIX}{asset.ref}"
        elif isinstance(value, str) and value.strip().endswith(":latest"):
            asset = resolve_data_ref(ctx, value)
            if asset is not None:
                prefix = FILE_REF_PREFIX if value.strip().startswith(FILE_REF_PREFIX) else ""
                out[key] = f"{prefix}{asset.name}:{asset.version}"
    files = names_files(out, "data.")
    check_paths(ctx, files, "data file")
    if files:
        from fmhub.tasks.token_classification import resolve_tag_names

        for field, value in files.items():
            if not _is_file(value):  # left to the job, which names the problem
                continue
            key = field.removeprefix("data.")
            out[key] = resolve_tag_names(value, what=key.removesuffix("_names"),
                                         example="negative,positive" if key == "label_names" else "O,B-PER,I-PER")
    return out


def _is_file(value: str) -> bool:
    try:
        return Path(value).expanduser().is_file()
    except (RuntimeError, OSError, ValueError):
        return False


def absolute_data_paths(data: dict[str, Any]) -> dict[str, Any]:
    """The ``train``/``validation``/``test`` entries of a data spec that name existing files, made
    absolute, so a queued job reads the same files whatever folder its process starts in."""
    out = dict(data)
    for key in ("train", "validation", "test"):
        value = out.get(key)
        if isinstance(value, str) and value not in ("auto", "none", "") and Path(value).expanduser().is_file():
            out[key] = str(Path(value).expanduser().resolve())
    return out
