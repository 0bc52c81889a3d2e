"""The task registry: one module per task, all with the :class:`~fmhub.tasks.base.Task` interface.

Adding a task: write its module and add one line to ``_REGISTRY``. A task's module is imported when
the task is first used, so listing the task names stays cheap (the command line's help texts).
"""

from __future__ import annotations

from importlib import import_module

from fmhub.errors import SpecError
from fmhub.tasks.base import Task

_REGISTRY: dict[str, str] = {
    "text-classification": "text_classification.TextClassification",
    "token-classification": "token_classification.TokenClassification",
    "question-answering": "question_answering.QuestionAnswering",
    "summarization": "summarization.Summarization",
    "translation": "translation.Translation",
    "chat-completion": "chat_completion.ChatCompletion",
}
"""Task name -> ``module.Class`` in this package (the class's ``name`` is the key)."""


def task_names() -> list[str]:
    """Names of the tasks fmhub can fine-tune and evaluate."""
    return list(_REGISTRY)


def task_class(name: str) -> type[Task]:
    """The :class:`~fmhub.tasks.base.Task` subclass registered as ``name`` (its module imported now).

    Raises:
        SpecError: when ``name`` is not a registered task.
    """
    try:
        module, _, cls = _REGISTRY[name].partition(".")
    except KeyError:
        raise SpecError(f"unknown task '{name}'", hint=f"choose one of: {', '.join(_REGISTRY)}") from None
    return getattr(import_module(f"fmhub.tasks.{module}"), cls)


def get_task(name: str) -> Task:
    """Return the task module for ``name``.

    Raises:
        SpecError: when ``name`` is not a registered task.
    """
    return task_class(name)()
