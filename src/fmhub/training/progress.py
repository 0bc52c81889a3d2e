"""Progress reporting: a Trainer callback that turns training state into progress events.

The training loop reports only through :class:`ProgressSink` objects (the job's event log, the
terminal's progress bar, ...); it never prints as its only record.
"""

from __future__ import annotations

import math
import time
from typing import Any, Protocol

from transformers import TrainerCallback


class ProgressSink(Protocol):
    """Something that receives progress: events (stored) and step ticks (displayed)."""

    def event(self, kind: str, data: dict[str, Any]) -> None:
        """Record an event: ``kind`` is ``train`` (loss), ``eval`` (metrics), ``stage`` or ``done``."""

    def step(self, step: int, total: int, loss: float | None) -> None:
        """A training step finished (``step`` of ``total`` optimizer steps)."""


class SinkFanout:
    """Sends every call to several sinks; one sink failing never stops training."""

    def __init__(self, *sinks: ProgressSink) -> None:
        self.sinks = [s for s in sinks if s is not None]

    def event(self, kind: str, data: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.event(kind, data)

    def step(self, step: int, total: int, loss: float | None) -> None:
        for sink in self.sinks:
            sink.step(step, total, loss)


class ProgressCallback(TrainerCallback):
    """Trainer callback emitting ``train`` and ``eval`` events with step, total, loss, eta_s.

    Args:
        sink: Where events go.
        batch_rows: Rows per optimizer step (batch size x accumulation), for ``samples_per_s``.
        steps_per_epoch: Optimizer steps in one pass over the training data (for the plan line;
            None: the Trainer's own count).
    """

    def __init__(self, sink: ProgressSink, batch_rows: int, steps_per_epoch: int | None = None) -> None:
        self.sink = sink
        self.batch_rows = batch_rows
        self.steps_per_epoch = steps_per_epoch
        self.t0: float | None = None
        self.first_step = 0
        self.last_loss: float | None = None

    def _eta(self, state: Any) -> tuple[float, float]:
        """Seconds since this run began, and the estimated seconds left (from this run's pace)."""
        elapsed = time.perf_counter() - (self.t0 or time.perf_counter())
        done = max(state.global_step - self.first_step, 1)
        eta = elapsed / done * max(state.max_steps - state.global_step, 0)
        return elapsed, eta

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102 - Trainer hook
        self.t0 = time.perf_counter()
        self.first_step = state.global_step  # > 0 when resuming from a checkpoint
        per_epoch = self.steps_per_epoch or max(1, round(state.max_steps / max(state.num_train_epochs or 1, 1)))
        self.sink.event("stage", {"stage": "training", "total_steps": state.max_steps,
                                  "epochs": round(state.max_steps / per_epoch, 4), "steps_per_epoch": per_epoch,
                                  "plan": training_plan(state.max_steps, per_epoch), "step": state.global_step})

    def on_save(self, args, state, control, **kwargs):  # noqa: D102 - Trainer hook
        self.sink.event("checkpoint", {"step": state.global_step, "total": state.max_steps,
                                       "epoch": round(state.epoch or 0.0, 4),
                                       "checkpoint": f"checkpoint-{state.global_step}"})

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102 - Trainer hook
        self.sink.step(state.global_step, state.max_steps, self.last_loss)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102 - Trainer hook
        logs = dict(logs or {})
        elapsed, eta = self._eta(state)
        base = {"step": state.global_step, "total": state.max_steps,
                "epoch": round(state.epoch or 0.0, 4), "elapsed_s": round(elapsed, 2), "eta_s": round(eta, 1)}
        if "loss" in logs:
            self.last_loss = float(logs["loss"])
            rate = (state.global_step - self.first_step) * self.batch_rows / elapsed if elapsed > 0 else None
            self.sink.event("train", {**base, "loss": self.last_loss,
                                      "learning_rate": logs.get("learning_rate"),
                                      "samples_per_s": round(rate, 2) if rate else None})
        elif any(k.startswith("eval_") for k in logs):
            metrics = {k.removeprefix("eval_"): v for k, v in logs.items() if k.startswith("eval_")}
            if isinstance(metrics.get("loss"), (int, float)) and math.isfinite(metrics["loss"]):
                metrics["perplexity"] = math.exp(min(float(metrics["loss"]), 700.0))  # exp(token loss)
            self.sink.event("eval", {**base, "split": "validation", "metrics": metrics})


def training_plan(total_steps: int, steps_per_epoch: int) -> str:
    """What a run will do, in words that match the step count (``--max-steps`` included).

    Examples: ``"3 epochs of 100 steps (300 steps)"``, ``"8 steps: part of 1 epoch of 100 steps"``,
    ``"2.5 epochs of 100 steps (250 steps)"``.

    Args:
        total_steps: Optimizer steps the run takes.
        steps_per_epoch: Optimizer steps per pass over the training data.
    """
    steps_per_epoch = max(1, steps_per_epoch)
    if total_steps < steps_per_epoch:
        return f"{total_steps} step{'s' if total_steps != 1 else ''}: part of 1 epoch of {steps_per_epoch} steps"
    epochs = total_steps / steps_per_epoch
    shown = f"{epochs:g}" if epochs.is_integer() else f"{epochs:.2f}".rstrip("0").rstrip(".")
    noun = "epoch" if epochs == 1 else "epochs"
    return f"{shown} {noun} of {steps_per_epoch} steps ({total_steps} steps)"
