"""One deployment instance: a process that loads a model once and answers batches.

The server talks to it over a pipe: it sends ``{"id", "inputs", "params"}`` and receives
``{"type": "result", "id", "outputs", "errors"}`` (``errors``: ``{index: (message, isolated)}`` for
the inputs that failed, see :func:`predict_isolated`), or ``{"type": "result", "id", "error"}``. The process ends when the pipe closes, so
it never outlives the server. A chat deployment's instance (``config["mode"] == "chat"``) speaks the
streaming protocol of :mod:`fmhub.serving.chat_instance` instead.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fmhub.serving.sizing import threads_per_instance
from fmhub.tasks.clipping import clip_input

#: Inputs longer than this many tokens are truncated (or windowed) whatever the model allows.
MAX_SERVING_TOKENS = 512
#: Inputs per forward pass on a CPU: a batch is sorted by length and run in chunks this size, which
#: pads least (measured with benchmarks/serve.py: 8 beat 16 and 32 on 2 cores).
CPU_FORWARD_BATCH = 8
#: Predict calls at most to find the failing inputs of one failed batch (see :func:`predict_isolated`).
ISOLATION_BUDGET = 64


def model_max_tokens(model: Any, cap: int = MAX_SERVING_TOKENS) -> int:
    """The longest input the model takes: its position embeddings, capped at ``cap`` tokens
    (default 512)."""
    for key in ("max_position_embeddings", "n_positions"):
        value = getattr(model.config, key, None)
        if isinstance(value, int) and value > 0:
            return min(value, cap)
    return cap


def load(config: dict[str, Any]) -> tuple[Any, Any, Any, str]:
    """Load the model for serving, in the runtime the deployment names (see
    :mod:`fmhub.serving.runtimes`; ``auto`` checks the faster ones against the model's stored test
    predictions and keeps the first that holds).

    Args:
        config: ``model_path``, ``task``, ``device`` (``cpu``/``cuda``/``cuda:N``/``auto``),
            ``runtime`` (``auto``, ``pytorch``, ``pytorch-bf16``, ``pytorch-int8`` or ``onnx``).

    Returns:
        (task, model, tokenizer, description of the runtime and, for ``auto``, why it was chosen).

    Raises:
        ValueError: a runtime this device or model cannot use.
    """
    import torch
    from transformers import AutoTokenizer

    from fmhub.devices import choose_device, cpu_has_native_bf16
    from fmhub.serving import runtimes
    from fmhub.tasks import get_task

    task = get_task(config["task"])
    tokenizer = AutoTokenizer.from_pretrained(config["model_path"])
    model = task.load_model(config["model_path"], None)
    device = choose_device(config.get("device") or "auto")
    model.eval()
    runtime = config.get("runtime") or "auto"
    if device.is_cuda:
        if runtime not in ("auto", "pytorch", "pytorch-bf16"):
            raise ValueError(f"runtime {runtime} runs on the CPU only; use --device cpu, or --runtime pytorch")
        model = model.to(device.device, dtype=torch.bfloat16)
        return task, model, tokenizer, f"pytorch (bf16, {device.device})"
    threads = torch.get_num_threads()
    if runtime == "auto":
        choice = runtimes.choose_auto(task, model, tokenizer, config["model_path"], threads=threads,
                                      native_bf16=cpu_has_native_bf16(), max_tokens=model_max_tokens(model),
                                      batch_size=CPU_FORWARD_BATCH)
        return task, choice.model, tokenizer, f"{runtimes.describe(choice.runtime, threads)}; {choice.reason}"
    served = runtimes.build_runtime(runtime, model, task, threads)
    return task, served, tokenizer, runtimes.describe(runtime, threads)


def serve_instance(conn: Any, config: dict[str, Any]) -> None:
    """The instance process's main loop (runs until the pipe closes or ``None`` arrives).

    ``config["threads"]``: torch threads (default: the cores shared out among the deployment's
    instances, :func:`~fmhub.serving.sizing.threads_per_instance`; a chat instance: half the cores,
    so that the server keeps a core to stream replies).
    """
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore")
    import torch

    instances = int(config.get("instances") or 1)
    if config.get("mode") == "chat":  # half the cores: the server streams the replies on the rest
        threads = config.get("threads") or max(1, (os.cpu_count() or 2) // (2 * instances))
    else:  # the cores shared out among the instances (fmhub.serving.sizing)
        threads = config.get("threads") or threads_per_instance(instances)
    torch.set_num_threads(int(threads))
    if config.get("mode") == "chat":  # a chat deployment: continuous batching, streamed replies
        from fmhub.serving.chat_instance import serve_chat

        serve_chat(conn, config)
        return
    t0 = time.perf_counter()
    try:
        task, model, tokenizer, runtime = load(config)
    except Exception as exc:  # reported to the server, which marks the deployment failed
        conn.send({"type": "failed", "error": f"{type(exc).__name__}: {exc}"})
        return
    limit = model_max_tokens(model)
    on_gpu = any(p.is_cuda for p in model.parameters())
    conn.send({"type": "ready", "runtime": runtime, "pid": os.getpid(), "load_s": round(time.perf_counter() - t0, 2),
               "max_tokens": limit})
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        try:
            inputs, params = message["inputs"], message.get("params") or {}
            chunk = len(inputs) if on_gpu else CPU_FORWARD_BATCH
            outputs, errors = score_batch(task, model, tokenizer, inputs, params, max_tokens=limit, chunk=chunk,
                                          sizes=message.get("sizes"))
            conn.send({"type": "result", "id": message["id"], "outputs": outputs, "errors": errors})
        except BaseException as exc:  # one bad batch never ends the instance (a tokenizer's panic included)
            if is_fatal(exc):
                raise
            conn.send({"type": "result", "id": message["id"], "error": f"{type(exc).__name__}: {exc}"})


def score_batch(task: Any, model: Any, tokenizer: Any, inputs: list[Any], params: dict[str, Any], *,
                max_tokens: int, chunk: int, sizes: list[int] | None = None
                ) -> tuple[list[Any], dict[int, tuple[str, bool]]]:
    """A deployment's predict -> encode of one batch of decoded inputs: the one place every serving
    backend runs a task for an endpoint (inputs are decoded and checked by the endpoint first).

    Args:
        task: The task module.
        model: The loaded model (see :func:`load`).
        tokenizer: Its tokenizer.
        inputs: Decoded inputs, in the form ``task.predict`` takes.
        params: The task's checked params (``top_k``, generation settings ...).
        max_tokens: Longest input in tokens (see :func:`model_max_tokens`).
        chunk: Inputs per forward pass.
        sizes: Inputs per request of the batch (see :func:`predict_isolated`).

    Returns:
        As :func:`predict_isolated`: one response item per input (None where it failed) and
        ``{index: (error, isolated)}`` for the failed ones.
    """
    def run(part: list[Any]) -> list[Any]:
        clipped = [clip_input(x, max_tokens) for x in part]  # never tokenize what the model cannot see
        part = [x for x, _ in clipped]
        raw = task.predict(model, tokenizer, part, batch_size=max(1, chunk), max_seq_length=max_tokens, **params)
        answers = task.encode_response(raw, task.truncated_flags(tokenizer, part, max_tokens))
        for answer, (_, cut) in zip(answers, clipped):
            if cut and isinstance(answer, dict):
                answer["truncated"] = True
        return answers

    return predict_isolated(run, inputs, sizes=sizes)


def is_fatal(exc: BaseException) -> bool:
    """True for the exceptions that must end the process (Ctrl-C, ``sys.exit``); False for every other
    failure, including a Rust tokenizer's panic (``pyo3_runtime.PanicException``, a
    ``BaseException``), which one input can cause and which must fail only that input."""
    return isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit))


def predict_isolated(run: Any, inputs: list[Any], budget: int = ISOLATION_BUDGET, sizes: list[int] | None = None
                     ) -> tuple[list[Any], dict[int, tuple[str, bool]]]:
    """Run a batch; when it fails, split it in halves and run those, until each failing input is
    found alone: one bad input fails only itself, never its neighbours.

    A batch holds the inputs of several requests (``sizes``): a failing part is split at request
    boundaries first, and each request has its own ``budget``, so a request full of bad inputs can
    spend only its own retries, never fail another request's inputs.

    Args:
        run: Predicts a list of inputs, returning one output per input (raises on failure).
        inputs: The batch.
        budget: Calls of ``run`` per request at most once the failing part lies inside one request
            (bisection finds k bad inputs of n in about ``2 k log2 n`` calls); that request's
            inputs still unresolved when it is spent fail together.
        sizes: Inputs per request, in order (sum ``len(inputs)``); default: one request.

    Returns:
        (one output per input, None where it failed; ``{index: (error, isolated)}`` for the failed
        ones, ``isolated`` True when the input failed alone, False when its request's budget ran
        out first).
    """
    sizes = list(sizes) if sizes else [len(inputs)]
    if sum(sizes) != len(inputs):
        raise ValueError(f"request sizes {sizes} do not add up to {len(inputs)} inputs")
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + size)
    outputs: list[Any] = [None] * len(inputs)
    errors: dict[int, tuple[str, bool]] = {}
    spent = [0] * len(sizes)
    stack = [(0, len(inputs))]
    while stack:
        start, end = stack.pop()
        if start == end:
            continue
        first, last = _request_of(starts, start), _request_of(starts, end - 1)
        if first == last:  # inside one request: its own budget
            if spent[first] >= budget:
                for i in range(start, end):
                    errors[i] = ("the batch failed and the failing input was not found in time", False)
                continue
            spent[first] += 1
        try:
            part = run(inputs[start:end])
            if len(part) != end - start:
                raise RuntimeError(f"{len(part)} outputs for {end - start} inputs")
            outputs[start:end] = part
        except BaseException as exc:  # noqa: BLE001 - any failure of a part is isolated the same way
            if is_fatal(exc):
                raise
            if end - start == 1:
                errors[start] = (f"{type(exc).__name__}: {exc}", True)
            elif first != last:  # split at the request boundary nearest the middle
                bounds = starts[first + 1:last + 1]
                middle = min(bounds, key=lambda b: abs(b - (start + end) / 2))
                stack += [(middle, end), (start, middle)]
            else:
                middle = (start + end) // 2
                stack += [(middle, end), (start, middle)]
    return outputs, errors


def _request_of(starts: list[int], index: int) -> int:
    """The request holding input ``index`` (``starts``: each request's first index, then the end)."""
    import bisect

    return bisect.bisect_right(starts, index) - 1
