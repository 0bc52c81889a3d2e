"""System model cards: markdown files with YAML front matter shipped inside the package.

Each ``cards/<name>.md`` file holds every :class:`~fmhub.entities.ModelCard` field except
``description`` (the markdown body after the front matter), ``registry``, ``version`` and
``available_offline`` (filled in at run time).
"""

from __future__ import annotations

import difflib
import functools
from importlib import resources

import yaml
from pydantic import ValidationError

from fmhub.entities import ModelCard
from fmhub.errors import NotFoundError

#: Front-matter keys a card file must not set (they are derived, not authored).
RESERVED_KEYS = ("description", "registry", "version", "available_offline")


def parse_card_text(text: str, filename: str) -> ModelCard:
    """Parse one card file: YAML front matter between ``---`` lines, then the markdown body.

    Args:
        text: The file's content.
        filename: The file's name, used in error messages and checked against ``name``.

    Returns:
        The validated card with ``registry="system"`` and the body as ``description``.

    Raises:
        ValueError: If the front matter is missing or not a mapping, sets a reserved key, does
            not validate as a ``ModelCard``, or its ``name`` differs from the file name. The
            message names the file.
    """
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        raise ValueError(f"{filename}: card must start with a '---' line (YAML front matter)")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise ValueError(f"{filename}: front matter has no closing '---' line") from None
    try:
        meta = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        raise ValueError(f"{filename}: front matter is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{filename}: front matter must be a YAML mapping")
    reserved = sorted(set(meta) & set(RESERVED_KEYS))
    if reserved:
        raise ValueError(f"{filename}: front matter must not set {', '.join(reserved)}")
    body = "\n".join(lines[end + 1 :]).strip()
    try:
        card = ModelCard(**meta, description=body, registry="system")
    except ValidationError as exc:
        raise ValueError(f"{filename}: invalid model card: {exc}") from exc
    stem = filename.rsplit("/", 1)[-1].removesuffix(".md")
    if card.name != stem:
        raise ValueError(f"{filename}: name {card.name!r} must match the file name {stem!r}")
    return card


@functools.cache
def _cached_cards() -> tuple[ModelCard, ...]:
    folder = resources.files("fmhub.catalog").joinpath("cards")
    entries = sorted(
        (e for e in folder.iterdir() if e.name.endswith(".md") and e.is_file()),
        key=lambda e: e.name.lower(),
    )
    cards = [parse_card_text(e.read_text(encoding="utf-8"), f"cards/{e.name}") for e in entries]
    seen: set[str] = set()
    for card in cards:
        if card.name.lower() in seen:
            raise ValueError(f"cards/{card.name}.md: duplicate card name {card.name!r}")
        seen.add(card.name.lower())
    return tuple(cards)


def load_system_cards() -> list[ModelCard]:
    """Return every system card, sorted by name (case-insensitive).

    The files are parsed once per process; each call returns fresh copies that callers may
    modify.

    Returns:
        The cards of the system registry.

    Raises:
        ValueError: If a packaged card file is invalid (the message names the file).
    """
    return [card.model_copy(deep=True) for card in _cached_cards()]


def get_system_card(name: str) -> ModelCard:
    """Return the system card called ``name`` (case-insensitive; a hub id also matches).

    Args:
        name: Catalog name such as ``bert-base-uncased``, or a hub id such as
            ``google-bert/bert-base-uncased``.

    Returns:
        A copy of the card.

    Raises:
        NotFoundError: If no card matches; the hint suggests close names.
    """
    wanted = name.strip().lower()
    for card in _cached_cards():
        hub_id = (card.source.hub_id or "").lower()
        if card.name.lower() == wanted or (hub_id and hub_id == wanted):
            return card.model_copy(deep=True)
    names = [card.name for card in _cached_cards()]
    by_lower = {n.lower(): n for n in names}
    close = [by_lower[n] for n in difflib.get_close_matches(wanted, list(by_lower), n=3, cutoff=0.5)]
    if close:
        hint = f"Did you mean {', '.join(close)}? `fmhub models list` shows every model."
    else:
        hint = f"System models: {', '.join(names)}."
    raise NotFoundError(f"No model named {name!r} in the system catalog.", hint=hint)


def filter_cards(
    cards: list[ModelCard],
    task: str | None = None,
    license: str | None = None,  # noqa: A002 - the catalog's word
    search: str | None = None,
    finetune_task: str | None = None,
) -> list[ModelCard]:
    """Keep the cards that match every given filter, in their original order.

    Args:
        cards: Cards to filter.
        task: Keep cards that list this task as an inference or a fine-tuning task.
        license: Keep cards with this license id (case-insensitive).
        search: Keep cards whose name, display name, description or architecture contains this
            text (case-insensitive).
        finetune_task: Keep cards that fmhub can fine-tune for this task.

    Returns:
        The matching cards (the same objects, not copies).
    """
    out = []
    needle = search.lower() if search else None
    for card in cards:
        if task and task not in card.inference_tasks and task not in card.finetuning_tasks:
            continue
        if finetune_task and finetune_task not in card.finetuning_tasks:
            continue
        if license and card.license.lower() != license.strip().lower():
            continue
        if needle:
            haystack = (card.name, card.display_name or "", card.description, card.architecture)
            if not any(needle in text.lower() for text in haystack):
                continue
        out.append(card)
    return out
