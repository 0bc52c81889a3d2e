"""The LoRA side of a fine-tune: checks before any data is read, the model to train (LoRA wrap,
QLoRA base, an adapter version trained further), and what is saved and registered (the adapter,
or with ``merge_adapter`` the merged full model).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmhub.errors import SpecError
from fmhub.services.model_loading import CONFIG_KEY, config_folder, load_resolved
from fmhub.tasks.adapters import ADAPTER_FILE, adapter_base_ref, is_adapter_folder, write_adapter_file
from fmhub.tasks.base import LabelInfo, Task
from fmhub.training.lora import check_quantization, save_lora, trainable_parameters, uses_lora


def is_causal_lm_config(folder: str | Path) -> bool:
    """True when ``folder/config.json`` is a decoder-only model's (no ``is_encoder_decoder``)."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return not config.get("is_encoder_decoder", False) and "architectures" in config and any(
        str(a).endswith("ForCausalLM") for a in config.get("architectures") or [])


def check_lora(task: Task, resolved: Any, hp: Any, is_cuda: bool | None) -> None:
    """Refuse a LoRA set-up that cannot run, before any data is read.

    Args:
        task: The task module.
        resolved: The resolved model (an adapter version has ``base_path``).
        hp: Resolved hyperparameters.
        is_cuda: Whether the job trains on a CUDA device (None: not known here, e.g. a cluster job;
            the QLoRA check is then left to the worker).

    Raises:
        SpecError: LoRA on a model that is not a causal LM; an adapter version fine-tuned in full;
            QLoRA where it cannot run (no CUDA GPU, no bitsandbytes), naming what to do instead.
    """
    adapter = resolved.base_path is not None
    if adapter and not uses_lora(hp):
        raise SpecError(f"model '{resolved.ref}' is a LoRA adapter: it can only be trained further with LoRA",
                        hint="leave --finetuning-type out (or give lora), or fine-tune its base model in full")
    if not uses_lora(hp):
        return
    if not is_causal_lm_config(config_folder(resolved)):
        raise SpecError(f"--finetuning-type lora needs a decoder-only causal LM; '{resolved.ref}' is not one",
                        hint="give --finetuning-type full for this model, or pick a causal LM "
                             f"(fmhub models list --task {task.name})")
    if is_cuda is not None:
        why = check_quantization(hp, is_cuda)
        if why:
            raise SpecError(why, hint="leave --quantization-bit out to train LoRA on the full-precision base")


def base_reference(resolved: Any) -> str:
    """The model an adapter trained from ``resolved`` loads on: ``resolved`` itself, or for an
    adapter version the base that adapter names."""
    if resolved.base_path is not None:
        return adapter_base_ref(resolved.path) or resolved.ref
    return resolved.ref


def load_model_to_train(task: Task, resolved: Any, info: LabelInfo, hp: Any, device: Any) -> Any:
    """The model a fine-tune trains (call ``transformers.set_seed`` first: LoRA weights are random).

    - full fine-tune: the task's model;
    - LoRA: the task's model wrapped with fresh adapters (``training.lora.wrap_with_lora``);
    - QLoRA (``quantization_bit: 4``, CUDA): the base in 4-bit NF4, prepared for k-bit training,
      then wrapped;
    - an adapter version: its base with the adapter loaded trainable (trained further).
    """
    if not uses_lora(hp):
        return load_resolved(task, resolved, info)
    from fmhub.tasks.adapters import load_causal_lm
    from fmhub.training.lora import wrap_with_lora

    if resolved.base_path is not None:
        model = load_causal_lm(resolved.path, resolved.base_path, merge=False)
        if hp.gradient_checkpointing:
            model.enable_input_require_grads()
        return model
    if hp.quantization_bit is not None:
        return wrap_with_lora(_load_quantized(resolved.path, hp, device), hp)
    model = load_resolved(task, resolved, info)
    if not type(model).__name__.endswith("ForCausalLM"):  # e.g. a classification head LoRA would leave untrained
        raise SpecError(f"--finetuning-type lora trains a causal LM's adapters; {task.name} loads "
                        f"'{resolved.ref}' as {type(model).__name__}",
                        hint="give --finetuning-type full for this task")
    return wrap_with_lora(model, hp)


