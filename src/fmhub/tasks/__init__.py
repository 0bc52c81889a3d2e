"""The task registry: one module per task, all with the :class:`~fmhub.tasks.base.Task` interface.

Adding a task: write its module and add one line to ``_REGISTRY``.
"""

from __future__ import annotations

from fmhub.errors import SpecError
from fmhub.tasks.base import Task
from fmhub.tasks.question_answering import QuestionAnswering
from fmhub.tasks.summarization import Summarization
from fmhub.tasks.text_classification import TextClassification
from fmhub.tasks.token_classification import TokenClassification
from fmhub.tasks.translation import Translation

_REGISTRY: dict[str, type[Task]] = {
    TextClassification.name: TextClassification,
    TokenClassification.name: TokenClassification,
    QuestionAnswering.name: QuestionAnswering,
    Summarization.name: Summarization,
    Translation.name: Translation,
}


def task_names() -> list[str]:
    """Names of the tasks fmhub can fine-tune and evaluate."""
    return list(_REGISTRY)


def get_task(name: str) -> Task:
    """Return the task module for ``name``.

    Raises:
        SpecError: when ``name`` is not a registered task.
    """
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise SpecError(f"unknown task '{name}'", hint=f"choose one of: {', '.join(_REGISTRY)}") from None
