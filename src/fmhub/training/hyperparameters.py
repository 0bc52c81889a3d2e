"""Hyperparameters of a fine-tune, with their defaults and where each default comes from.

A value left as ``None`` is filled, in order, from the model card's ``defaults``, then the task's
``default_hyperparameters``, then :data:`GENERIC_DEFAULTS`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_BATCH = 65536
"""Upper bound of batch sizes and accumulation steps (a typo guard, far above any real value)."""
MAX_TOKENS = 131072
"""Upper bound of token lengths (the model's own limit applies too, see ``services.finetune``)."""
MAX_STEPS = 100_000_000
"""Upper bound of step counts."""

GENERIC_DEFAULTS: dict[str, Any] = {
    "learning_rate": 5e-5,          # transformers TrainingArguments default
    "num_train_epochs": 3.0,        # transformers TrainingArguments default
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 64,
    "max_seq_length": 128,          # transformers run_glue.py default (tokens)
    "warmup_steps": 0.0,
    "weight_decay": 0.0,
    "lr_scheduler_type": "linear",  # transformers TrainingArguments default
    "finetuning_type": "full",
}

LORA_DEFAULTS: dict[str, Any] = {
    # The usual LoRA recipe of the QLoRA paper as PEFT/TRL examples set it (rank 16, alpha 32,
    # dropout 0.05, every linear layer); a card or task may say otherwise.
    "lora_r": 16,
    "lora_alpha": 32.0,
    "lora_dropout": 0.05,
    "lora_target_modules": ["all-linear"],
}
"""Filled only when ``finetuning_type`` is ``lora`` (a full fine-tune's lineage carries no LoRA values)."""


class Hyperparameters(BaseModel):
    """Fine-tuning hyperparameters (Hugging Face ``TrainingArguments`` names).

    Attributes:
        learning_rate: Peak AdamW learning rate.
        num_train_epochs: Passes over the training data (may be fractional).
        per_device_train_batch_size: Training rows per step per device.
        per_device_eval_batch_size: Rows per evaluation batch.
        max_seq_length: Longest input in tokens; longer inputs are truncated (question answering:
            split into overlapping windows instead).
        doc_stride: Question answering: tokens shared by consecutive context windows (at most half
            of max_seq_length).
        warmup_steps: Linear warm-up; an integer >= 1 is a step count, a float in [0, 1) a ratio
            of all steps (transformers 5 semantics).
        weight_decay: AdamW decoupled weight decay.
        seed: Seeds the model head, data order and automatic splits (0 to 2**32 - 1).
        max_steps: Stop after this many optimizer steps (smoke runs); overrides epochs.
        gradient_accumulation_steps: Steps to accumulate before an optimizer step.
        lr_scheduler_type: Transformers scheduler name (task default, else ``linear``).
        metric_for_best_model: Validation metric that picks the best checkpoint (task default:
            ``f1_macro`` for classification).
        save_steps: Checkpoint every N steps as well as at each evaluation (None: per epoch only).
        logging_steps: Log loss every N steps (None: about 50 times per run).
        early_stopping_patience: Stop when the validation metric (``metric_for_best_model``) has not
            improved for N evaluations in a row (one per epoch, or every ``save_steps``); the best
            checkpoint is kept. Needs validation data. None: train all epochs.
        early_stopping_threshold: How much the metric must improve to count as better (default 0).
        max_eval_samples: Smoke runs: evaluate on the first N validation rows only (per-epoch and
            final evaluation; Hugging Face example-script name). None: all rows.
        max_predict_samples: Smoke runs: predict and score the first N test rows only. None: all.
        finetuning_type: ``full`` (every weight trains) or ``lora`` (low-rank adapters on frozen
            weights, PEFT; the registered version is the adapter). The task says which is its default
            (``full`` unless it says ``lora``).
        lora_r: LoRA rank (PEFT ``r``).
        lora_alpha: LoRA scaling numerator (the update is scaled by ``lora_alpha / lora_r``).
        lora_dropout: Dropout on the LoRA input.
        lora_target_modules: Module names the adapters wrap (PEFT ``target_modules``);
            ``["all-linear"]`` wraps every linear layer but the output head.
        quantization_bit: 4 for QLoRA (the frozen base in 4-bit NF4 through bitsandbytes; needs
            a CUDA GPU and ``finetuning_type: lora``). None: no quantisation.
        gradient_checkpointing: Recompute activations in the backward pass (less memory, ~30%
            more compute).
        precision: ``auto`` (default: bf16 autocast on a CPU with native bf16 or a bf16 GPU, else
            fp32; the measured rule in :mod:`fmhub.training.precision`), ``fp32`` or ``bf16``
            (autocast: fp32 master weights, bf16 matrix products).
    """

    model_config = ConfigDict(extra="forbid")

    # Every range is explicit here (the wizard's input limits come from these bounds); values
    # that depend on another one (doc_stride < max_seq_length, warm-up steps within the run) are
    # checked by :func:`range_problems` once the defaults are filled in.
    learning_rate: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    num_train_epochs: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False)
    per_device_train_batch_size: int | None = Field(default=None, ge=1, le=MAX_BATCH)
    per_device_eval_batch_size: int | None = Field(default=None, ge=1, le=MAX_BATCH)
    max_seq_length: int | None = Field(default=None, ge=8, le=MAX_TOKENS)
    doc_stride: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    warmup_steps: float | None = Field(default=None, ge=0, le=MAX_STEPS, allow_inf_nan=False)
    weight_decay: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    seed: int = Field(default=42, ge=0, le=2**32 - 1)  # numpy's seed range
    max_steps: int | None = Field(default=None, ge=1, le=MAX_STEPS)
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=MAX_BATCH)
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] | None = None
    metric_for_best_model: str | None = None
    save_steps: int | None = Field(default=None, ge=1, le=MAX_STEPS)
    logging_steps: int | None = Field(default=None, ge=1, le=MAX_STEPS)
    # -- early stopping and smoke runs (issue 13) ------------------------------------------------
    early_stopping_patience: int | None = Field(default=None, ge=1, le=1000)
    early_stopping_threshold: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    max_eval_samples: int | None = Field(default=None, ge=1)
    max_predict_samples: int | None = Field(default=None, ge=1)
    # -- LoRA and memory (chat LLMs) ---------------------------------------------------------------
    finetuning_type: Literal["full", "lora"] | None = None
    lora_r: int | None = Field(default=None, ge=1, le=1024)
    lora_alpha: float | None = Field(default=None, gt=0, le=65536, allow_inf_nan=False)
    lora_dropout: float | None = Field(default=None, ge=0, lt=1, allow_inf_nan=False)
    lora_target_modules: list[str] | None = Field(default=None, min_length=1, max_length=64)
    quantization_bit: Literal[4] | None = None
    gradient_checkpointing: bool = False
    precision: Literal["auto", "fp32", "bf16"] = "auto"

    @field_validator("warmup_steps")
    @classmethod
    def _whole_steps_or_ratio(cls, value: float | None) -> float | None:
        if value is not None and value >= 1 and not float(value).is_integer():
            raise ValueError(f"must be a ratio in [0, 1) or a whole number of steps (>= 1), not {value}")
        return value

    def resolve(self, task_defaults: dict[str, Any], card_defaults: dict[str, Any] | None = None,
                metric_default: str | None = None) -> "Hyperparameters":
        """Return a copy with every ``None`` filled (card defaults, task defaults, generic ones)."""
        values = self.model_dump()
        for key, value in values.items():
            if value is None and key not in LORA_DEFAULTS:
                for source in (card_defaults or {}, task_defaults, GENERIC_DEFAULTS):
                    if source.get(key) is not None:
                        values[key] = source[key]
                        break
        if values.get("finetuning_type") == "lora":
            for key in LORA_DEFAULTS:
                if values[key] is None:
                    values[key] = next(src[key] for src in (card_defaults or {}, task_defaults, LORA_DEFAULTS)
                                       if src.get(key) is not None)
        if values.get("metric_for_best_model") is None:
            values["metric_for_best_model"] = metric_default
        return Hyperparameters(**values)


