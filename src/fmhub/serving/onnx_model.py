"""The ``onnx`` runtime: an encoder model exported to ONNX and run by ONNX Runtime, behind the call
the tasks make (``model(**encoding).logits``), so ``task.predict`` runs it unchanged.

Export uses ``torch.onnx.export`` (the TorchScript exporter, ``dynamo=False``, which exports a small
encoder in about a second; the dynamo exporter where that one is gone) with the batch and sequence
axes dynamic; the file lives in a temporary folder for the life of the instance.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
"""Encoder inputs the exported graph takes (those the model's forward accepts, in this order)."""


class OnnxModel(torch.nn.Module):
    """An ONNX Runtime session that answers like the exported ``transformers`` model.

    Args:
        session: The ``onnxruntime.InferenceSession``.
        config: The exported model's config (``id2label`` and friends, read by the tasks).
        input_names: The graph's inputs, a subset of :data:`INPUTS`.
        folder: The temporary folder that holds the ``.onnx`` file (removed with this object).

    Calling it with a tokenizer's encoding (``[batch, seq_len]`` int64 tensors) returns an object
    with ``logits`` (``[batch, num_labels]`` or ``[batch, seq_len, num_labels]``, float32).
    """

    def __init__(self, session: Any, config: Any, input_names: list[str], folder: Any) -> None:
        super().__init__()
        self.session = session
        self.config = config
        self.input_names = input_names
        self._folder = folder
        self._device_probe = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # the tasks read the device

    @classmethod
    def export(cls, model: Any, threads: int) -> "OnnxModel":
        """Export ``model`` (a CPU ``transformers`` encoder with a ``logits`` output) and open it.

        Args:
            model: The fp32 model, in eval mode.
            threads: ONNX Runtime intra-op threads.

        Raises:
            ImportError: ``onnxruntime`` or ``onnx`` is not installed (``pip install 'fmhub[onnx]'``).
            RuntimeError: the export failed.
        """
        import inspect

        import onnxruntime as ort

        accepted = inspect.signature(model.forward).parameters
        names = [n for n in INPUTS if n in accepted]
        sample = {n: torch.ones(2, 8, dtype=torch.long) if n != "token_type_ids" else torch.zeros(2, 8, dtype=torch.long)
                  for n in names}
        if "attention_mask" in sample:  # a padded row: the tracer records the branch that applies the mask
            sample["attention_mask"][1, 5:] = 0
        folder = tempfile.TemporaryDirectory(prefix="fmhub-onnx-")
        path = Path(folder.name) / "model.onnx"
        axes = {n: {0: "batch", 1: "sequence"} for n in names}
        with torch.inference_mode(False), torch.no_grad():
            try:
                torch.onnx.export(model, (), str(path), kwargs=sample, input_names=names, output_names=["logits"],
                                  dynamic_axes={**axes, "logits": {0: "batch"}}, dynamo=False)
            except (TypeError, RuntimeError, ValueError):
                torch.onnx.export(model, (), str(path), kwargs=sample, input_names=names, output_names=["logits"],
                                  dynamic_shapes={n: {0: "batch", 1: "sequence"} for n in names}, dynamo=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return cls(session, model.config, [i.name for i in session.get_inputs()], folder)

    def forward(self, **encoding: torch.Tensor) -> SimpleNamespace:
        """Run the session on a tokenizer's encoding; inputs the graph does not take are ignored."""
        feed = {}
        for name in self.input_names:
            value = encoding.get(name)
            if value is None:  # e.g. token_type_ids a tokenizer did not return
                value = torch.zeros_like(encoding["input_ids"])
            feed[name] = value.to(torch.long).numpy()
        (logits,) = self.session.run(["logits"], feed)
        return SimpleNamespace(logits=torch.from_numpy(logits))


__all__ = ["OnnxModel"]
