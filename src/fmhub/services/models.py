"""Model use cases: list and show the catalog (system + workspace registries), import a folder,
resolve a model reference to local files, register a fine-tuned version.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmhub.catalog.cards import filter_cards, get_system_card, load_system_cards
from fmhub.catalog.importer import copy_model_folder, inspect_model_folder
from fmhub.catalog.sources import is_available_offline, require_local_path
from fmhub.entities import ModelCard, ModelSource, ModelVersion
from fmhub.errors import ConflictError, NotFoundError, SpecError
from fmhub.services.context import Context
from fmhub.store import models_repo
from fmhub.tasks.adapters import ADAPTER_FILE, adapter_base_ref, is_adapter_folder

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


@dataclass
class ResolvedModel:
    """A model reference resolved to files on this machine.

    Attributes:
        ref: ``name`` (system registry) or ``name:version`` (workspace).
        path: The Hugging Face folder.
        card: The card (a workspace version gets a card built from its row).
        version: The workspace version, if the reference is one.
        base_path: For a LoRA adapter version, the local folder of the base model it belongs to
            (see :mod:`fmhub.tasks.adapters`); None for a full model.
    """

    ref: str
    path: Path
    card: ModelCard
    version: ModelVersion | None = None
    base_path: Path | None = None


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``name[:version]``.

    Raises:
        SpecError: when the version is not a positive integer.
    """
    name, sep, version = ref.strip().partition(":")
    if not sep:
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise SpecError(f"'{ref}' is not NAME or NAME:VERSION with VERSION a positive integer")
    return name, int(version)


def _not_found(ctx: Context, name: str) -> NotFoundError:
    import difflib

    names = [c.name for c in load_system_cards()] + [v.name for v in models_repo.list_versions(ctx.db_url, latest_only=True)]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = (f"did you mean {', '.join(close)}? " if close else "") + \
        "see `fmhub models list` (catalog) and `fmhub models list --registry workspace` (yours)"
    return NotFoundError(f"no model named '{name}' in the catalog or the workspace", hint=hint)


def version_card(v: ModelVersion) -> ModelCard:
    """A card for a workspace version (registry ``workspace``)."""
    lineage = v.lineage or {}
    return ModelCard(
        name=v.name,
        description=v.description,
        architecture=lineage.get("architecture", "unknown"),
        parameters=int(lineage.get("parameters") or 0),
        inference_tasks=[v.task],
        finetuning_tasks=[v.task] if v.task in lineage.get("finetuning_tasks", [v.task]) else [],
        license=v.license or "unknown",
        languages=lineage.get("languages", []),
        source=ModelSource(kind="local", url=v.path),
        registry="workspace",
        version=v.version,
        available_offline="://" in v.path or Path(v.path).is_dir(),  # a bucket's versions download on use
    )


def list_models(ctx: Context, task: str | None = None, license: str | None = None, search: str | None = None,
                registry: str | None = None) -> list[ModelCard]:
    """List catalog entries: system cards and the latest version of each workspace model.

    Args:
        ctx: Service context.
        task: Keep models that serve or fine-tune this task.
        license: Keep models with this license (case-insensitive).
        search: Case-insensitive text search over name, description and architecture.
        registry: ``system``, ``workspace`` or None for both.
    """
    check_catalog_filters(task=task, registry=registry, license=license, ctx=ctx)
    cards: list[ModelCard] = []
    if registry in (None, "system"):
        for card in load_system_cards():
            cards.append(card.model_copy(update={"available_offline": is_available_offline(card)}))
    if registry in (None, "workspace"):
        cards.extend(version_card(v) for v in models_repo.list_versions(ctx.db_url, latest_only=True))
    return filter_cards(cards, task=task, license=license, search=search)