def flag_name(field: str) -> str:
    """The command-line flag of a spec field: ``doc_stride`` -> ``--doc-stride``."""
    return "--" + field.replace("_", "-")


def range_problems(hp: Hyperparameters, given: Hyperparameters | None = None) -> list[str]:
    """Checks between resolved hyperparameters that no single field's bounds can express.

    Args:
        hp: Resolved hyperparameters (defaults filled in).
        given: The values the user gave (None fields were defaulted); a defaulted value that does
            not fit is not the user's mistake and is left to the caller to adapt.

    Returns:
        One message per problem, each naming the flags involved (empty when all is well).
    """
    given = given or hp
    problems = []
    if given.doc_stride is not None and hp.doc_stride is not None and hp.max_seq_length is not None \
            and hp.doc_stride > hp.max_seq_length // 2:
        problems.append(f"{flag_name('doc_stride')} must be >= 1 and at most half of {flag_name('max_seq_length')} "
                        f"(got {hp.doc_stride} with {flag_name('max_seq_length')} {hp.max_seq_length}: "
                        f"at most {hp.max_seq_length // 2}); the question and the window's new context "
                        "need the rest")
    if given.warmup_steps is not None and hp.max_steps is not None and hp.warmup_steps is not None \
            and hp.warmup_steps >= 1 \
            and hp.warmup_steps > hp.max_steps:
        problems.append(f"{flag_name('warmup_steps')} {int(hp.warmup_steps)} is more than "
                        f"{flag_name('max_steps')} {hp.max_steps}: the learning rate would never reach its peak; "
                        "give fewer steps or a ratio below 1 (e.g. 0.06)")
    if hp.quantization_bit is not None and hp.finetuning_type != "lora":
        problems.append(f"{flag_name('quantization_bit')} {hp.quantization_bit} (QLoRA) trains LoRA adapters on a "
                        f"quantised base: give {flag_name('finetuning_type')} lora, or leave "
                        f"{flag_name('quantization_bit')} out")
    return problems
