"""Chat rows: the three data layouts turned into one message list, and the row checks.

Layouts (after column mapping):

- ``messages``: a list of ``{"role": "system" | "user" | "assistant", "content": str}`` with an
  optional ``"weight": 0 | 1`` on assistant messages (0: the reply is context, not learned). In a
  CSV/TSV cell the list is JSON text. ShareGPT's ``{"from": "human" | "gpt", "value": ...}`` and
  OpenAI's content parts (``[{"type": "text", "text": ...}]``) are read too.
- ``prompt`` + ``completion``: one user turn and its reply (an optional ``system`` column); or, as
  TRL's conversational layout, a message list as the prompt and one as the completion.
- ``instruction`` (+ ``input``) + ``output``: the user turn is the instruction, a blank line and the
  input.

A row may carry ``references`` (a text or a list of texts; JSON text in a CSV cell): the reference
replies of a test row, scored instead of its last assistant message.
"""

from __future__ import annotations

import json
from typing import Any

from fmhub.data.problems import Problem, shorten_value
from fmhub.tasks.chat_template import ROLES

LAYOUT_KEYS = ("messages", "prompt", "completion", "instruction", "input", "output", "system")
"""Row keys that make the conversation (removed from a row once ``messages`` is built)."""

LAYOUT_HINT = ('give a "messages" column (a list of {"role", "content"} objects), or "prompt" and "completion", '
               'or "instruction", "input" and "output" columns (--map to name them)')

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system", "model": "assistant", "bot": "assistant"}


def has_layout(keys: set[str]) -> bool:
    """Whether the mapped keys make one of the layouts (a prompt with ``references`` only: test rows)."""
    return "messages" in keys or (bool(keys & {"prompt", "instruction", "input"})
                                  and bool(keys & {"completion", "output", "references"}))


def _text(value: Any) -> str | None:
    """A cell as text (None for a missing cell); OpenAI content parts are joined."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in value):
        return "".join(str(p.get("text", "")) for p in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _parse_json_cell(value: Any) -> Any:
    """A CSV/TSV cell holding JSON text becomes the value it encodes (other values unchanged)."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _json_error(value: Any) -> str | None:
    """Why a text cell that starts like JSON (``[`` or ``{``) does not parse, e.g. ``Expecting ','
    delimiter at column 41``; None for other values and for JSON that parses."""
    if not (isinstance(value, str) and value.strip()[:1] in ("[", "{")):
        return None
    try:
        json.loads(value)
    except ValueError as exc:
        return f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
    return None


def references_of(value: Any) -> tuple[list[str] | None, str | None]:
    """``references`` as a list of texts (None when absent), or why it is malformed."""
    value = _parse_json_cell(value)
    if value is None:
        return None, None
    if isinstance(value, str):
        return ([value] if value.strip() else None), None
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        kept = [x for x in value if x.strip()]
        return (kept or None), None
    return None, "references must be a text or a list of texts"