def check_catalog_filters(task: str | None = None, finetune_task: str | None = None,
                          registry: str | None = None, license: str | None = None,  # noqa: A002
                          ctx: Context | None = None) -> None:
    """Refuse filter values the catalog cannot match, listing the known values.

    Args:
        task / finetune_task / registry / license: The filters (None: not filtered).
        ctx: Service context: with it, ``license`` is checked against the system cards' licenses
            and the workspace models' (``unknown`` for a model registered without one).

    Raises:
        SpecError: an unknown registry, a task no catalog card lists, or a license no model has
            (``details`` names the field, the value and the known values).
    """
    if registry not in (None, "system", "workspace"):
        raise _unknown_filter("registry", registry, ["system", "workspace"])
    known = sorted({t for c in load_system_cards() for t in (*c.inference_tasks, *c.finetuning_tasks)})
    for field, value in (("task", task), ("finetune_task", finetune_task)):
        if value is not None and value not in known:
            raise _unknown_filter(field, value, known)
    if license and ctx is not None:
        licenses = sorted({c.license.lower() for c in load_system_cards()}
                          | set(models_repo.count_latest_by(ctx.db_url, "license")))
        if license.strip().lower() not in licenses:
            raise _unknown_filter("license", license, licenses)


def _unknown_filter(field: str, value: str, known: list[str]) -> SpecError:
    import difflib

    noun = {"finetune_task": "fine-tuning task"}.get(field, field)
    close = difflib.get_close_matches(value.strip().lower(), known, n=1)
    message = f"unknown {noun} '{value}'" + (f"; did you mean '{close[0]}'?" if close else "")
    return SpecError(message, hint=f"use one of: {', '.join(known)}",
                     details=[{"field": field, "value": value, "message": message, "known": known}])


def page_models(ctx: Context, task: str | None = None, license: str | None = None, search: str | None = None,
                registry: str | None = None, limit: int = 50, offset: int = 0,
                finetune_task: str | None = None) -> tuple[list[ModelCard], int]:
    """One page of :func:`list_models` (system cards first, then workspace models by name) and the
    number of matches; the workspace part is filtered and paged in the database.

    ``finetune_task`` keeps models fmhub can fine-tune for that task (a workspace version can be
    fine-tuned further for its own task).

    Raises:
        SpecError: unknown registry, task or license.
    """
    check_catalog_filters(task=task, finetune_task=finetune_task, registry=registry, license=license, ctx=ctx)
    cards = load_system_cards()
    system = [] if registry == "workspace" else filter_cards(cards, task=task, license=license, search=search,
                                                             finetune_task=finetune_task)
    items = [c.model_copy(update={"available_offline": is_available_offline(c)})
             for c in system[offset:offset + limit]]
    if registry == "system":
        return items, len(system)
    if task and finetune_task and task != finetune_task:
        return items, len(system)  # a workspace version serves and fine-tunes one task
    versions, ws_total = models_repo.search_latest(ctx.db_url, task=task or finetune_task, license=license,
                                                   search=search, limit=limit - len(items),
                                                   offset=max(0, offset - len(system)))
    return items + [version_card(v) for v in versions], len(system) + ws_total


def scoring_example(tasks: list[str], labels: list[str] | None = None,
                    model: str | None = None) -> dict[str, Any] | None:
    """The request and response of an online endpoint serving the first of ``tasks`` fmhub serves.

    Args:
        tasks: Candidate tasks, in order.
        labels: The model's own label (or tag) names, from its lineage: the sample response then
            predicts those instead of the generic ``positive`` / ``PER``.
        model: The model's ``name:version`` (default ``NAME:VERSION``).
    """
    from fmhub.tasks import get_task, task_names

    for name in tasks:
        if name in task_names():
            task = get_task(name)
            return {"task": name, "request": {"input_data": task.score_example},
                    "response": {"deployment": "blue", "model": model or "NAME:VERSION", "task": name,
                                 "predictions": own_labels(task.score_response_example, labels)}}
    return None


