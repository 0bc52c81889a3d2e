"""Rich rendering of reports, metrics, cards and progress for the terminal."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table



def print_report(console: Console, report: Any, show_errors: bool = True) -> None:
    """The validation report (``fmhub.data.report.ValidationReport``): mapping, per-split rows,
    distributions, lengths, problems."""
    console.print(f"[bold]Validation report[/] ({report.task})")
    if report.mapping:
        console.print("  column mapping: " + ", ".join(report.mapping), highlight=False)
    table = Table(show_edge=False, pad_edge=False)
    for col in ("split", "read", "kept", "dropped", "tokens mean/p95/max", "truncated", "source"):
        table.add_column(col, overflow="fold")
    for s in report.splits:
        lengths = s.lengths
        table.add_row(s.name, str(s.rows_read), str(s.rows_kept), str(len(s.dropped)),
                      f"{lengths.mean}/{lengths.p95}/{lengths.max}" if lengths else "-",
                      f"{lengths.truncated} (> {lengths.max_seq_length})" if lengths else "-", s.source)
    console.print(table)
    for s in report.splits:
        if s.distribution:
            items = list(s.distribution.items())
            dist = ", ".join(f"{k}: {v}" for k, v in items[:20])
            if len(items) > 20:
                dist += f", ... ({len(items)} in all)"
            console.print(f"  {s.name} distribution: {dist}", highlight=False)
    for s in report.splits:
        for p in s.dropped[:10]:
            console.print(f"  [yellow]dropped[/] {p}", highlight=False)
        if len(s.dropped) > 10:
            console.print(f"  ... and {len(s.dropped) - 10} more dropped rows in {s.name}")
    for note in report.notes:
        console.print(f"  note: {note}", highlight=False)
    for p in report.warnings[:20]:
        console.print(f"  [yellow]warning:[/] {p}", highlight=False)
    for p in report.errors[:50] if show_errors else []:
        console.print(f"  [red]error:[/] {p}", highlight=False)
    if show_errors and len(report.errors) > 50:
        console.print(f"  ... and {len(report.errors) - 50} more errors")


SCALARS = ("accuracy", "f1_macro", "precision_macro", "recall_macro", "mcc")


def print_metrics(console: Console, metrics: dict[str, dict[str, Any]]) -> None:
    """Metrics per split as a table, then per-class reports and confusion matrices."""
    if not metrics:
        return
    names: list[str] = []  # every split's numeric metrics, in order of appearance ("-" where a split has none)
    for m in metrics.values():
        names += [k for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                  and k != "n" and k not in names]
    metrics = dict(sorted(metrics.items(), key=lambda item: item[0] != "validation"))  # validation first
    table = Table(title="Metrics", show_edge=False)
    table.add_column("split")
    for n in names:
        table.add_column(n, justify="right")
    table.add_column("rows", justify="right")
    for split, m in metrics.items():
        cells = (f"{m[n]:.4f}" if isinstance(m.get(n), (int, float)) else "-" for n in names)
        table.add_row(split, *cells, str(m.get("n", "")))
    console.print(table)
    for split, m in metrics.items():
        per_class = m.get("per_class")
        if per_class and len(per_class) <= 30:
            t = Table(title=f"{split}: per class", show_edge=False)
            for col in ("label", "precision", "recall", "f1", "support"):
                t.add_column(col, justify="right" if col != "label" else "left")
            for lab, r in per_class.items():
                t.add_row(lab, f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", str(r["support"]))
            console.print(t)
        cm = m.get("confusion_matrix")
        if cm and len(cm["labels"]) <= 12:
            t = Table(title=f"{split}: confusion matrix (rows: true, columns: predicted)", show_edge=False)
            t.add_column("")
            for lab in cm["labels"]:
                t.add_column(lab, justify="right")
            for lab, row in zip(cm["labels"], cm["matrix"]):
                t.add_row(lab, *(str(x) for x in row))
            console.print(t)


def print_cards(console: Console, cards: list[Any]) -> None:
    """The catalog as a table."""
    table = Table(show_edge=False)
    for col in ("name", "registry", "parameters", "license", "fine-tuning tasks", "offline"):
        table.add_column(col, overflow="fold")
    for c in cards:
        name = f"{c.name}:{c.version}" if c.version else c.name
        table.add_row(name, c.registry, human_count(c.parameters), c.license, ", ".join(c.finetuning_tasks),
                      "yes" if c.available_offline else "no")
    console.print(table)
    console.print(f"{len(cards)} model(s)")


def print_card(console: Console, data: dict[str, Any]) -> None:
    """A model card, and for workspace versions its lineage and metrics.

    Long values and the card text wrap at the console's width (never cut), whatever the console's
    ``soft_wrap`` setting.
    """
    card = data["card"]
    title = card["name"] + (f":{data['version']['version']}" if data.get("version") else "")
    console.print(f"[bold]{title}[/]  ({card['registry']} registry)")
    rows = [("architecture", card["architecture"]), ("parameters", human_count(card["parameters"])),
            ("license", card["license"] + (f"  {card['license_url']}" if card.get("license_url") else "")),
            ("languages", ", ".join(card["languages"]) or "-"),
            ("inference tasks", ", ".join(card["inference_tasks"]) or "-"),
            ("fine-tuning tasks", ", ".join(card["finetuning_tasks"]) or "-"),
            ("source", _source(card["source"])),
            ("available offline", "yes" if card.get("available_offline") else "no")]
    t = Table.grid(padding=(0, 2))
    for k, v in rows:
        t.add_row(f"[bold]{k}[/]", str(v))
    console.print(t, soft_wrap=False)
    if card.get("description"):
        console.print(Markdown(card["description"]), soft_wrap=False)
    version = data.get("version")
    if version:
        lin = version.get("lineage", {})
        console.print("[bold]Lineage[/]")
        lt = Table.grid(padding=(0, 2))
        for key in ("base_model", "job_id", "task", "labels", "column_mapping"):
            if lin.get(key) not in (None, [], {}):  # generation tasks have no labels
                lt.add_row(key, str(lin[key]))
        if lin.get("finetuning_type"):
            lt.add_row("finetuning_type", str(lin["finetuning_type"])
                       + (f", {human_count(lin.get('trainable_parameters'))} trainable parameters"
                          if lin.get("trainable_parameters") else ""))
        if lin.get("adapter"):
            lt.add_row("adapter", f"LoRA adapter on base {lin.get('adapter_base_model')} (loaded on it when used)")
        for d in lin.get("data", []):
            lt.add_row(f"data ({d['split']})", f"{d['asset']}  sha256 {d['sha256'][:16]}…  {d['file']}")
        if "hyperparameters" in lin:
            hp = {k: v for k, v in lin["hyperparameters"].items() if v is not None}
            lt.add_row("hyperparameters", ", ".join(f"{k}={v}" for k, v in hp.items()))
        lt.add_row("path", version["path"])
        console.print(lt, soft_wrap=False)
        if version.get("metrics"):
            print_metrics(console, version["metrics"])
            from fmhub.cli.render_groups import print_group_comparison

            print_group_comparison(console, version["metrics"])
    example = data.get("scoring_example")
    if example:
        import json

        console.print(f"[bold]Online endpoint request[/] ({example['task']}; POST /endpoints/NAME/score)")
        console.print(json.dumps(example["request"], ensure_ascii=False), highlight=False, soft_wrap=True)
        console.print("[bold]Response[/]")
        console.print(json.dumps(example["response"], ensure_ascii=False), highlight=False, soft_wrap=True)
        console.print(f"versions: {', '.join(str(v) for v in data.get('versions', []))}")


def _source(src: dict[str, Any]) -> str:
    if src.get("kind") == "package":
        return f"package {src.get('package')} ({src.get('install') or ''})"
    if src.get("kind") == "hub":
        return f"hub {src.get('hub_id')}"
    return f"local {src.get('url') or ''}"


def human_count(n: int | None) -> str:
    """``22713216`` -> ``22.7M``."""
    if not n:
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


class ProgressBar:
    """A progress sink: a live bar (step, loss, ETA) and stage lines on a terminal; plain lines,
    printed in order as they happen, when the console writes to a file or a pipe.

    Metrics of the final evaluations (events without an epoch) are not printed here: the command
    prints them once, as a table, when the job ends.

    Args:
        console: Where to draw (the CLI's stderr console).
        min_interval_s: Plain mode: a progress line at most this often, besides every tenth of the
            way and the last step.
    """

    def __init__(self, console: Console, min_interval_s: float = 30.0) -> None:
        self.console = console
        self.live = console.is_terminal
        self.min_interval_s = min_interval_s
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self.task_id = None
        self.predict_progress: Progress | None = None
        self.predict_tasks: dict[str, Any] = {}
        self.started: dict[str, tuple[float, int]] = {}
        self.last_line: dict[str, tuple[float, int]] = {}

    def event(self, kind: str, data: dict[str, Any]) -> None:
        """Print stage changes and the validation metrics of each epoch as lines above the bar."""
        if kind == "stage":
            stage = data.get("stage")
            if data.get("plan"):  # the training plan in words: "8 steps: part of 1 epoch of 125 steps"
                self.console.print(f"[cyan]{stage}[/] {data['plan']}", highlight=False)
                return
            extra = ", ".join(f"{k}={v}" for k, v in data.items() if k not in ("stage",))
            self.console.print(f"[cyan]{stage}[/] {extra}".rstrip(), highlight=False)
        elif kind == "predict":
            self.predicting(f"predicting {data.get('split')}", int(data.get("done", 0)), int(data.get("total", 0)))
        elif kind == "eval" and data.get("epoch") is not None:
            m = data.get("metrics", {})
            shown = ", ".join(f"{k} {v:.4f}" for k, v in m.items() if isinstance(v, float)
                              and "runtime" not in k and "per_second" not in k)
            self.console.print(f"[green]{data.get('split')}[/] epoch {data.get('epoch')}: {shown}",
                               highlight=False)

    def _plain(self, key: str, done: int, total: int) -> tuple[float, float | None] | None:
        """Plain mode: ``(elapsed_s, eta_s)`` when a line is due for ``key``, else None."""
        now = time.monotonic()
        start, first_done = self.started.setdefault(key, (now, done))
        last_t, last_done = self.last_line.get(key, (start, 0))
        tenth = max(1, total // 10)
        due = done >= total or done // tenth > last_done // tenth or now - last_t >= self.min_interval_s
        if not due or (key in self.last_line and done == last_done):
            return None
        self.last_line[key] = (now, done)
        elapsed = now - start
        eta = elapsed / (done - first_done) * (total - done) if done > first_done and total > done else None
        return elapsed, eta

    def predicting(self, label: str, done: int, total: int) -> None:
        """Show prediction progress in rows (a bar of its own per label)."""
        if not self.live:
            due = self._plain(label, done, total)
            if due is not None:
                self.console.print(f"{label}: {done}/{total} rows, {_clock(due[0])}"
                                   + (f", ETA {_clock(due[1])}" if due[1] is not None else ""), highlight=False)
            return
        if self.predict_progress is None:
            self.predict_progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                             TextColumn("rows"), TimeElapsedColumn(), TextColumn("ETA"),
                                             TimeRemainingColumn(), console=self.console, transient=False)
            self.predict_progress.start()
        if label not in self.predict_tasks:
            self.predict_tasks[label] = self.predict_progress.add_task(label, total=total)
        self.predict_progress.update(self.predict_tasks[label], completed=done, total=total)

    def step(self, step: int, total: int, loss: float | None) -> None:
        """Advance the bar (plain mode: a line every tenth of the way, every ``min_interval_s``
        and at the last step)."""
        if not self.live:
            due = self._plain("training", step, total)
            if due is not None:
                self.console.print(f"training step {step}/{total}, loss "
                                   + (f"{loss:.4f}" if loss is not None else "-") + f", {_clock(due[0])}"
                                   + (f", ETA {_clock(due[1])}" if due[1] is not None else ""), highlight=False)
            return
        if self.task_id is None:
            self.progress.start()
            self.task_id = self.progress.add_task("training", total=total, loss="-")
        self.progress.update(self.task_id, completed=step, total=total,
                             loss=f"{loss:.4f}" if loss is not None else "-")
        if step >= total:
            self.close()

    def close(self) -> None:
        """Stop drawing (idempotent)."""
        if self.task_id is not None:
            self.progress.stop()
        if self.predict_progress is not None:
            self.predict_progress.stop()


def _clock(seconds: float) -> str:
    """``83.2`` -> ``0:01:23``."""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def print_comparison(console: Console, results: list[dict[str, Any]]) -> None:
    """Several evaluate results on the same test data as one table: a row per model.

    The columns are the task's scalar metrics (the union of the numeric metric keys of the results'
    ``test`` metrics, in order of first appearance), the row count and the job id. Nested values
    (per-class reports, confusion matrices, per-type scores) are left out; text values such as
    sacreBLEU signatures are printed below the table.

    Args:
        console: Where to print.
        results: ``run_evaluate`` results, each with ``model``, ``job_id`` and ``test`` metrics.
    """
    if not results:
        return
    names: list[str] = []
    texts: list[str] = []
    for r in results:
        for k, v in (r.get("test") or {}).items():
            if k == "n" or isinstance(v, (dict, list, tuple, bool)) or v is None:
                continue
            target = names if isinstance(v, (int, float)) else texts
            if k not in target:
                target.append(k)
    task = results[0].get("task")
    table = Table(title=f"Metrics on the test data ({task})" if task else "Metrics on the test data",
                  show_edge=False)
    table.add_column("model", overflow="fold")
    for n in names:
        table.add_column(n, justify="right")
    table.add_column("rows", justify="right")
    table.add_column("job", overflow="fold")

    def cell(value: Any) -> str:
        if isinstance(value, bool) or value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4f}"
        return str(value)

    for r in results:
        m = r.get("test") or {}
        table.add_row(str(r.get("model", "")), *(cell(m.get(n)) for n in names), cell(m.get("n")),
                      str(r.get("job_id", "")))
    console.print(table)
    for k in texts:
        values = [(str(r.get("model", "")), (r.get("test") or {}).get(k)) for r in results]
        distinct = {v for _, v in values if v is not None}
        if len(distinct) == 1:
            console.print(f"  {k}: {distinct.pop()}", highlight=False)
        else:
            for model, v in values:
                if v is not None:
                    console.print(f"  {k} ({model}): {v}", highlight=False)

