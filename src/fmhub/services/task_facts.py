"""What the front doors show about the tasks: their names, each one's headline metric and reading
options. The task modules (:mod:`fmhub.tasks`) hold these facts; front doors read them here."""

from __future__ import annotations

from fmhub.tasks import get_task, task_names


def tasks() -> list[str]:
    """Names of the tasks fmhub can fine-tune and evaluate, in the registry's order."""
    return task_names()


def tasks_text() -> str:
    """The task names as a phrase for help texts: ``"a, b or c"``."""
    names = task_names()
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


TOKEN_COUNT_MODEL = "all-MiniLM-L6-v2"
"""The model whose tokenizer ``fmhub data validate`` counts tokens with, for the tasks it takes."""


def token_count_model(task: str) -> str:
    """The catalog model whose tokenizer counts a data file's tokens for ``task`` when the user
    names none: :data:`TOKEN_COUNT_MODEL` when it fine-tunes the task, else the first system card
    that does (``SmolLM2-135M-Instruct`` for the chat task); :data:`TOKEN_COUNT_MODEL` when no
    card does (the spec check then names the task's models)."""
    from fmhub.catalog.cards import filter_cards, load_system_cards

    cards = filter_cards(load_system_cards(), finetune_task=task)
    names = [card.name for card in cards]
    return TOKEN_COUNT_MODEL if TOKEN_COUNT_MODEL in names or not names else names[0]


def headline_metric(task: str | None) -> str | None:
    """The metric a job list shows for ``task``; None for an unknown task (or none given)."""
    return get_task(task).headline_metric if task in task_names() else None


def compares_zero_shot(task: str | None) -> bool:
    """Whether a fine-tune of ``task`` also scores its base model zero-shot on the test data (a
    chat model answers untrained, a classifier head does not)."""
    return task in task_names() and get_task(task).zero_shot_baseline


def offers_label_type(task: str | None) -> bool:
    """Whether the labels of ``task`` can be read as numbers (the ``label_type`` read option)."""
    return task in task_names() and get_task(task).label_type_option