def own_labels(predictions: list[Any], labels: list[str] | None) -> list[Any]:
    """A sample response speaking a model's own labels: each ``label`` becomes one of ``labels``
    (in turn) and each entity ``type`` one of the entity types of IOB2 ``labels``."""
    if not labels:
        return predictions
    types = list(dict.fromkeys(t.split("-", 1)[1] for t in labels if t[:2] in ("B-", "I-")))
    generic: dict[str, str] = {}  # the sample's entity types (PER, LOC) -> the model's, in turn
    out: list[Any] = []
    for i, pred in enumerate(predictions):
        if isinstance(pred, dict) and "label" in pred:
            pred = {**pred, "label": labels[i % len(labels)]}
        elif isinstance(pred, dict) and isinstance(pred.get("tags"), list) and types:
            for tag in pred["tags"]:
                if tag[:2] in ("B-", "I-"):
                    generic.setdefault(tag[2:], types[len(generic) % len(types)])

            def own(tag: str) -> str:
                return tag[:2] + generic[tag[2:]] if tag[:2] in ("B-", "I-") and tag[2:] in generic else tag

            pred = {**pred, "tags": [own(t) for t in pred["tags"]],
                    "entities": [{**e, "type": generic.get(e.get("type"), types[0])} if isinstance(e, dict) else e
                                 for e in pred.get("entities") or []]}
        out.append(pred)
    return out


def show_model(ctx: Context, ref: str, base_url: str | None = None,
               needs_key: bool | None = None) -> dict[str, Any]:
    """The card of ``ref`` with an endpoint request/response example for its task; for workspace
    models also the version, lineage, metrics and versions.

    With ``base_url`` (the server's address, e.g. ``http://127.0.0.1:8000``; ``needs_key``: it
    requires API keys) also ``code_samples``
    (fine-tune, predict, deploy for CLI / Python / REST), ``served_tasks`` (the tasks it can
    predict and deploy for), ``offline_hint`` (how to get its files; None when they are here) and,
    for workspace versions, ``head_problem`` (why it cannot predict, be evaluated or deployed yet,
    e.g. an imported encoder whose head was never trained; None when it can).
    """
    out = _show_model(ctx, ref)
    card = out["card"]
    version = out.get("version") or {}
    out["scoring_example"] = scoring_example([*card["inference_tasks"], *card["finetuning_tasks"]],
                                             labels=(version.get("lineage") or {}).get("labels"),
                                             model=f"{version['name']}:{version['version']}" if version else None)
    if base_url is not None:
        from fmhub.services.code_samples import code_samples, offline_hint, served_tasks

        version = out.get("version")
        out.update(served_tasks=served_tasks(card), offline_hint=offline_hint(card),
                   code_samples=code_samples(card, base_url, needs_key=needs_key),
                   head_problem=head_problem(version["path"], version["task"]) if version else None)
    return out


def head_problem(path: str | Path, task: str) -> str | None:
    """Why the model folder at ``path`` cannot predict, be evaluated or be deployed for ``task``, or
    None: its files are missing, or its task head was never trained (see
    :meth:`~fmhub.tasks.base.Task.head_problem`; reads ``config.json`` only). A task this release
    does not know is not checked."""
    from fmhub.tasks import get_task, task_names

    if not Path(path).is_dir():
        return "its files are not on this machine"
    return get_task(task).head_problem(path) if task in task_names() else None


def _show_model(ctx: Context, ref: str) -> dict[str, Any]:
    name, version = parse_ref(ref)
    if version is None:
        try:
            card = get_system_card(name)
            return {"card": card.model_copy(update={"available_offline": is_available_offline(card)}).model_dump()}
        except NotFoundError:
            if not models_repo.list_versions(ctx.db_url, name=name):
                raise _not_found(ctx, name) from None
    v = models_repo.get_version(ctx.db_url, name, version)
    versions = [x.version for x in models_repo.list_versions(ctx.db_url, name=name)]
    return {"card": version_card(v).model_dump(), "version": v.model_dump(mode="json"), "versions": versions}


