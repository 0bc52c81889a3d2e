"""``fmhub finetune``: fine-tune a catalog or workspace model on a data file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from fmhub.cli.common import JSON_OPTION, context, err, handle_errors, out, print_json, quiet_libraries
from fmhub.cli.compute_flags import (COMPUTE_HELP, MAX_FAILURES_HELP, NUM_CPUS_HELP, NUM_GPUS_HELP, NUM_WORKERS_HELP,
                                     RESOURCE_HELP, compute_overrides, print_queued_on_cluster)
from fmhub.cli.render import ProgressBar, print_metrics, print_report
from fmhub.cli.render_groups import print_group_comparison
from fmhub.cli.submit import SUBMIT_HELP, submit
from fmhub.services.task_facts import tasks_text

HP_FLAGS = ("learning_rate", "num_train_epochs", "per_device_train_batch_size", "per_device_eval_batch_size",
            "max_seq_length", "warmup_steps", "weight_decay", "seed", "max_steps", "metric_for_best_model",
            "gradient_accumulation_steps", "save_steps", "doc_stride")
# -- smoke runs, early stopping, label names (issue 13) ---------------------------------------------
HP_FLAGS += ("max_eval_samples", "max_predict_samples", "early_stopping_patience", "early_stopping_threshold")
LABEL_NAME_FLAGS = ("label_names",)
# -- LoRA and memory (chat LLMs) ---------------------------------------------------------------------
HP_FLAGS += ("finetuning_type", "lora_r", "lora_alpha", "lora_dropout", "quantization_bit", "precision")


def relative_to_file(spec: dict[str, Any], job_file: Path) -> dict[str, Any]:
    """Data paths in a job file are relative to the job file's folder (flags: to the current one)."""
    data = spec.get("data")
    if not isinstance(data, dict):
        return spec
    data = dict(data)
    for key in ("train", "validation", "test"):
        value = data.get(key)
        if isinstance(value, str) and value.strip().lower() not in ("auto", "none", ""):
            path = Path(value).expanduser()
            if not path.is_absolute():
                data[key] = str(job_file.parent / path)
    return {**spec, "data": data}


def build_finetune_spec(job_file: Optional[Path], flags: dict[str, Any]) -> Any:
    """Merge a YAML job file with command-line flags (flags win) into a ``FinetuneSpec``."""
    from fmhub.services.specs import FinetuneSpec, build_spec, deep_merge, load_spec_file, parse_map_options

    data: dict[str, Any] = load_spec_file(job_file) if job_file else {}
    if job_file:
        data = relative_to_file(data, Path(job_file))
    over: dict[str, Any] = {}
    for key in ("model", "task", "registered_model_name", "device"):
        if flags.get(key) is not None:
            over[key] = flags[key]
    if flags.get("no_register"):
        over["register_model"] = False
    data_over = {k: flags[k] for k in ("train", "validation", "test", "validation_size", "test_size", "format",
                                       "encoding", "on_invalid_row", "label_type", "tag_names")
                 if flags.get(k) is not None}
    data_over.update({k: flags[k] for k in LABEL_NAME_FLAGS if flags.get(k) is not None})
    if flags.get("map"):
        data_over["column_mapping"] = parse_map_options(flags["map"])
    # -- delimiter --
    if flags.get("delimiter") is not None:
        data_over["delimiter"] = flags["delimiter"]
    if data_over:
        over["data"] = data_over
    hp_over = {k: flags[k] for k in HP_FLAGS if flags.get(k) is not None}
    if flags.get("lora_target_modules"):
        hp_over["lora_target_modules"] = [m.strip() for m in flags["lora_target_modules"].split(",") if m.strip()]
    if flags.get("gradient_checkpointing"):
        hp_over["gradient_checkpointing"] = True
    if flags.get("group_by") is not None:
        data_over["group_by"] = flags["group_by"]
        over["data"] = data_over
    if flags.get("merge"):
        over["merge_adapter"] = True
    if flags.get("no_zero_shot"):
        over["zero_shot"] = False
    if hp_over:
        over["hyperparameters"] = hp_over
    gen_over = {k: flags[k] for k in ("num_beams", "max_new_tokens", "length_penalty") if flags.get(k) is not None}
    if gen_over:
        over["generation"] = gen_over
    over.update(compute_overrides(flags))
    merged = deep_merge(data, over)
    where = f"job file {job_file} and flags" if job_file else "the command-line flags"
    return build_spec(FinetuneSpec, merged, where)


