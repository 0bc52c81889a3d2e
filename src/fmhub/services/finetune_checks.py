"""Checks and caps a fine-tune applies after its hyperparameters are resolved: the checks between
values (and against the task and the data spec), and the smoke-run caps on evaluated rows."""

from __future__ import annotations

from typing import Any

from fmhub.errors import SpecError
from fmhub.services.data_prep import PreparedData
from fmhub.services.specs import FinetuneSpec
from fmhub.tasks.base import Task


def cap_evaluated_rows(prepared: PreparedData, hp: Any) -> None:
    """Smoke runs: keep the first ``max_eval_samples`` validation rows and the first
    ``max_predict_samples`` test rows (Hugging Face example-script semantics), with a report note.

    The whole splits were validated; only what is evaluated (per epoch and after training) and
    predicted shrinks.
    """
    for split, key in (("validation", "max_eval_samples"), ("test", "max_predict_samples")):
        limit = getattr(hp, key)
        examples = prepared.splits.get(split)
        if limit is None or examples is None or len(examples) <= limit:
            continue
        prepared.report.notes.append(f"{split}: evaluating the first {limit} of {len(examples)} rows "
                                     f"(--{key.replace('_', '-')} {limit})")
        prepared.splits[split] = examples.subset(list(range(limit)), split)


def check_hyperparameters(spec: FinetuneSpec, task: Task, hp: Any) -> None:
    """The checks between resolved hyperparameters, the task and the data spec (each field's own
    range is checked by the spec); every problem is reported at once, naming the flags.

    Raises:
        SpecError: listing each problem.
    """
    from fmhub.training.hyperparameters import flag_name, range_problems

    problems = range_problems(hp, spec.hyperparameters)
    allowed = (*task.metric_names, "loss")
    if hp.metric_for_best_model not in allowed:
        problems.append(f"{flag_name('metric_for_best_model')} '{hp.metric_for_best_model}' is not a "
                        f"{task.name} metric; choose one of: {', '.join(allowed)}")
    data = spec.data
    no_validation = str(data.validation).strip().lower() in ("none", "") or (
        str(data.validation).strip().lower() == "auto" and not data.validation_size)
    if hp.early_stopping_patience is not None and no_validation:
        problems.append(f"{flag_name('early_stopping_patience')} needs validation data to watch "
                        f"{hp.metric_for_best_model}: give --validation FILE or --validation auto "
                        "with a --validation-size above 0")
    if problems:
        raise SpecError(f"{len(problems)} problem(s) in the hyperparameters: " + "; ".join(problems),
                        hint="fix the flags named (`fmhub finetune --help` gives each range)",
                        details=[{"message": p} for p in problems])
