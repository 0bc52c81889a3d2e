"""The body of a scoring request (``POST /endpoints/{name}/score``): its layouts, checked into the
inputs and params a task predicts with.

Layouts accepted (``inputs`` is an alias of ``input_data`` everywhere):

- ``{"input_data": [x, ...], "params": {...}}``: a list of inputs, each in the task's form;
- ``{"inputs": "text"}``: one bare string, the Hugging Face convention (``"parameters"`` is an
  alias of ``"params"``, as there); likewise one ``{"question", "context"}`` object (question
  answering) or ``{"text", "text_pair"}`` object (text classification) under ``inputs``;
- ``{"input_data": {"input_string": [x, ...], "parameters": {...}}}``: the cloud catalog's layout,
  its parameters merged into params;
- ``{"input_data": {"columns": [...], "index": [...], "data": [[...], ...]}}``: a pandas DataFrame in
  split orientation (``DataFrame.to_dict(orient="split")``); each row is one input, its columns
  mapped to the task's input keys (:func:`row_input`).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from fmhub.errors import SpecError
from fmhub.services.predict import check_inputs

MAX_INPUTS = 1024
"""Inputs per scoring request at most."""

_TOP_KEYS = ("input_data", "inputs", "params", "parameters")
_BODY_HINT = 'send {"input_data": [...], "params": {...}}'


class ParsedRequest(NamedTuple):
    """A checked scoring request.

    Attributes:
        inputs: The inputs in the form ``task.predict`` takes, in order.
        params: The task's params (checked by ``task.score_params``).
        field: Where the inputs were in the body, for messages (``input_data``,
            ``inputs.input_string``, ``input_data.data``): an input's error names ``field[i]``.
    """

    inputs: list[Any]
    params: dict[str, Any]
    field: str


def parse_request(task: Any, body: bytes) -> ParsedRequest:
    """Decode and check a scoring body for ``task`` (the layouts are in this module's docstring).

    Args:
        task: The task module of the deployment.
        body: The raw JSON body.

    Returns:
        The inputs, params and the name of the field the inputs came from.

    Raises:
        SpecError: malformed JSON, an unknown field, or a wrong shape, naming the field and index
            (``input_data[2]: ...``); an input holding text that is not Unicode (an unpaired
            surrogate such as ``"\\ud800"``) is one of these.
    """
    try:
        data = json.loads(body or b"null")
    except RecursionError:
        raise SpecError("the request body is nested too deeply", hint=_BODY_HINT) from None
    except (ValueError, UnicodeDecodeError) as exc:
        where = f" at line {exc.lineno}, column {exc.colno}" if hasattr(exc, "lineno") else ""
        raise SpecError(f"the request body is not valid JSON{where}", hint=_BODY_HINT) from None
    if not isinstance(data, dict):
        raise SpecError("the request body must be a JSON object", hint=_BODY_HINT)
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise SpecError(f"unknown field(s) {', '.join(unknown)}",
                        hint="use input_data (or inputs) and params (or parameters)")
    key = "input_data" if "input_data" in data else "inputs"
    if key not in data:
        raise SpecError("input_data is missing", hint=f"send {{\"input_data\": {json.dumps(task.score_example)}}}")
    params = _params(data.get("params"), "params")
    merged = _merge(params, _params(data.get("parameters"), "parameters"), "parameters")
    raw, field = data[key], key
    if isinstance(raw, str) and key == "inputs":  # the Hugging Face convention: one input
        raw = [raw]
    elif isinstance(raw, dict) and key == "inputs" and task.hf_object_input(raw) is not None:
        raw = [task.hf_object_input(raw)]
    elif isinstance(raw, dict):
        raw, field, extra = _from_object(task, raw, key)
        merged = _merge(merged, extra, f"{key}.parameters")
    if not isinstance(raw, list):
        raise SpecError(f"{key} must be a list of inputs, each {task.score_input_doc}",
                        hint=f"e.g. {json.dumps(task.score_example)}; or {{\"inputs\": \"one text\"}}")
    if len(raw) > MAX_INPUTS:
        raise SpecError(f"{field} has {len(raw)} inputs; at most {MAX_INPUTS} per request",
                        hint="split the inputs over several requests")
    inputs = check_inputs(task, raw, field)
    try:
        checked = task.score_params(merged)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    extra_names = sorted(set(merged) - set(checked))
    if extra_names:
        raise SpecError(f"params.{extra_names[0]} is not a parameter of {task.name}",
                        hint=f"parameters of {task.name}: {', '.join(task.score_params_names) or 'none'}")
    return ParsedRequest(inputs, checked, field)


def _params(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"{name} must be an object", hint='e.g. "params": {"top_k": 2}')
    return value


def _merge(base: dict[str, Any], more: dict[str, Any], name: str) -> dict[str, Any]:
    """``base`` and ``more``; a key in both with different values is an error."""
    clash = sorted(k for k in set(base) & set(more) if base[k] != more[k])
    if clash:
        raise SpecError(f"{name}.{clash[0]} differs from params.{clash[0]}", hint="give each parameter once")
    return {**base, **more}


def _from_object(task: Any, obj: dict[str, Any], key: str) -> tuple[Any, str, dict[str, Any]]:
    """An object under ``input_data``: ``{"input_string", "parameters"}`` or a split-orientation frame.

    Returns:
        (the raw inputs, their field name, the parameters it carried).
    """
    if "input_string" in obj:
        unknown = sorted(set(obj) - {"input_string", "parameters"})
        if unknown:
            raise SpecError(f"unknown field(s) {', '.join(f'{key}.{u}' for u in unknown)}",
                            hint=f"send {{\"{key}\": {{\"input_string\": [...], \"parameters\": {{...}}}}}}")
        raw = obj["input_string"]
        if isinstance(raw, str):
            raw = [raw]
        return raw, f"{key}.input_string", _params(obj.get("parameters"), f"{key}.parameters")
    if "columns" in obj or "data" in obj:
        return _from_split(task, obj, key), f"{key}.data", {}
    raise SpecError(f"{key} is an object with neither input_string nor columns/data",
                    hint=f"send a list of inputs, {{\"input_string\": [...]}}, or a pandas frame in split "
                         f"orientation {{\"columns\": [...], \"data\": [[...]]}}")


def _from_split(task: Any, obj: dict[str, Any], key: str) -> list[Any]:
    """The rows of ``{"columns", "index"?, "data"}`` as raw inputs of ``task``."""
    unknown = sorted(set(obj) - {"columns", "index", "data"})
    if unknown:
        raise SpecError(f"unknown field(s) {', '.join(f'{key}.{u}' for u in unknown)}",
                        hint='a frame in split orientation has "columns", "index" and "data"')
    columns, rows = obj.get("columns"), obj.get("data")
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
        raise SpecError(f"{key}.columns must be a non-empty list of column names",
                        hint='e.g. {"columns": ["text"], "data": [["a text"]]}')
    if not isinstance(rows, list):
        raise SpecError(f"{key}.data must be a list of rows (lists of cells)",
                        hint='e.g. {"columns": ["text"], "data": [["a text"]]}')
    index = obj.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(rows)):
        raise SpecError(f"{key}.index must be a list as long as {key}.data ({len(rows)} rows)",
                        hint="leave index out, or give one entry per row")
    if len(rows) > MAX_INPUTS:
        raise SpecError(f"{key}.data has {len(rows)} rows; at most {MAX_INPUTS} per request",
                        hint="split the inputs over several requests")
    pick = column_plan(task, columns, key)
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise SpecError(f"{key}.data[{i}] must be a list of {len(columns)} cells (one per column)",
                            hint=f"columns: {', '.join(columns)}")
        out.append(row_input(pick, row))
    return out


def column_plan(task: Any, columns: list[str], key: str = "input_data") -> Any:
    """How a frame's columns make one input of ``task``: the task says
    (:meth:`~fmhub.tasks.base.Task.column_plan`): one column is the input; otherwise the columns named
    like the task's input keys (or their aliases).

    Returns:
        A column index (the cell is the input), a list of indices (a list of cells), or a dict
        ``{key: index}`` (an object).

    Raises:
        SpecError: the columns cannot be mapped; the hint says which names are understood.
    """
    return task.column_plan(columns, key)


def row_input(plan: Any, row: list[Any]) -> Any:
    """One row of cells as an input, by a :func:`column_plan`."""
    if isinstance(plan, int):
        return row[plan]
    if isinstance(plan, list):
        return [row[i] for i in plan]
    return {k: row[i] for k, i in plan.items()}


__all__ = ["MAX_INPUTS", "ParsedRequest", "column_plan", "parse_request", "row_input"]
