"""Plain-text rendering of jobs for the terminal: headline metric, duration, the spec as lines."""

from __future__ import annotations

from typing import Any

from fmhub.services.task_facts import headline_metric as task_headline_metric


def headline_metric(task: str | None, metrics: dict[str, Any] | None) -> str:
    """The task's headline metric on the test split (else validation) as ``"f1_macro 0.8123 (test)"``.

    Args:
        task: The job's task; an unknown task shows its first numeric metric.
        metrics: Metrics per split (a job's ``outputs["metrics"]``).

    Returns:
        The text, or ``"-"`` when the job has no metrics (yet).
    """
    if not metrics:
        return "-"
    for split in ("test", "validation", *metrics):
        values = metrics.get(split)
        if not isinstance(values, dict):
            continue
        name = task_headline_metric(task)
        if name not in values:
            name = next((k for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                         and k != "n"), None)
        if name is not None and isinstance(values.get(name), (int, float)):
            return f"{name} {values[name]:.4f} ({split})"
    return "-"


def duration(started: Any, finished: Any, now: Any = None) -> str:
    """``"1h 02m"``, ``"3m 05s"`` or ``"42s"`` from start to finish (to ``now`` while running).

    Args:
        started / finished: ``datetime`` or None; ``"-"`` when the job has not started.
        now: The time a running job is measured to (default: the current UTC time).
    """
    if started is None:
        return "-"
    if finished is None:
        from datetime import datetime, timezone

        now = now or datetime.now(timezone.utc if started.tzinfo else None)
        finished = now
    s = max(0, int((finished - started).total_seconds()))
    if s >= 3600:
        return f"{s // 3600}h {s // 60 % 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def spec_lines(value: Any, indent: int = 2) -> list[str]:
    """A job spec as YAML-like ``key: value`` lines, nested mappings indented; None values and
    empty mappings are left out (they mean "the default").

    Args:
        value: The spec (a mapping of plain values, lists and mappings).
        indent: Spaces before the top-level keys.
    """
    lines: list[str] = []
    pad = " " * indent
    for key, item in value.items():
        if item is None or item == {}:
            continue
        if isinstance(item, dict):
            nested = spec_lines(item, indent + 2)
            if nested:
                lines.append(f"{pad}{key}:")
                lines.extend(nested)
        elif isinstance(item, (list, tuple)):
            lines.append(f"{pad}{key}: [{', '.join(_scalar(v) for v in item)}]")
        else:
            lines.append(f"{pad}{key}: {_scalar(item)}")
    return lines


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        import json

        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def event_text(kind: str, data: dict[str, Any]) -> str:
    """One job event as a short line: ``eval`` events show their split and scalar metrics only
    (per-class reports and confusion matrices are in the metrics tables), others their data."""
    import json

    if kind == "eval" and isinstance(data.get("metrics"), dict):
        scalars = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in data["metrics"].items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool))
        epoch = f" epoch {data['epoch']}" if data.get("epoch") is not None else ""
        return f"{data.get('split', '')}{epoch}: {scalars}"
    return json.dumps(data, default=str, ensure_ascii=False)


def where_it_ran(job: Any, events: list[Any]) -> dict[str, Any]:
    """Where a job runs or ran: ``{"compute", "resources", "node"}``; ``resources`` is the spec's
    (None for a local job), ``node`` the last ``placed`` event's node (``node_id``, ``node_ip``,
    ``host``; None when the job was not placed on a cluster node)."""
    placed = [e.data for e in events if e.kind == "stage" and e.data.get("stage") == "placed"]
    node = ({k: placed[-1].get(k) for k in ("node_id", "node_ip", "host", "attempt")} if placed else None)
    resources = job.spec.get("resources") if job.compute != "local" else None
    return {"compute": job.compute, "resources": resources, "node": node}


def where_text(where: dict[str, Any]) -> list[str]:
    """:func:`where_it_ran` as lines: ``compute: ray (num_workers 1, num_cpus 1 ...)``,
    ``node: 127.0.0.1 (host, id 1a2b3c4d5e6f)``."""
    compute = where["compute"]
    if where["resources"]:
        asked = ", ".join(f"{k} {_scalar(v)}" for k, v in where["resources"].items() if v not in (None, {}))
        compute += f" ({asked})"
    lines = [f"compute: {compute}"]
    node = where["node"]
    if node:
        lines.append(f"node: {node.get('node_ip')} ({node.get('host')}, id {str(node.get('node_id'))[:12]})")
    return lines
