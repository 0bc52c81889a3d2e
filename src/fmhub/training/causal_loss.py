"""The causal-LM loss computed only where it counts: the output head runs on labelled positions.

A causal LM's stock loss applies the output head (``lm_head``: hidden size x vocabulary, 49,152 rows
for SmolLM2) to every position of the batch and then ignores the positions whose label is -100. When
the labels mask the prompt (chat, or any text-to-text task on a decoder-only model), most
positions are prompt tokens, so most of that matrix product, its fp32 copy and its backward pass are
thrown away. :func:`labelled_loss` calls the model's decoder for the hidden states, gathers the
positions whose *next* token is labelled, and applies the head and the cross-entropy (in fp32) to
those rows only. The loss value is the stock one (same shift, same reduction); only the work differs.

It works for a plain ``...ForCausalLM`` and for the same model wrapped by PEFT (LoRA layers live
inside the decoder, so calling the decoder trains them). Models whose head does more than a linear
layer (a logit scale, per-position extras) are left to the stock loss: see :func:`supports_labelled_loss`.
"""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100
"""Label of a position the loss skips (transformers' convention)."""


def causal_lm_parts(model: Any) -> tuple[Any, Any, Any] | None:
    """The (causal LM, decoder, output head) inside ``model``, or None when it is not a plain causal LM.

    Args:
        model: A ``...ForCausalLM`` or a PEFT model wrapping one.

    Returns:
        ``(causal_lm, decoder, lm_head)``: ``decoder(input_ids=..., attention_mask=...)`` returns the
        last hidden states ``[batch, seq, hidden]``; ``lm_head`` maps ``[n, hidden]`` to ``[n, vocab]``.
        None when the model has no separable decoder and linear head.
    """
    import torch

    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not type(causal).__name__.endswith("ForCausalLM"):
        return None
    head = causal.get_output_embeddings() if hasattr(causal, "get_output_embeddings") else None
    decoder = causal.get_decoder() if hasattr(causal, "get_decoder") else None
    if not isinstance(head, torch.nn.Linear) or decoder is None or decoder is causal:
        return None
    return causal, decoder, head


def supports_labelled_loss(model: Any) -> bool:
    """True when :func:`labelled_loss` gives the stock loss for ``model``.

    False for models that are not a decoder + linear head, and for heads with extras the stock
    forward applies after the head (``logit_scale``, ``output_multiplier``, ``logits_scaling``).
    """
    parts = causal_lm_parts(model)
    if parts is None:
        return False
    config = parts[0].config
    extras = ("logit_scale", "logits_scaling", "output_multiplier", "output_mult")
    return not any(getattr(config, name, None) not in (None, 1, 1.0) for name in extras)


def labelled_loss(model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
    """The causal-LM cross-entropy, with the output head applied at labelled positions only.

    Position ``t``'s hidden state predicts token ``t + 1``, so the rows kept are those whose next
    label is not -100 (the stock shift). The reduction is the stock one: the sum divided by
    ``num_items_in_batch`` when given (the Trainer's count over the accumulated batch), else the mean
    over labelled tokens.

    Args:
        model: As :func:`causal_lm_parts` (checked with :func:`supports_labelled_loss`).
        inputs: The batch: ``input_ids`` ``[batch, seq]``, ``labels`` ``[batch, seq]`` (-100 where no
            loss), optional ``attention_mask``, ``position_ids`` and other decoder arguments.
        num_items_in_batch: Labelled tokens of the whole accumulated batch, or None.

    Returns:
        The scalar loss (fp32). A batch with no labelled token gives 0 (with a gradient path).

    Raises:
        ValueError: ``model`` is not a decoder + linear head causal LM.
    """
    import torch
    import torch.nn.functional as F

    parts = causal_lm_parts(model)
    if parts is None:
        raise ValueError(f"{type(model).__name__} has no separable decoder and linear output head")
    causal, decoder, head = parts
    labels = inputs["labels"]
    kwargs = {k: v for k, v in inputs.items() if k not in ("labels", "num_items_in_batch")}
    kwargs["use_cache"] = False
    out = decoder(**kwargs)
    hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    rows = hidden[:, :-1][keep]  # [n_labelled, hidden]
    logits = head(rows).float()  # [n_labelled, vocab]
    softcap = getattr(causal.config, "final_logit_softcapping", None)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    total = F.cross_entropy(logits, targets[keep].to(logits.device), reduction="sum")
    if num_items_in_batch is not None:
        if torch.is_tensor(num_items_in_batch):
            num_items_in_batch = num_items_in_batch.to(total.device)
        return total / num_items_in_batch
    return total / keep.sum().clamp(min=1)
