"""Hyperparameters of a fine-tune, with their defaults and where each default comes from.

A value left as ``None`` is filled, in order, from the model card's ``defaults``, then the task's
``default_hyperparameters``, then :data:`GENERIC_DEFAULTS`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

GENERIC_DEFAULTS: dict[str, Any] = {
    "learning_rate": 5e-5,          # transformers TrainingArguments default
    "num_train_epochs": 3.0,        # transformers TrainingArguments default
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 64,
    "max_seq_length": 128,          # transformers run_glue.py default (tokens)
    "warmup_steps": 0.0,
    "weight_decay": 0.0,
}


class Hyperparameters(BaseModel):
    """Fine-tuning hyperparameters (Hugging Face ``TrainingArguments`` names).

    Attributes:
        learning_rate: Peak AdamW learning rate.
        num_train_epochs: Passes over the training data (may be fractional).
        per_device_train_batch_size: Training rows per step per device.
        per_device_eval_batch_size: Rows per evaluation batch.
        max_seq_length: Longest input in tokens; longer inputs are truncated (question answering:
            split into overlapping windows instead).
        doc_stride: Question answering: tokens shared by consecutive context windows.
        warmup_steps: Linear warm-up; an integer >= 1 is a step count, a float in [0, 1) a ratio
            of all steps (transformers 5 semantics).
        weight_decay: AdamW decoupled weight decay.
        seed: Seeds the model head, data order and automatic splits.
        max_steps: Stop after this many optimizer steps (smoke runs); overrides epochs.
        gradient_accumulation_steps: Steps to accumulate before an optimizer step.
        lr_scheduler_type: Transformers scheduler name.
        metric_for_best_model: Validation metric that picks the best checkpoint (task default:
            ``f1_macro`` for classification).
        save_steps: Checkpoint every N steps as well as at each evaluation (None: per epoch only).
        logging_steps: Log loss every N steps (None: about 50 times per run).
    """

    model_config = ConfigDict(extra="forbid")

    learning_rate: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    num_train_epochs: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False)
    per_device_train_batch_size: int | None = Field(default=None, ge=1)
    per_device_eval_batch_size: int | None = Field(default=None, ge=1)
    max_seq_length: int | None = Field(default=None, ge=8)
    doc_stride: int | None = Field(default=None, ge=0)
    warmup_steps: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    weight_decay: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    seed: int = 42
    max_steps: int | None = Field(default=None, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    metric_for_best_model: str | None = None
    save_steps: int | None = Field(default=None, ge=1)
    logging_steps: int | None = Field(default=None, ge=1)

    def resolve(self, task_defaults: dict[str, Any], card_defaults: dict[str, Any] | None = None,
                metric_default: str | None = None) -> "Hyperparameters":
        """Return a copy with every ``None`` filled (card defaults, task defaults, generic ones)."""
        values = self.model_dump()
        for key, value in values.items():
            if value is None:
                for source in (card_defaults or {}, task_defaults, GENERIC_DEFAULTS):
                    if source.get(key) is not None:
                        values[key] = source[key]
                        break
        if values.get("metric_for_best_model") is None:
            values["metric_for_best_model"] = metric_default
        return Hyperparameters(**values)