@handle_errors
def finetune_cmd(
    job_file: Optional[Path] = typer.Option(None, "-f", "--file", help="YAML job file (same keys as the REST body); flags override it."),
    model: Optional[str] = typer.Option(None, "--model", help="Catalog name or workspace NAME[:VERSION], e.g. all-MiniLM-L6-v2."),
    task: Optional[str] = typer.Option(None, "--task", help=f"{tasks_text()}."),
    train: Optional[str] = typer.Option(None, "--train", help="Training data: a JSONL, JSON, CSV, TSV, Parquet or CoNLL file, or a data asset NAME:VERSION."),
    validation: Optional[str] = typer.Option(None, "--validation", help="FILE, auto (split from --train; default) or none."),
    test: Optional[str] = typer.Option(None, "--test", help="FILE, auto (split from --train; default) or none (no test evaluation)."),
    map: Optional[list[str]] = typer.Option(None, "--map", help="KEY=COLUMN, repeatable, e.g. --map sentence1=review --map label=stars."),
    validation_size: Optional[float] = typer.Option(None, "--validation-size", help="Fraction for an automatic validation split (default 0.1)."),
    test_size: Optional[float] = typer.Option(None, "--test-size", help="Fraction for an automatic test split (default 0.1)."),
    format: Optional[str] = typer.Option(None, "--format", help="Force the reader: jsonl, json, csv, tsv, parquet, conll (token<TAB>tag lines)."),
    encoding: Optional[str] = typer.Option(None, "--encoding", help="Text encoding of the files (default utf-8)."),
    on_invalid_row: Optional[str] = typer.Option(None, "--on-invalid-row", help="error (default: stop and list bad rows) or drop (leave them out, listed in the report)."),
    # -- delimiter --
    delimiter: Optional[str] = typer.Option(None, "--delimiter", help="CSV/TSV field separator: one character or comma, semicolon, pipe, tab (default: detected from the CSV header; tab for TSV)."),
    label_type: Optional[str] = typer.Option(None, "--label-type", help="Classification labels that are numbers: number (1, 1.0 and 01 are one class), string (separate classes) or int (whole numbers only). Default: labels equal as numbers but written differently stop the job."),
    tag_names: Optional[str] = typer.Option(None, "--tag-names", help="Token classification with integer tags: names in id order, comma-separated (O,B-PER,I-PER), or a file with one name per line."),
    learning_rate: Optional[float] = typer.Option(None, "--learning-rate", help="Peak learning rate (default from the model card or task, e.g. 1e-4 for all-MiniLM-L6-v2)."),
    num_train_epochs: Optional[float] = typer.Option(None, "--num-train-epochs", help="Epochs (task default: 3; 2 for question answering)."),
    per_device_train_batch_size: Optional[int] = typer.Option(None, "--per-device-train-batch-size", "--batch-size", help="Training batch size (default 32)."),
    per_device_eval_batch_size: Optional[int] = typer.Option(None, "--per-device-eval-batch-size", help="Evaluation batch size (default 64)."),
    max_seq_length: Optional[int] = typer.Option(None, "--max-seq-length", help="Longest input in tokens (default 128; token classification 256; question answering 384, windowed)."),
    warmup_steps: Optional[float] = typer.Option(None, "--warmup-steps", help="Warm-up: a whole number of steps (>= 1) or a ratio of all steps (0 to < 1; default 0.06)."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", help="AdamW weight decay (default 0.01)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for the head, data order and automatic splits (default 42; 0 to 2**32-1)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after N optimizer steps (smoke runs; >= 1); overrides the epochs."),
    gradient_accumulation_steps: Optional[int] = typer.Option(None, "--gradient-accumulation-steps", help="Accumulate N batches per optimizer step (default 1)."),
    doc_stride: Optional[int] = typer.Option(None, "--doc-stride", help="Question answering: tokens shared by consecutive context windows (default 128; 1 to half of --max-seq-length)."),
    save_steps: Optional[int] = typer.Option(None, "--save-steps", help="Also checkpoint (and evaluate) every N steps."),
    metric_for_best_model: Optional[str] = typer.Option(None, "--metric-for-best-model", help="Validation metric that picks the best checkpoint (default: f1_macro for text classification, f1 for token classification, loss for the others)."),
    num_beams: Optional[int] = typer.Option(None, "--num-beams", help="Text-to-text tasks: beam width when generating (default from the model card, else 1 = greedy)."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="Text-to-text tasks: longest generated text in tokens (default from the model card, else 64)."),
    length_penalty: Optional[float] = typer.Option(None, "--length-penalty", help="Text-to-text tasks: beam-search length penalty (> 1 favours longer texts)."),
    # -- smoke runs, early stopping, label names (issue 13) -----------------------------------------
    max_eval_samples: Optional[int] = typer.Option(None, "--max-eval-samples", help="Smoke runs: evaluate on the first N validation rows only (each epoch and at the end)."),
    max_predict_samples: Optional[int] = typer.Option(None, "--max-predict-samples", help="Smoke runs: predict and score the first N test rows only."),
    early_stopping_patience: Optional[int] = typer.Option(None, "--early-stopping-patience", help="Stop when the --metric-for-best-model has not improved for N evaluations (one per epoch, or every --save-steps); the best checkpoint is kept. Needs validation data."),
    early_stopping_threshold: Optional[float] = typer.Option(None, "--early-stopping-threshold", help="With --early-stopping-patience: the least improvement that counts (default 0)."),
    label_names: Optional[str] = typer.Option(None, "--label-names", help="Text classification with integer labels 0..n-1: the class names in id order, comma-separated (negative,positive), or a file with one name per line."),
    # -- end of issue 13 block ---------------------------------------------------------------------
    finetuning_type: Optional[str] = typer.Option(None, "--finetuning-type", help="lora (low-rank adapters on the frozen model; registers a small adapter version) or full (every weight trains). Default from the model card, else the task (lora for chat), else full."),
    lora_r: Optional[int] = typer.Option(None, "--lora-r", help="LoRA rank (default from the model card, else the task, else 16)."),
    lora_alpha: Optional[float] = typer.Option(None, "--lora-alpha", help="LoRA scaling numerator: updates are scaled by alpha/r (default from the model card, else the task, else 32)."),
    lora_dropout: Optional[float] = typer.Option(None, "--lora-dropout", help="Dropout on the LoRA input, 0 to < 1 (default from the model card, else the task, else 0.05)."),
    lora_target_modules: Optional[str] = typer.Option(None, "--lora-target-modules", help="Comma-separated module names the adapters wrap, e.g. q_proj,v_proj (default from the model card, else the task, else all-linear: every linear layer but the output head)."),
    quantization_bit: Optional[int] = typer.Option(None, "--quantization-bit", help="4: QLoRA, the frozen base in 4-bit NF4 (needs --finetuning-type lora, a CUDA GPU and bitsandbytes). Default: no quantisation."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing", help="Recompute activations in the backward pass: less memory, about 30% more compute (default off)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="auto (default: bf16 autocast where the CPU has native bf16 - AVX512-BF16 or AMX - or the GPU supports bf16; else fp32), fp32 or bf16. Autocast keeps fp32 master weights; the job log says which was used and why."),
    merge: bool = typer.Option(False, "--merge", help="LoRA: register the merged full model instead of the adapter (default: the adapter, a few MB that loads on its base)."),
    group_by: Optional[str] = typer.Option(None, "--group-by", help="COLUMN of the data files: test metrics per value of that column as well as overall (default: overall only)."),
    no_zero_shot: bool = typer.Option(False, "--no-zero-shot", help="Chat: skip evaluating the base model zero-shot on the test data beside the fine-tuned one (default: evaluated, when there is test data)."),
    registered_model_name: Optional[str] = typer.Option(None, "--registered-model-name", "--output-model", help="Workspace name for the result (default <model>-<task>)."),
    no_register: bool = typer.Option(False, "--no-register", help="Do not register the fine-tuned model."),
    device: Optional[str] = typer.Option(None, "--device", help="auto (GPU when present; default), cpu, cuda or cuda:N."),
    compute: Optional[str] = typer.Option(None, "--compute", help=COMPUTE_HELP),
    num_workers: Optional[int] = typer.Option(None, "--num-workers", help=NUM_WORKERS_HELP),
    num_cpus: Optional[float] = typer.Option(None, "--num-cpus", help=NUM_CPUS_HELP),
    num_gpus: Optional[float] = typer.Option(None, "--num-gpus", help=NUM_GPUS_HELP),
    resource: Optional[list[str]] = typer.Option(None, "--resource", help=RESOURCE_HELP),
    max_failures: Optional[int] = typer.Option(None, "--max-failures", help=MAX_FAILURES_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate data and mapping, print the report, do not train."),
    submit_job: bool = typer.Option(False, "--submit", help=SUBMIT_HELP),
    url: Optional[str] = typer.Option(None, "--url", envvar="FMHUB_URL", help="fmhub server for --submit (default FMHUB_URL, else http://127.0.0.1:8000)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fine-tune a model on your data file, evaluate it and register the result.

    The data is read, mapped and checked first; nothing trains while the report has errors.
    Example: fmhub finetune --model all-MiniLM-L6-v2 --task TASK --train train.csv (TASK: see --task)
    """
    quiet_libraries()
    flags = dict(locals())
    spec = build_finetune_spec(job_file, flags)
    if submit_job and not dry_run:
        submit("finetune", spec, url, as_json)
        return
    from fmhub.services.finetune import run_finetune

    console = err if as_json else out
    bar = ProgressBar(err)

    def on_report(report: Any) -> None:
        print_report(console, report, show_errors=False)  # the error message lists them

    if spec.compute != "local" and not dry_run:  # a cluster job is queued for it, never run here
        from fmhub.services.finetune import submit_finetune

        job, _ = submit_finetune(context(), spec, on_report=on_report)
        if as_json:
            print_json(job.model_dump(mode="json"))
        else:
            print_queued_on_cluster(job)
        return

    try:
        result = run_finetune(context(), spec, sink=bar, on_report=on_report, dry_run=dry_run)
    finally:
        bar.close()
    if as_json:
        print_json(result.to_dict())
        return
    if result.dry_run:
        out.print("[green]data and mapping are valid[/] (dry run: nothing trained)")
        return
    print_metrics(out, {k: v for k, v in result.metrics.items() if isinstance(v, dict)})
    print_group_comparison(out, result.metrics)
    out.print(f"job [bold]{result.job.id}[/] {result.job.status.value}; "
              f"{result.train.get('samples_per_s')} samples/s on {result.train.get('device')}", highlight=False)
    if result.model_version:
        out.print(f"registered [bold]{result.model_version.ref}[/]  (try: fmhub predict "
                  f"{result.model_version.ref} --text \"...\")", highlight=False)
    for text in result.warnings:  # e.g. one class only: registered all the same
        out.print(f"[yellow]warning:[/] {text}", highlight=False)
