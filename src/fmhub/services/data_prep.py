"""Data intake for a job: read the files, map columns, check rows and splits, build the report.

Nothing trains until this has run and found no error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmhub.data.labels import row_key
from fmhub.data.leakage import cross_split_duplicates
from fmhub.data.mapping import add_groups, apply_mapping, resolve_mapping
from fmhub.data.problems import Problem
from fmhub.data.readers import Table, delimiter_name, read_table
from fmhub.data.report import SplitReport, ValidationReport, length_stats
from fmhub.data.splits import SplitSizes, split_indices
from fmhub.errors import DataError
from fmhub.services.specs import DataSpec
from fmhub.tasks.base import Examples, LabelInfo, Task

SPLITS = ("train", "validation", "test")


@dataclass
class PreparedData:
    """The checked splits of a job and their report.

    Attributes:
        splits: ``train`` always; ``validation`` / ``test`` when present.
        info: The label space learned from ``train`` (None when the report has errors early).
        report: The validation report.
        files: Split -> the file its rows came from (automatic splits name the training file).
    """

    splits: dict[str, Examples]
    info: LabelInfo | None
    report: ValidationReport
    files: dict[str, str]


def _is_keyword(value: str | None, *words: str) -> bool:
    return value is not None and value.strip().lower() in words


def read_examples(path: str, spec: DataSpec, task: Task, report: ValidationReport) -> tuple[Table, Examples, list[str]]:
    """Read one file and map its columns; reader warnings go into ``report``.

    Returns:
        (the table, its rows as task examples with their line numbers, the mapping as shown).

    Raises:
        DataError: unreadable file or unresolvable column mapping.
    """
    table = read_table(path, format=spec.format, encoding=spec.encoding, delimiter=spec.delimiter)
    report.warnings.extend(table.warnings)
    if table.delimiter is not None and (table.format == "csv" or table.delimiter != "\t"):
        report.notes.append(delimiter_note(path, table, spec.delimiter))
    if table.skipped_blank_lines:
        report.notes.append(f"{path}: skipped {table.skipped_blank_lines} blank line(s)")
    extra, constants = task.default_mapping(table.columns, spec.column_mapping)
    mapping = resolve_mapping(table.columns, task.schema, {**extra, **spec.column_mapping}, file=path,
                              nested=table.nested_columns)
    mapping.auto.extend(k for k in extra if k not in spec.column_mapping and k not in mapping.auto)
    rows = apply_mapping(table, mapping)
    for row in rows:
        row.update({k: v for k, v in constants.items() if row.get(k) is None})
    if spec.group_by:
        add_groups(table, rows, spec.group_by, path)
    if constants:
        shown = ", ".join(f"{k} {v}" for k, v in constants.items())
        note = f"{shown} (from the column names of {path})"
        if note not in report.notes:
            report.notes.append(note)
    return table, Examples("", path, rows, list(table.lines), dict(mapping.columns)), mapping.describe()


def delimiter_note(path: str, table: Table, given: str | None) -> str:
    """The report's note on a CSV/TSV file's delimiter, e.g. ``"train.csv: fields separated by ';'
    (semicolon), detected from the header (--delimiter to change)"`` (every CSV file has one; a TSV
    file only when read with another delimiter than a tab)."""
    how = "as given by --delimiter" if given else "detected from the header (--delimiter to change)" \
        if table.format == "csv" else "the TSV default (--delimiter to change)"
    return f"{path}: fields separated by {delimiter_name(table.delimiter or ',')}, {how}"


def check_examples(examples: Examples, task: Task, on_invalid_row: str,
                   report: ValidationReport, label_options: dict[str, Any] | None = None
                   ) -> tuple[Examples, list[Problem]]:
    """Run the task's row checks on one split.

    Warnings go to ``report``. With ``on_invalid_row="error"`` the bad rows become report errors
    and ``examples`` is returned whole; with ``"drop"`` they are left out and returned as dropped.
    Rows the task leaves out by design (a warning on a row it did not keep) are dropped in both
    modes.
    Problems name the user's column (the message names the task key).

    Returns:
        (the examples to use, the dropped rows' problems).
    """
    mapped = task.apply_label_options(examples, label_options or {})
    bad_lines = {p.line for p in mapped if p.severity == "error"}
    good, problems = task.check_rows(examples)
    good = [i for i in good if examples.lines[i] not in bad_lines]
    problems = mapped + [p for p in problems if p.line not in bad_lines]
    for p in problems:
        p.column = examples.columns.get(p.column or "", p.column)
    kept_lines = {examples.lines[i] for i in good}
    # A warning on a row the task did not keep means "left out by design" (e.g. a source text
    # missing from a text-to-text pair): the row is dropped in both modes and listed as dropped.
    left_out = [p for p in problems if p.severity == "warning" and p.line not in kept_lines]
    report.warnings.extend(p for p in problems if p.severity == "warning" and p.line in kept_lines)
    errors = [p for p in problems if p.severity == "error"]
    if on_invalid_row == "error":
        report.errors.extend(errors)
        if errors:
            return examples, []
        return examples.subset(good, examples.split), left_out
    for p in errors:
        p.severity, p.hint = "warning", ""
    return examples.subset(good, examples.split), errors + left_out


def prepare_data(spec: DataSpec, task: Task, tokenizer: Any | None, max_seq_length: int, seed: int) -> PreparedData:
    """Read, map, check and split the data of a job.

    Args:
        spec: Files, mapping and split sizes.
        task: The task module (row checks, label space, distributions).
        tokenizer: The model's tokenizer, for token-length statistics (None to skip them).
        max_seq_length: Truncation limit in tokens (for the "would be truncated" count).
        seed: Seed of automatic splits.

    Returns:
        The prepared splits and the report. Check ``report.ok`` before training.

    Raises:
        DataError: when a file cannot be read or a column mapping cannot be resolved.
    """
    report = ValidationReport(task=task.name)
    files: dict[str, str] = {}
    read: dict[str, Examples] = {}
    dropped: dict[str, list[Problem]] = {}

    _, train, mapping_lines = read_examples(spec.train, spec, task, report)
    report.mapping = mapping_lines
    train.split = "train"
    rows_read = {"train": len(train)}
    train, dropped["train"] = check_examples(train, task, spec.on_invalid_row, report, spec.label_options())
    files["train"] = spec.train

    for split in ("validation", "test"):
        value = getattr(spec, split)
        if _is_keyword(value, "auto", "none", ""):
            continue
        _, ex, _ = read_examples(value, spec, task, report)
        ex.split = split
        rows_read[split] = len(ex)
        ex, dropped[split] = check_examples(ex, task, spec.on_invalid_row, report, spec.label_options())
        read[split] = ex
        files[split] = value

    sizes = SplitSizes(
        validation=spec.validation_size if _is_keyword(spec.validation, "auto") else 0.0,
        test=spec.test_size if _is_keyword(spec.test, "auto") else 0.0,
    )
    sources = {"train": spec.train}
    splits: dict[str, Examples] = {}
    if sizes.validation > 0 or sizes.test > 0:
        strat = task.stratify_values(train) if report.ok else None
        split_notes: list[str] = []
        # Exact duplicate rows (after label normalisation) stay together: no row of an automatic
        # validation/test split also occurs in train.
        groups = [row_key(row) for row in train.rows] if report.ok else None
        idx = split_indices(len(train), sizes, seed=seed, stratify=strat, notes=split_notes, groups=groups)
        repeated = len(groups) - len(set(groups)) if groups else 0
        if repeated:
            split_notes.append(f"{spec.train} repeats {repeated} row(s) exactly: each set of copies was kept "
                               "in one split")
        report.notes.extend(split_notes)
        full = train
        train = full.subset(idx["train"], "train")
        rows_read["train"] = len(train) + len(dropped["train"])  # the others are counted in their split
        for split in ("validation", "test"):
            if split in idx:
                splits[split] = full.subset(idx[split], split)
                frac = getattr(sizes, split)
                stratified = strat is not None and not any(f"the {split} split" in n for n in split_notes)
                how = ", stratified on the label" if stratified else ""
                sources[split] = f"auto: {len(idx[split])} rows ({frac:.0%}) of {spec.train}{how}, seed {seed}"
                rows_read[split] = len(idx[split])
                files[split] = spec.train
                dropped.setdefault(split, [])
        counts = ", ".join(f"{name} {len(idx[name])}" for name in SPLITS if name in idx)
        report.notes.append(f"automatic split of {spec.train}: {counts}")
    for split, ex in read.items():
        splits[split] = ex
        sources[split] = files[split]
    splits["train"] = train
    if not len(train):
        report.errors.append(Problem("no training rows", file=spec.train,
                                     hint="the training file needs data rows below its header"))
    for split in ("validation", "test"):
        if split in splits and not len(splits[split]):
            if split in read:
                report.errors.append(Problem(f"no {split} rows", file=files[split],
                                             hint=f"give a {split} file with rows, or --{split} auto/none"))
            else:
                del splits[split]
                report.notes.append(f"the training file is too small for an automatic {split} split")
    if "test" not in splits:
        report.notes.append("no test data: the job will not report test metrics")
    if "validation" not in splits:
        report.notes.append("no validation data: no per-epoch evaluation, the last checkpoint is kept")

    # Labels written two ways are reported with the row errors (all problems at once).
    for p in task.check_label_values(splits, spec.label_options()):
        owner = next((ex for ex in splits.values() if ex.file == p.file), train)
        p.column = owner.columns.get(p.column or "", p.column)
        (report.errors if p.severity == "error" else report.warnings).append(p)
    info: LabelInfo | None = None
    if report.ok:
        info = task.label_info(train)
        for p in task.check_splits(splits, info):
            owner = next((ex for ex in splits.values() if ex.file == p.file), train)
            p.column = owner.columns.get(p.column or "", p.column)  # name the user's column
            (report.errors if p.severity == "error" else report.warnings).append(p)
        ordered_rows = {name: (splits[name].file, splits[name].rows, splits[name].lines)
                        for name in SPLITS if name in splits}
        report.leakage, leaks = cross_split_duplicates(ordered_rows)
        report.warnings.extend(leaks)

    ordered = {name: splits[name] for name in SPLITS if name in splits}
    for name, ex in ordered.items():
        sr = SplitReport(name=name, source=sources[name], rows_read=rows_read.get(name, len(ex)),
                         rows_kept=len(ex), dropped=dropped.get(name, []))
        if report.ok:
            sr.distribution = task.distribution(ex)
            if tokenizer is not None and len(ex):
                sr.lengths = length_stats(task.token_counts(tokenizer, ex), max_seq_length)
                notes, found = task.length_report(tokenizer, ex, max_seq_length)
                report.notes.extend(notes)
                for p in found:
                    (report.errors if p.severity == "error" else report.warnings).append(p)
                for p in task.tokenizer_warnings(tokenizer, ex):
                    p.column = ex.columns.get(p.column or "", p.column)
                    report.warnings.append(p)
        report.splits.append(sr)
    return PreparedData(splits=ordered, info=info, report=report, files=files)


def report_error(report: ValidationReport) -> DataError:
    """One ``DataError`` listing a report's errors (first 20), with the report in ``details``."""
    lines = [str(p) for p in report.errors[:20]]
    more = f"\n... and {len(report.errors) - 20} more" if len(report.errors) > 20 else ""
    return DataError(f"{len(report.errors)} problem(s) in the data:\n" + "\n".join(lines) + more,
                     hint=report.errors[0].hint or "fix the rows listed and run again",
                     details=report.to_dict())


def resolve_path(value: str) -> Path:
    """The path of a data file as given (relative to the current folder)."""
    return Path(value).expanduser()