def _load_quantized(path: Path, hp: Any, device: Any) -> Any:  # pragma: no cover - needs CUDA + bitsandbytes
    """The base in 4-bit NF4 (bitsandbytes) on the job's CUDA device, ready for k-bit training."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    compute = torch.bfloat16 if getattr(device, "bf16", False) else torch.float16
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=compute)
    index = torch.device(device.device).index or 0
    model = AutoModelForCausalLM.from_pretrained(str(path), quantization_config=quant, device_map={"": index})
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=hp.gradient_checkpointing)


def is_peft_model(model: Any) -> bool:
    """True for a PEFT model (LoRA adapters on a frozen base)."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a core dependency
        return False
    return isinstance(model, PeftModel)


def lora_lineage(model: Any, resolved: Any, hp: Any, merge: bool) -> dict[str, Any]:
    """The lineage fields of a fine-tune's method: ``finetuning_type``, ``adapter``, the base the
    adapter loads on (``adapter_base_model``, with ``base_model_version``), trainable parameters."""
    trainable, total = trainable_parameters(model)
    base_ref = base_reference(resolved)
    version = base_ref.partition(":")[2]
    out: dict[str, Any] = {"finetuning_type": hp.finetuning_type or "full", "trainable_parameters": trainable,
                           "adapter": bool(uses_lora(hp) and not merge)}
    if uses_lora(hp):
        out.update(adapter_base_model=base_ref, base_model_version=int(version) if version.isdigit() else None,
                   merged=bool(merge), parameters=total - trainable)
    return out


def write_generation_config(model: Any, tokenizer: Any, out_dir: Path) -> None:
    """Write ``generation_config.json`` so the trained model stops by itself: its ``eos_token_id``
    holds the model's own eos ids, the tokenizer's end of sequence and, for a tokenizer with a chat
    template, the template's end-of-turn token(s) (:func:`fmhub.tasks.chat_template.set_end_of_turn`);
    the padding id is set when missing."""
    from transformers import GenerationConfig

    source = getattr(model, "generation_config", None)
    config = GenerationConfig.from_dict(source.to_dict()) if source is not None else GenerationConfig()
    if getattr(tokenizer, "chat_template", None):
        from fmhub.tasks.chat_template import set_end_of_turn

        set_end_of_turn(config, tokenizer)
    else:
        current = config.eos_token_id
        ids = [] if current is None else list(current) if isinstance(current, (list, tuple)) else [current]
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
            ids.append(int(tokenizer.eos_token_id))
        if ids:
            config.eos_token_id = ids[0] if len(ids) == 1 else ids
        if config.pad_token_id is None:
            config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (ids or [None])[0]
    config.save_pretrained(str(out_dir))


def save_adapter_or_merged(model: Any, tokenizer: Any, out_dir: Path, resolved: Any, merge: bool,
                           settings: dict[str, Any]) -> None:
    """Save a trained ``PeftModel``: the adapter (``merge`` False) with :data:`ADAPTER_FILE` naming
    its base, or the merged full model; the tokenizer and the generation config with either.

    Args:
        settings: ``fmhub_*`` settings a full model keeps in its config (kept in the adapter file).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if merge:
        merged = model.merge_and_unload()
        for key, value in settings.items():
            setattr(merged.config, key, value)
        merged.save_pretrained(str(out_dir), safe_serialization=True)
    else:
        save_lora(model, out_dir, merge=False)
        write_adapter_file(out_dir, base_reference(resolved))
        path = out_dir / ADAPTER_FILE
        data = json.loads(path.read_text(encoding="utf-8"))
        data[CONFIG_KEY] = settings
        path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    tokenizer.save_pretrained(str(out_dir))
    write_generation_config(model, tokenizer, out_dir)  # after save_pretrained, which writes its own


def saved_model_folder(folder: Path) -> bool:
    """True when ``folder`` holds a saved model: full weights (``config.json``) or an adapter."""
    return (Path(folder) / "config.json").is_file() or is_adapter_folder(folder)