def resolve_model(ctx: Context, ref: str) -> ResolvedModel:
    """Find the local files of a system model name or workspace ``name[:version]``.

    Raises:
        NotFoundError: no such model.
        ModelUnavailableError: a hub model whose weights are not on this machine (the hint says
            how to import them).
    """
    name, version = parse_ref(ref)
    if version is None:
        try:
            card = get_system_card(name)
        except NotFoundError:
            if not models_repo.list_versions(ctx.db_url, name=name):
                raise _not_found(ctx, name) from None
        else:
            offline = ctx.settings.offline or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
            return ResolvedModel(card.name, require_local_path(card, allow_download=not offline), card)
    v = models_repo.get_version(ctx.db_url, name, version)
    path = version_path(ctx, v)
    base_path = None
    if is_adapter_folder(path):
        base_ref = adapter_base_ref(path)
        if not base_ref or base_ref == v.ref:
            raise SpecError(f"model '{v.ref}' is a LoRA adapter that names no base model",
                            hint=f"re-register it with its base in {ADAPTER_FILE}")
        base_path = resolve_model(ctx, base_ref).path
    return ResolvedModel(v.ref, path, version_card(v), v, base_path)


def version_path(ctx: Context, v: ModelVersion) -> Path:
    """The local folder of a workspace version's files: its store path, or (a bucket) a copy
    downloaded once into ``FMHUB_HOME/cache/artifacts/<sha256 of its manifest>``.

    Raises:
        ArtifactStoreError: the version's files are not in the store.
    """
    return ctx.artifacts.local_path(v.path)


def register_folder(ctx: Context, folder: Path, name: str, task: str, *, license: str | None,
                    description: str = "", base_model: str | None = None, lineage: dict[str, Any] | None = None,
                    metrics: dict[str, Any] | None = None, move: bool = False) -> ModelVersion:
    """Place a Hugging Face folder in the artifact store and register it as the next version.

    The folder is copied (or moved) into place before the row is written, so a registered version
    always has its files; a failed insert removes the copy.

    Raises:
        SpecError: when ``name`` is not a valid model name.
    """
    if not NAME_RE.match(name):
        raise SpecError(f"'{name}' is not a valid model name",
                        hint="use letters, digits, '.', '_' and '-' (up to 200 characters)")
    if any(c.name.lower() == name.lower() for c in load_system_cards()):
        raise ConflictError(f"'{name}' is the name of a catalog model",
                            hint="choose another name for your workspace model, e.g. my-" + name)
    store = ctx.artifacts
    move = move and store.is_local  # a bucket gets a copy; the caller removes its folder
    for _ in range(5):
        version = models_repo.next_version(ctx.db_url, name)
        dest = store.model_url(name, version)
        if store.exists(dest):
            store.delete(dest)  # files of a version whose registration never completed
        store.put_dir(folder, dest, move=move)
        entity = ModelVersion(name=name, version=version, task=task, path=dest, license=license,
                              description=description, base_model=base_model, lineage=lineage or {},
                              metrics=metrics or {})
        try:
            return models_repo.add_version(ctx.db_url, entity)
        except Exception as exc:  # a concurrent registration took this version number
            from sqlalchemy.exc import IntegrityError

            if move:
                shutil.move(dest, str(folder))
            else:
                store.delete(dest)
            if not isinstance(exc, IntegrityError):
                raise
    raise SpecError(f"could not register '{name}': too many concurrent registrations", hint="try again")


def import_model(ctx: Context, path: str | Path, name: str, task: str, license: str | None = None,
                 allow_pickle: bool = False, description: str = "") -> ModelVersion:
    """Register a local Hugging Face folder (config + safetensors + tokenizer) as a workspace model.

    Never runs remote code; refuses pickle weights unless ``allow_pickle``.

    Raises:
        ImportRefusedError: missing files, remote code, or pickle weights not allowed.
        SpecError: unknown task or invalid name.
    """
    from fmhub.tasks import task_names

    if task not in task_names():
        raise SpecError(f"unknown task '{task}'", hint=f"choose one of: {', '.join(task_names())}")
    info = inspect_model_folder(Path(path), allow_pickle=allow_pickle)
    staging = ctx.artifacts.cache_dir("staging", f"{name}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    copy_model_folder(Path(path), staging, allow_pickle=allow_pickle)
    lineage = {"source": "import", "imported_from": str(Path(path).resolve()),
               "architecture": ", ".join(info.architectures) or (info.model_type or "unknown"),
               "parameters": info.parameters, "model_type": info.model_type, "weights": info.weight_files}
    try:
        return register_folder(ctx, staging, name, task, license=license, description=description,
                               lineage=lineage, move=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
