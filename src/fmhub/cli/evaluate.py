"""``fmhub evaluate``: one or more models' metrics on your own test data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import typer

from fmhub.cli.common import JSON_OPTION, context, err, handle_errors, out, print_json, quiet_libraries
from fmhub.cli.compute_flags import (COMPUTE_HELP, MAX_FAILURES_HELP, NUM_CPUS_HELP, NUM_GPUS_HELP, RESOURCE_HELP,
                                     compute_overrides, print_queued_on_cluster)
from fmhub.cli.submit import SUBMIT_HELP, submit_many
from fmhub.cli.render import ProgressBar, print_comparison, print_metrics, print_report
from fmhub.cli.render_groups import print_group_comparison

if TYPE_CHECKING:
    from fmhub.services.specs import EvaluateSpec


@dataclass(frozen=True)
class EvaluateFlags:
    """The ``fmhub evaluate`` flags shared by every model evaluated in one run.

    Attributes:
        test: Test file or data asset ``NAME:VERSION``.
        task: The task (None: the model version's task).
        map: ``KEY=COLUMN`` column-mapping options.
        format: Forced reader, or None to tell by the file name.
        encoding: Text encoding.
        on_invalid_row: ``error`` or ``drop``.
        label_type: Classification label type (``string`` or ``int``), or None for the default.
        tag_names: Tag names for integer tags (comma-separated or a file), or None.
        delimiter: CSV/TSV field separator, or None to detect it.
        batch_size: Rows per forward pass.
        max_seq_length: Truncation limit in tokens, or None for the model's own.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        num_beams: Beam width when generating, or None for the default.
        max_new_tokens: Longest generated text in tokens, or None for the default.
        length_penalty: Beam-search length penalty, or None for the default.
        label_names: Names of integer classes 0..n-1 (comma-separated or a file), or None.
        max_predict_samples: Score the first N test rows only (smoke runs), or None for all.
        group_by: A column whose values group the rows: metrics per group as well (None: overall only).
        compute: ``local`` or ``ray`` (None: the spec's default, ``local``).
        resources: ``--num-cpus``, ``--num-gpus``, ``--resource`` and ``--max-failures`` as
            ``(name, value)`` pairs (Ray's names; see :func:`~fmhub.cli.compute_flags.compute_overrides`).
    """

    test: str
    task: Optional[str] = None
    map: tuple[str, ...] = ()
    format: Optional[str] = None
    encoding: str = "utf-8"
    on_invalid_row: str = "error"
    label_type: Optional[str] = None
    tag_names: Optional[str] = None
    batch_size: int = 64
    max_seq_length: Optional[int] = None
    device: str = "auto"
    num_beams: Optional[int] = None
    max_new_tokens: Optional[int] = None
    length_penalty: Optional[float] = None
    label_names: Optional[str] = None
    max_predict_samples: Optional[int] = None
    # -- delimiter --
    delimiter: Optional[str] = None
    compute: Optional[str] = None
    resources: tuple[tuple[str, Any], ...] = ()
    group_by: Optional[str] = None


def build_evaluate_spec(model: str, flags: EvaluateFlags) -> EvaluateSpec:
    """The evaluate job spec of one model from the command-line flags.

    Args:
        model: Workspace ``NAME[:VERSION]`` or a catalog model.
        flags: The other flags of the command.

    Returns:
        The validated :class:`~fmhub.services.specs.EvaluateSpec`.

    Raises:
        SpecError: a flag value is invalid (all problems listed).
    """
    from fmhub.services.specs import EvaluateSpec, build_spec, parse_map_options

    generation = {k: v for k, v in {"num_beams": flags.num_beams, "max_new_tokens": flags.max_new_tokens,
                                    "length_penalty": flags.length_penalty}.items() if v is not None}
    data: dict[str, Any] = {"test": flags.test, "column_mapping": parse_map_options(list(flags.map)),
                            "format": flags.format, "encoding": flags.encoding,
                            "on_invalid_row": flags.on_invalid_row,
                            **({"label_type": flags.label_type} if flags.label_type else {}),
                            **({"tag_names": flags.tag_names} if flags.tag_names else {}),
                            **({"label_names": flags.label_names} if flags.label_names else {}),
                            # -- delimiter --
                            **({"delimiter": flags.delimiter} if flags.delimiter else {}),
                            **({"group_by": flags.group_by} if flags.group_by else {})}
    return build_spec(EvaluateSpec, {
        "model": model, "task": flags.task, "device": flags.device,
        "per_device_eval_batch_size": flags.batch_size,
        **({"max_seq_length": flags.max_seq_length} if flags.max_seq_length else {}),
        **({"max_predict_samples": flags.max_predict_samples} if flags.max_predict_samples is not None else {}),
        "generation": generation, "data": data,
        **compute_overrides({"compute": flags.compute, **dict(flags.resources)})}, "the command-line flags")


@handle_errors
def evaluate_cmd(
    model: list[str] = typer.Option(..., "--model", help="Workspace NAME[:VERSION] (latest when no version) or a catalog model (then give --task). Repeat to compare several models on the same test data; they are evaluated in turn, and the first failure stops the run."),
    test: str = typer.Option(..., "--test", help="Test data: a JSONL, JSON, CSV, TSV, Parquet or CoNLL file, or a data asset NAME:VERSION."),
    task: Optional[str] = typer.Option(None, "--task", help="Task (default: the model version's task)."),
    map: Optional[list[str]] = typer.Option(None, "--map", help="KEY=COLUMN, repeatable."),
    format: Optional[str] = typer.Option(None, "--format", help="Force the reader: jsonl, json, csv, tsv, parquet, conll (token<TAB>tag lines)."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding."),
    on_invalid_row: str = typer.Option("error", "--on-invalid-row", help="error or drop."),
    # -- delimiter --
    delimiter: Optional[str] = typer.Option(None, "--delimiter", help="CSV/TSV field separator: one character or comma, semicolon, pipe, tab (default: detected from the CSV header; tab for TSV)."),
    label_type: Optional[str] = typer.Option(None, "--label-type", help="Classification labels that are numbers: number (1, 1.0 and 01 are one class), string (separate classes) or int (whole numbers only). Default: labels equal as numbers but written differently stop the job."),
    tag_names: Optional[str] = typer.Option(None, "--tag-names", help="Token classification with integer tags: names in id order, comma-separated (O,B-PER,I-PER), or a file with one name per line."),
    batch_size: int = typer.Option(64, "--per-device-eval-batch-size", "--batch-size", help="Rows per forward pass."),
    max_seq_length: Optional[int] = typer.Option(None, "--max-seq-length", help="Truncate inputs to this many tokens (default: what the model was fine-tuned with, else 512)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    num_beams: Optional[int] = typer.Option(None, "--num-beams", help="Text-to-text tasks: beam width when generating (default from the model card, else 1 = greedy)."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="Text-to-text tasks: longest generated text in tokens (default from the model card, else 64)."),
    length_penalty: Optional[float] = typer.Option(None, "--length-penalty", help="Text-to-text tasks: beam-search length penalty (> 1 favours longer texts)."),
    label_names: Optional[str] = typer.Option(None, "--label-names", help="Text classification with integer labels 0..n-1: class names in id order, comma-separated (negative,positive), or a file with one name per line."),
    max_predict_samples: Optional[int] = typer.Option(None, "--max-predict-samples", help="Smoke runs: score the first N test rows only."),
    group_by: Optional[str] = typer.Option(None, "--group-by", help="COLUMN of the test file: metrics per value of that column as well as overall (default: overall only)."),
    compute: Optional[str] = typer.Option(None, "--compute", help=COMPUTE_HELP),
    num_cpus: Optional[float] = typer.Option(None, "--num-cpus", help=NUM_CPUS_HELP),
    num_gpus: Optional[float] = typer.Option(None, "--num-gpus", help=NUM_GPUS_HELP),
    resource: Optional[list[str]] = typer.Option(None, "--resource", help=RESOURCE_HELP),
    max_failures: Optional[int] = typer.Option(None, "--max-failures", help=MAX_FAILURES_HELP),
    submit_job: bool = typer.Option(False, "--submit", help=SUBMIT_HELP + " One job per model."),
    url: Optional[str] = typer.Option(None, "--url", envvar="FMHUB_URL", help="fmhub server for --submit (default FMHUB_URL, else http://127.0.0.1:8000)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Evaluate one or more models on your test file: the task's metrics, stored as an evaluate job per model.

    Give --model several times to compare models (e.g. the base model and its fine-tuned versions) on the
    same test data: they are evaluated in turn, one job each, and the metrics are printed as one table
    with a row per model (--json: {"task": ..., "results": [...]}). The first model that fails stops
    the run with its error.

    Example:

        fmhub evaluate --model my-classifier:1 --model my-classifier:2 --test test.csv
    """
    quiet_libraries()
    from fmhub.services.evaluate import run_evaluate

    flags = EvaluateFlags(test=test, task=task, map=tuple(map or ()), format=format, encoding=encoding,
                          on_invalid_row=on_invalid_row, label_type=label_type, tag_names=tag_names,
                          batch_size=batch_size, max_seq_length=max_seq_length, device=device,
                          num_beams=num_beams, max_new_tokens=max_new_tokens, length_penalty=length_penalty,
                          label_names=label_names, max_predict_samples=max_predict_samples,
                          delimiter=delimiter, compute=compute, group_by=group_by,
                          resources=(("num_cpus", num_cpus), ("num_gpus", num_gpus),
                                     ("resource", tuple(resource) if resource else None),
                                     ("max_failures", max_failures)))
    specs = [build_evaluate_spec(m, flags) for m in model]  # flag errors before any job starts
    if submit_job:
        submit_many("evaluate", specs, url, as_json)
        return
    console = err if as_json else out
    if specs[0].compute != "local":  # cluster jobs are queued for it, never run here
        from fmhub.services.evaluate import submit_evaluate

        jobs = [submit_evaluate(context(), spec, on_report=(lambda r: print_report(console, r, show_errors=False))
                                if i == 0 else None)[0] for i, spec in enumerate(specs)]
        if as_json:
            print_json(jobs[0].model_dump(mode="json") if len(jobs) == 1
                       else {"jobs": [j.model_dump(mode="json") for j in jobs]})
            return
        for job in jobs:
            print_queued_on_cluster(job)
        return
    several = len(specs) > 1
    ctx = context()
    results: list[dict[str, Any]] = []
    bar = ProgressBar(err)
    try:
        for i, spec in enumerate(specs):
            label = f"predicting test: {spec.model}" if several else "predicting test"
            if several and model.index(spec.model) != i:  # the same model given twice: a bar each
                label += f" (#{i + 1})"
            on_report = (lambda r: print_report(console, r, show_errors=False)) if i == 0 else None
            results.append(run_evaluate(ctx, spec, on_report=on_report,
                                        progress=lambda done, total, label=label: bar.predicting(label, done, total)))
    finally:
        bar.close()
    if not several:
        result = results[0]
        if as_json:
            print_json(result)
            return
        print_metrics(out, {"test": result["test"]})
        print_group_comparison(out, {"test": result["test"]})
        out.print(f"job [bold]{result['job_id']}[/] {result['status']} ({result['model']})", highlight=False)
        return
    if as_json:
        print_json({"task": results[0]["task"], "results": results})
        return
    print_comparison(out, results)
    print_group_comparison(out, {r["model"]: r["test"] for r in results})
    for result in results:
        out.print(f"job [bold]{result['job_id']}[/] {result['status']} ({result['model']})", highlight=False)