class RowChecker:
    """Builds and checks the ``messages`` of one split's rows.

    Args:
        file: The data file (for problems).
        columns: Task key -> the user's column (problems name the user's column).
        split: ``train``, ``validation`` or ``test``: a test row may end on a user turn when it has
            ``references``.
    """

    def __init__(self, file: str, columns: dict[str, str], split: str) -> None:
        self.file, self.columns, self.split = file, columns, split

    def _col(self, key: str) -> str:
        return self.columns.get(key, key)

    def _problem(self, message: str, line: int, column: str, value: Any, hint: str = "",
                 severity: str = "error") -> Problem:
        return Problem(message, file=self.file, line=line, column=column, value=shorten_value(value), hint=hint,
                       severity=severity)  # type: ignore[arg-type]

    def check(self, row: dict[str, Any], line: int) -> tuple[bool, list[Problem]]:
        """Check one row and rewrite it in place to ``{"messages": [...], "references"?: [...], ...}``
        (keys that are not part of a layout, such as ``group``, are kept untouched).

        Returns:
            (whether the row is kept, its problems). A row with an error is not kept; a training
            row whose assistant turns all have ``weight: 0`` is left out with a warning.
        """
        problems: list[Problem] = []
        if row.get("messages") is not None:
            messages = self._messages(row["messages"], line, problems)
        elif any(k in row for k in ("instruction", "input", "prompt")):
            messages = self._from_columns(row, line, problems)
        else:
            messages = None
            problems.append(self._problem("no messages", line, self._col("messages"), None, hint=LAYOUT_HINT))
        refs, why = references_of(row.get("references"))
        if why:
            problems.append(self._problem(why, line, self._col("references"), row.get("references"),
                                          hint='give a text, or a JSON array of texts such as ["a", "b"]'))
        for key in LAYOUT_KEYS:
            row.pop(key, None)
        row.pop("references", None)
        if refs:
            row["references"] = refs
        if messages is None or problems:
            return False, problems
        problems.extend(self._conversation(messages, line, bool(refs)))
        row["messages"] = messages
        if any(p.severity == "error" for p in problems):
            return False, problems
        if self.split == "train" and not any(m.get("weight", 1) for m in messages if m["role"] == "assistant"):
            problems.append(self._problem("every assistant message has weight 0: nothing to learn, row left out of "
                                          "training", line, self._col("messages"), "weight 0", severity="warning"))
            return False, problems
        return True, problems

    # -- building the message list --------------------------------------------------------------
    def _messages(self, value: Any, line: int, problems: list[Problem], key: str = "messages"
                  ) -> list[dict[str, Any]] | None:
        col = self._col(key)
        broken = _json_error(value)
        if broken:
            problems.append(self._problem(f"the cell looks like JSON but does not parse: {broken}", line, col, value,
                                          hint='write the list as JSON with double quotes, e.g. [{"role": "user", '
                                               '"content": "Hi"}] (in a CSV file, double every quote inside the '
                                               'quoted cell)'))
            return None
        value = _parse_json_cell(value)
        if isinstance(value, dict) and isinstance(value.get("messages"), list):
            value = value["messages"]
        if not isinstance(value, list):
            problems.append(self._problem("messages must be a list of {\"role\", \"content\"} objects", line, col,
                                          value, hint='e.g. [{"role": "user", "content": "Hi"}, {"role": '
                                                      '"assistant", "content": "Hello!"}]'))
            return None
        out: list[dict[str, Any]] = []
        for i, item in enumerate(value):
            where = f"{col}[{i}]"
            if not isinstance(item, dict):
                problems.append(self._problem("a message must be an object {\"role\", \"content\"}", line, where,
                                              item))
                continue
            role = item.get("role", item.get("from"))
            role_key = "role" if "role" in item or "from" not in item else "from"
            if isinstance(role, str) and role_key == "from":
                role = _SHAREGPT_ROLES.get(role.strip().lower(), role)
            if role == "developer":  # OpenAI's newer name for system (endpoints take it too)
                role = "system"
            if not isinstance(role, str) or role not in ROLES:
                problems.append(self._problem(f"unknown role {role!r}", line, f"{where}.{role_key}", role,
                                              hint="roles are system (or developer), user and assistant"))
                continue
            content_key = "content" if "content" in item or "value" not in item else "value"
            content = _text(item.get(content_key))
            if content is None or not content.strip():
                problems.append(self._problem(f"empty content in a {role} message", line, f"{where}.{content_key}",
                                              item.get(content_key), hint="fill it in or remove the message"))
                continue
            message: dict[str, Any] = {"role": role, "content": content}
            if item.get("weight") is not None:  # Parquet gives every message the field, null when unset
                weight = item["weight"]
                if isinstance(weight, bool) or weight not in (0, 1):
                    problems.append(self._problem("weight must be 0 or 1", line, f"{where}.weight", weight,
                                                  hint="0 leaves the reply out of the loss, 1 (the default) learns it"))
                    continue
                if role != "assistant":
                    problems.append(self._problem(f"weight on a {role} message: only assistant messages have one",
                                                  line, f"{where}.weight", weight,
                                                  hint="remove it (only assistant replies are learned)"))
                    continue
                message["weight"] = int(weight)
            out.append(message)
        return out

    def _from_columns(self, row: dict[str, Any], line: int, problems: list[Problem]) -> list[dict[str, Any]] | None:
        prompt, completion = _parse_json_cell(row.get("prompt")), _parse_json_cell(row.get("completion"))
        if isinstance(prompt, list):  # conversational prompt / completion (message lists), as TRL reads them
            both = prompt + (completion if isinstance(completion, list) else
                             [{"role": "assistant", "content": completion}] if completion is not None else [])
            return self._messages(both, line, problems, key="prompt")
        parts = []
        for key in ("instruction", "input", "prompt"):
            text = _text(row.get(key))
            if text is not None and text.strip():
                parts.append(text.strip() if key != "prompt" else text)
        reply_key = "completion" if "completion" in row else "output"
        reply = _text(row.get(reply_key))
        keys = [k for k in ("instruction", "input", "prompt") if k in row]
        if not parts:
            column = ", ".join(self._col(k) for k in keys) or self._col("messages")
            problems.append(self._problem("empty prompt: no user text", line, column,
                                          row.get(keys[0]) if keys else None,
                                          hint="fill it in or remove the row"))
            return None
        messages: list[dict[str, Any]] = []
        system = _text(row.get("system"))
        if system and system.strip():
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": "\n\n".join(parts)})
        if reply is not None and reply.strip():
            messages.append({"role": "assistant", "content": reply})
        elif reply_key in row:
            problems.append(self._problem("empty content in the reply", line, self._col(reply_key), reply,
                                          hint="fill it in or remove the row"))
            return None
        return messages

    # -- the conversation as a whole -------------------------------------------------------------
    def _conversation_column(self) -> str:
        """The column problems of a whole conversation name: the messages column, else the reply's
        or the prompt's column."""
        key = next((k for k in ("messages", "completion", "output", "prompt", "instruction", "input")
                    if k in self.columns), "messages")
        return self._col(key)

    def _conversation(self, messages: list[dict[str, Any]], line: int, has_refs: bool) -> list[Problem]:
        col = self._conversation_column()
        problems: list[Problem] = []
        for i, m in enumerate(messages):
            if m["role"] == "system" and i > 0:
                problems.append(self._problem("a system message must come first", line, f"{col}[{i}].role", "system",
                                              hint="move it to the start or make it a user message"))
        if not messages:
            problems.append(self._problem("no messages", line, col, messages, hint="give at least a user message "
                                                                                  "and an assistant reply"))
            return problems
        last = messages[-1]["role"]
        if not any(m["role"] == "assistant" for m in messages) and not (self.split == "test" and has_refs):
            problems.append(self._problem("no assistant message: nothing to learn or score", line, col,
                                          [m["role"] for m in messages],
                                          hint="add the assistant's reply (it is what the model learns)"))
        elif last != "assistant" and not (self.split == "test" and has_refs):
            problems.append(self._problem(f"the conversation ends on a {last} message, not on an assistant reply",
                                          line, f"{col}[{len(messages) - 1}].role", last,
                                          hint="end it with the assistant's reply, or remove the trailing "
                                               "message"))
        return problems
