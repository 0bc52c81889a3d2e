"""Cancel checked inside the job: a Trainer callback that asks "should I stop?" every few steps and,
when told so, saves a checkpoint and ends training, so a job stops by itself wherever it runs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from fmhub.errors import JobCanceledError

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
"""Seconds between two questions at most once (each may read the job's row)."""


class TrainingCanceled(JobCanceledError):
    """Training stopped because a cancel was requested; the checkpoint of the last step was saved.

    Attributes:
        step: The optimizer step training stopped at (its checkpoint is ``checkpoint-<step>``).
    """

    def __init__(self, step: int) -> None:
        super().__init__(f"training canceled at step {step}; its checkpoint was saved",
                         hint="resume the job to continue from that checkpoint")
        self.step = step


class CancelCallback(TrainerCallback):
    """Asks ``should_stop()`` after a step (at most once per ``every_s`` seconds); on True, the
    Trainer saves a checkpoint at that step and stops (no evaluation at the epoch's end).

    Args:
        should_stop: Returns True once the job should end (e.g. its row's ``cancel_requested``);
            an exception it raises is logged and counts as False.
        every_s: Seconds between two calls at least (default :data:`CHECK_EVERY_S`).

    Attributes:
        stopped_at: The step training was stopped at, or None.
    """

    def __init__(self, should_stop: Callable[[], bool], every_s: float | None = None) -> None:
        self.should_stop = should_stop
        self.every_s = CHECK_EVERY_S if every_s is None else every_s
        self.stopped_at: int | None = None
        self._last_s = time.monotonic()

    def _ask(self) -> bool:
        now = time.monotonic()
        if now - self._last_s < self.every_s:
            return False
        self._last_s = now
        try:
            return bool(self.should_stop())
        except Exception:  # noqa: BLE001 - a failed look (database busy) means: go on, ask again later
            log.warning("could not check whether the job was canceled", exc_info=True)
            return False

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:  # noqa: D102
        if self.stopped_at is None and self._ask():
            self.stopped_at = state.global_step
            log.info("cancel requested: saving a checkpoint at step %s and stopping", state.global_step)
            control.should_save = True
            control.should_training_stop = True
            control.should_evaluate = False
        return control

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:  # noqa: D102
        if self.stopped_at is not None:  # saved at the step already; no evaluation on the way out
            control.should_evaluate = False
            control.should_save = False
        return control


__all__ = ["CHECK_EVERY_S", "CancelCallback", "TrainingCanceled"]
