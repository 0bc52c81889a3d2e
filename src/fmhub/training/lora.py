"""LoRA (PEFT) for fine-tuning: wrap a model's linear layers with adapters, save the adapter or a
merged full model.

QLoRA (``quantization_bit: 4``) loads the frozen base in 4-bit NF4 through bitsandbytes, which needs a
CUDA GPU; :func:`check_quantization` says so before anything loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmhub.training.hyperparameters import Hyperparameters


def uses_lora(hp: Hyperparameters) -> bool:
    """True when the resolved hyperparameters ask for LoRA adapters."""
    return hp.finetuning_type == "lora"


def lora_config(hp: Hyperparameters) -> Any:
    """PEFT's ``LoraConfig`` for a causal LM from resolved hyperparameters.

    ``["all-linear"]`` becomes PEFT's ``"all-linear"`` (every linear layer but the output head).
    """
    from peft import LoraConfig

    targets: Any = list(hp.lora_target_modules or ["all-linear"])
    if targets == ["all-linear"]:
        targets = "all-linear"
    return LoraConfig(r=int(hp.lora_r or 16), lora_alpha=float(hp.lora_alpha or 32.0),
                      lora_dropout=float(hp.lora_dropout if hp.lora_dropout is not None else 0.05),
                      target_modules=targets, task_type="CAUSAL_LM", bias="none")


def check_quantization(hp: Hyperparameters, is_cuda: bool) -> str | None:
    """Why QLoRA cannot run here (no CUDA device, no bitsandbytes), or None when it can or is not asked."""
    if hp.quantization_bit is None:
        return None
    if not is_cuda:
        return "QLoRA (--quantization-bit 4) needs a CUDA GPU: bitsandbytes' 4-bit kernels do not run on the CPU"
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return "QLoRA (--quantization-bit 4) needs bitsandbytes: pip install bitsandbytes"
    return None


def wrap_with_lora(model: Any, hp: Hyperparameters) -> Any:
    """Freeze ``model`` and add trainable LoRA adapters (``get_peft_model``).

    With ``gradient_checkpointing`` the input embeddings are made to require gradients, as PEFT
    needs when every base weight is frozen.

    Returns:
        A ``PeftModel``; its trainable parameters are the adapters only.
    """
    from peft import get_peft_model

    if hp.gradient_checkpointing:
        model.enable_input_require_grads()
    return get_peft_model(model, lora_config(hp))


def save_lora(model: Any, out_dir: str | Path, merge: bool) -> None:
    """Save a trained ``PeftModel``: the adapter alone, or (``merge``) the merged full model.

    The tokenizer and fmhub's own files are the caller's.
    """
    if merge:
        model.merge_and_unload().save_pretrained(str(out_dir))
    else:
        model.save_pretrained(str(out_dir))


def trainable_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
