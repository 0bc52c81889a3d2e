"""Read CoNLL-style token files: one ``token<TAB>tag`` (or space-separated, tag last) per line,
sentences separated by blank or whitespace-only lines, ``-DOCSTART-`` lines skipped.

Each sentence becomes one row ``{"tokens": [...], "tags": [...]}`` whose line is the line of its first
token, so that later problems name the right place in the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmhub.data.problems import Problem, raise_if_errors, shorten_value

COLUMNS = ["tokens", "tags"]


def parse_conll(path: Path, text: str) -> tuple[list[dict[str, Any]], list[int], int]:
    """Split CoNLL ``text`` into sentences.

    Args:
        path: The file (for messages).
        text: Its decoded content.

    Returns:
        (rows, start line of each row, extra blank lines skipped: those that end no sentence).

    Raises:
        DataError: lines with a single field (no tag), all listed with their line numbers.
    """
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    problems: list[Problem] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    separators = 0

    def flush() -> None:
        if tokens:
            rows.append({"tokens": list(tokens), "tags": list(tags)})
            lines.append(start)
            tokens.clear()
            tags.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            separators += 0 if tokens else 1  # a blank line that ends a sentence is structure
            flush()
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        if fields[0].startswith("-DOCSTART-"):
            flush()
            continue
        if len(fields) < 2 or not fields[-1]:
            problems.append(Problem("a token line needs a token and a tag (token<TAB>tag)", str(path), number,
                                    value=shorten_value(line), hint="add the tag, or check the separator"))
            continue
        if not tokens:
            start = number
        tokens.append(fields[0])
        tags.append(fields[-1])
    flush()
    raise_if_errors(problems, str(path))
    return rows, lines, separators
