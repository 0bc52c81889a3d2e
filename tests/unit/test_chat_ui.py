"""The pages of chat fine-tuning, in-process: the LoRA fields of the parameters step, conversations
in the mapping preview, per-group metrics side by side, a fine-tune beside its base model's zero-shot
metrics, sample generations on the job page, and an adapter version's model page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from local_client import local_client

from fmhub.entities import JobStatus, ModelVersion
from fmhub.evaluation.compare import per_group_metrics, zero_shot_comparison
from fmhub.services.finetune_options import hyperparameter_fields, list_hyperparameters
from fmhub.services.generation_samples import generation_sample, sample_generations

CONVERSATION = [{"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "Summarise: the meeting moved to Friday."},
                {"role": "assistant", "content": "Meeting on Friday.", "weight": 0},
                {"role": "user", "content": "Translate to German: good morning"}]
ZERO_SHOT = {"rougeL": 0.20, "bleu": 5.0, "loss": 2.5, "n": 4,
             "groups": {"dialogsum": {"rougeL": 0.25, "n": 2}, "multi30k": {"rougeL": 0.15, "n": 2}}}
TUNED = {"rougeL": 0.40, "bleu": 12.5, "loss": 1.5, "n": 4,
         "groups": {"dialogsum": {"rougeL": 0.45, "n": 2}, "multi30k": {"rougeL": 0.10, "n": 2}}}


@pytest.fixture()
def app_client(ctx):
    from fmhub.api.app import create_app

    with local_client(create_app(ctx, serve_endpoints=False), raise_server_exceptions=False) as client:
        yield client


# -- the parameters step -----------------------------------------------------------------------------

def test_lora_fields_carry_their_defaults_and_kinds():
    fields = {f["name"]: f for f in hyperparameter_fields("summarization")}
    assert fields["finetuning_type"]["kind"] == "choice" and fields["finetuning_type"]["choices"] == ["full", "lora"]
    assert fields["finetuning_type"]["default"] == "full" and not fields["lora_r"]["lora_default"]
    # a full fine-tune's task still shows what a LoRA run would use
    assert (fields["lora_r"]["default"], fields["lora_alpha"]["default"], fields["lora_dropout"]["default"]) == (
        16, 32.0, 0.05)
    assert fields["lora_target_modules"]["kind"] == "list"
    assert fields["lora_target_modules"]["default_text"] == "all-linear"
    assert fields["gradient_checkpointing"]["choices"] == ["true", "false"]
    assert all(fields[n]["method"] for n in ("finetuning_type", "lora_r", "lora_alpha", "lora_dropout",
                                             "lora_target_modules"))
    assert list_hyperparameters() == ("lora_target_modules",)
    card = {"finetuning_type": "lora", "lora_r": 8, "lora_target_modules": ["q_proj", "v_proj"]}
    carded = {f["name"]: f for f in hyperparameter_fields("summarization", card)}
    assert carded["lora_r"]["default"] == 8 and carded["lora_r"]["lora_default"]
    assert carded["lora_target_modules"]["default_text"] == "q_proj, v_proj"


def test_parameters_step_shows_the_method_fields(app_client):
    page = app_client.get("/ui/models/SmolLM2-135M-Instruct/finetune/parameters?task=summarization")
    assert page.status_code == 200, page.text
    text = page.text
    method = text[text.index('id="hp-method"'):text.index("</fieldset>", text.index('id="hp-method"'))]
    for name in ("finetuning_type", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules"):
        assert f'name="hyperparameters.{name}"' in method
    assert 'data-lora-default="false"' in method
    assert text.index('id="hp-method"') > text.index('class="advanced"')  # full by default: under Advanced
    assert re.search(r'id="hp-lora-target-modules" name="hyperparameters.lora_target_modules" type="text"', text)
    assert 'placeholder="all-linear"' in text and "Default: <code>16</code> (with <code>finetuning_type</code> lora)" in text
    assert re.search(r'<select id="hp-gradient-checkpointing"[^>]*>\s*<option value="">default \(false\)', text)


def test_the_form_reads_target_modules_comma_separated():
    from fmhub.ui.finetune_form import build_finetune_spec, spec_yaml

    spec = build_finetune_spec(parse_qs(
        "model=m&task=summarization&data.train=t.jsonl&hyperparameters.finetuning_type=lora"
        "&hyperparameters.lora_r=8&hyperparameters.lora_target_modules=q_proj,+v_proj,&hyperparameters.lora_alpha="
        "&hyperparameters.gradient_checkpointing=true", keep_blank_values=True))
    hp = spec.hyperparameters
    assert (hp.finetuning_type, hp.lora_r, hp.lora_target_modules, hp.lora_alpha) == ("lora", 8, ["q_proj", "v_proj"],
                                                                                       None)
    assert hp.gradient_checkpointing is True
    assert "- q_proj" in spec_yaml(spec)


def test_chat_parameters_train_lora_by_default_and_offer_merge_and_zero_shot(app_client):
    text = app_client.get("/ui/models/SmolLM2-135M-Instruct/finetune/parameters?task=chat-completion").text
    method = text.index('id="hp-method"')
    assert 'data-lora-default="true"' in text and method < text.index('class="advanced"')  # beside the main ones
    assert '<option value="">default (lora)</option>' in text
    assert 'id="merge-adapter" name="merge_adapter" value="true"' in text and 'name="zero_shot" value="true" checked' in text
    plain = app_client.get("/ui/models/SmolLM2-135M-Instruct/finetune/parameters?task=summarization").text
    assert 'name="zero_shot"' not in plain  # a summarization fine-tune scores no zero-shot baseline
    page = app_client.get("/ui/models/SmolLM2-135M-Instruct/finetune")
    assert re.search(r'class="task-choice" name="task" value="chat-completion" required checked', page.text)


def test_the_form_reads_merge_zero_shot_and_group_by():
    from fmhub.ui.evaluate_form import cli_command
    from fmhub.ui.finetune_form import build_finetune_spec, spec_document
    from fmhub.services.specs import EvaluateSpec

    base = ("model=m&task=chat-completion&data.train=t.jsonl&data.group_by=source&register_model=false"
            "&register_model=true")
    spec = build_finetune_spec(parse_qs(base + "&merge_adapter=false&merge_adapter=true&zero_shot=false",
                                        keep_blank_values=True))
    assert (spec.merge_adapter, spec.zero_shot, spec.data.group_by) == (True, False, "source")
    plain = build_finetune_spec(parse_qs(base + "&merge_adapter=false&zero_shot=false&zero_shot=true",
                                         keep_blank_values=True))
    assert (plain.merge_adapter, plain.zero_shot) == (False, True)
    assert "merge_adapter" not in spec_document(plain) and "zero_shot" not in spec_document(plain)  # defaults
    evaluate = EvaluateSpec.model_validate({"model": "chat:1", "data": {"test": "t.jsonl", "group_by": "source"}})
    assert "--group-by source" in cli_command([evaluate])


def test_mapping_step_offers_a_group_column_and_reads_messages(ctx, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the app's default data root: the folder it was started from
    from fmhub.api.app import create_app

    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(json.dumps({"messages": CONVERSATION + [{"role": "assistant", "content": "Guten Morgen"}],
                                          "source": s}) for s in ("a", "b", "a")) + "\n", encoding="utf-8")
    form = {"wizard.source": "data.train", "wizard.part": "mapping", "task": "chat-completion", "data.train": str(path)}
    with local_client(create_app(ctx, serve_endpoints=False)) as client:
        page = client.post("/ui/wizard/mapping", data={**form, "data.group_by": "source"})
        assert page.status_code == 200, page.text
        assert '<option value="source" selected>by source</option>' in page.text
        assert '<option value="messages" selected>messages</option>' in page.text and 'data-turns="5"' in page.text
        assert 'class="alert ok report-ok"' in page.text
        fresh = client.post("/ui/wizard/mapping", data={**form, "wizard.reset": "1", "data.group_by": "gone"})
        assert fresh.status_code == 200 and '<option value="" selected>overall only</option>' in fresh.text
        missing = client.post("/ui/wizard/mapping", data={**form, "wizard.part": "report", "data.group_by": "gone"})
        assert "gone" in missing.text and "is not in" in missing.text


# -- the mapping step --------------------------------------------------------------------------------

def test_a_conversation_cell_shows_its_turns():
    from fmhub.ui.templating import templates

    cell = templates.env.from_string('{% import "wizard_macros.html" as w %}{{ w.cell(v) }}')
    html = cell.render(v=CONVERSATION)
    assert 'data-turns="4"' in html and "4 messages: 2 user, 1 assistant, system" in html
    assert re.findall(r'data-role="(\w+)"', html) == ["system", "user", "assistant", "user"]
    assert 'class="turn role-assistant unweighted"' in html and "weight 0" in html
    assert "<code>" not in html  # not a raw JSON list
    assert "<code>[1, 2]</code>" in cell.render(v=[1, 2])  # other lists stay JSON
    long = cell.render(v=[{"role": "user", "content": f"m{i}"} for i in range(12)])
    assert long.count('class="turn ') == 8 and "4 more" in long


# -- comparisons ---------------------------------------------------------------------------------------

def test_per_group_metrics_side_by_side_mark_the_best():
    results = [{"job_id": "a", "task": "t", "test": ZERO_SHOT}, {"job_id": "b", "task": "t", "test": TUNED},
               {"job_id": "c", "task": "t", "test": None}]
    pg = per_group_metrics(results)
    assert pg["groups"] == ["dialogsum", "multi30k"] and pg["metrics"] == ["rougeL"]
    assert pg["values"]["multi30k"]["rougeL"] == {"a": 0.15, "b": 0.10}
    assert pg["best"]["dialogsum"]["rougeL"] == ["b"] and pg["best"]["multi30k"]["rougeL"] == ["a"]
    assert pg["n"]["dialogsum"] == {"a": 2, "b": 2}
    assert per_group_metrics([{"job_id": "a", "task": "t", "test": {"rougeL": 0.1}}]) is None


def test_zero_shot_comparison_overall_and_per_group():
    assert zero_shot_comparison({"test": TUNED}) is None and zero_shot_comparison(None) is None
    zs = zero_shot_comparison({"validation": {"loss": 1.4}, "test": TUNED, "test_zero_shot": ZERO_SHOT})
    rows = {r["metric"]: r for r in zs["rows"]}
    assert list(rows) == ["rougeL", "bleu", "loss"] and zs["n"] == 4
    assert rows["rougeL"]["delta"] == pytest.approx(0.20) and rows["rougeL"]["better"] is True
    assert rows["loss"]["delta"] == pytest.approx(-1.0) and rows["loss"]["better"] is True  # lower loss is better
    groups = {g["group"]: {r["metric"]: r for r in g["rows"]} for g in zs["groups"]}
    assert groups["multi30k"]["rougeL"]["better"] is False and groups["dialogsum"]["rougeL"]["better"] is True
    one_sided = zero_shot_comparison({"test": {"rougeL": 0.3}, "test_zero_shot": {"bleu": 1.0}})
    assert {r["metric"]: r["delta"] for r in one_sided["rows"]} == {"bleu": None, "rougeL": None}


def _evaluate_job(ctx, model, metrics):
    from fmhub.services import jobs

    job = jobs.new_job(ctx, "evaluate", {"model": model, "task": "summarization", "data": {"test": "t.jsonl"}})
    jobs.mark(ctx, job, JobStatus.running)
    return jobs.mark(ctx, job, JobStatus.completed, outputs={"model": model, "metrics": {"test": metrics}})


def test_comparison_page_lists_groups_side_by_side(app_client, ctx):
    base, tuned = _evaluate_job(ctx, "SmolLM2-135M-Instruct", ZERO_SHOT), _evaluate_job(ctx, "chat:1", TUNED)
    body = app_client.get(f"/api/v1/evaluations?jobs={base.id},{tuned.id}").json()
    assert body["per_group"]["groups"] == ["dialogsum", "multi30k"]
    text = app_client.get(f"/ui/evaluations?jobs={base.id},{tuned.id}").text
    assert 'id="per-group-table"' in text
    row = re.search(r'<tr data-group="multi30k" data-metric="rougeL">(.*?)</tr>', text, re.S).group(1)
    cells = re.findall(r"<td[^>]*>.*?</td>", row, re.S)
    assert "data-best" in cells[0] and "0.1500" in cells[0] and "data-best" not in cells[1]
    assert "2 rows" in text


# -- the job page --------------------------------------------------------------------------------------

def _finetune_job(ctx, metrics, predictions=None, zero_shot=None):
    from fmhub.services import jobs

    job = jobs.new_job(ctx, "finetune", {"model": "SmolLM2-135M-Instruct", "task": "summarization",
                                         "data": {"train": "train.jsonl"}})
    for name, rows in (("predictions-test.jsonl", predictions), ("predictions-test_zero_shot.jsonl", zero_shot)):
        if rows is not None:
            lines = [json.dumps(p) for p in rows]
            (Path(job.folder) / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    jobs.mark(ctx, job, JobStatus.running)
    return jobs.mark(ctx, job, JobStatus.completed, outputs={"registered_model": None, "metrics": metrics})


PREDICTIONS = [
    {"line": 3, "input": CONVERSATION, "reference": "Guten Morgen", "group": "multi30k",
     "prediction": {"generated_text": "Guten Morgen!", "finish_reason": "stop", "truncated": False}},
    {"line": 4, "input": [{"role": "user", "content": "Say <b>hi</b>"}, {"role": "assistant", "content": "hi"}],
     "reference": ["hi", "hello"], "prediction": {"generated_text": "hi there", "finish_reason": "length"}},
    {"line": 5, "input": "a long document", "reference": "short", "prediction": {"generated_text": "brief"}},
]


def test_sample_generations_read_the_first_rows(ctx):
    job = _finetune_job(ctx, {"test": TUNED}, PREDICTIONS)
    samples = sample_generations(ctx, job, limit=2)
    assert [s["line"] for s in samples] == [3, 4]
    first, second = samples
    assert first["prompt"] == "Translate to German: good morning" and first["system"] == "Answer briefly."
    assert first["turns"] == 4 and first["generated"] == "Guten Morgen!" and first["finish_reason"] == "stop"
    assert first["group"] == "multi30k" and second["group"] is None
    assert second["prompt"] == "Say <b>hi</b>" and second["turns"] == 1  # the final reply is the reference
    assert second["reference"] == "hi | hello" and second["finish_reason"] == "length"
    assert generation_sample(PREDICTIONS[2])["prompt"] == "a long document"
    # labels are not generations: a classification job shows none
    assert generation_sample({"line": 1, "input": "x", "prediction": {"label": "pos", "score": 0.9},
                              "reference": "pos"}) is None
    labels = _finetune_job(ctx, {"test": TUNED}, [{"line": 1, "input": "x", "prediction": {"label": "pos"},
                                                   "reference": "pos"}])
    assert sample_generations(ctx, labels) == []
    assert all(s["zero_shot"] is None for s in samples)  # no zero-shot predictions written
    assert sample_generations(ctx, _finetune_job(ctx, {"test": TUNED})) == []  # no predictions file


def test_job_page_shows_zero_shot_beside_fine_tuned_and_samples(app_client, ctx):
    base = [{**p, "prediction": {"generated_text": f"base says {p['line']}" if p["line"] != 4 else ""}}
            for p in PREDICTIONS]
    job = _finetune_job(ctx, {"test": TUNED, "test_zero_shot": ZERO_SHOT}, PREDICTIONS, zero_shot=base)
    assert [s["zero_shot"] for s in sample_generations(ctx, job)] == ["base says 3", "", "base says 5"]
    text = app_client.get(f"/ui/jobs/{job.id}").text
    assert 'id="base-vs-finetuned"' in text and 'href="/ui/models/SmolLM2-135M-Instruct"' in text
    row = re.search(r'<tr data-metric="rougeL"><th scope="row">rougeL</th>(.*?)</tr>', text, re.S).group(1)
    assert "0.2000" in row and "0.4000" in row and 'data-better="true"' in row and "+0.2000" in row
    group = re.search(r'<tbody data-group="multi30k">(.*?)</tbody>', text, re.S).group(1)
    assert 'data-better="false"' in group and "-0.0500" in group and "(2 rows)" in group
    samples = text[text.index('id="sample-generations"'):]
    assert samples.count('class="sample"') == 3 and "Guten Morgen!" in samples
    assert "Say &lt;b&gt;hi&lt;/b&gt;" in samples and "<b>hi</b>" not in samples
    assert 'title="finish reason">length' in samples and 'title="group">multi30k' in samples
    assert '<pre class="sample-zero-shot">base says 3</pre>' in samples
    assert '<p class="muted small sample-zero-shot">nothing generated</p>' in samples
    summary = app_client.get(f"/ui/jobs/{job.id}/summary").text  # the fragment refreshed on status change
    assert 'id="sample-generations"' in summary and 'id="zs-groups-table"' in summary
    plain = _finetune_job(ctx, {"test": TUNED})
    text = app_client.get(f"/ui/jobs/{plain.id}").text
    assert 'id="base-vs-finetuned"' not in text and 'id="sample-generations"' not in text


# -- the model page of an adapter ---------------------------------------------------------------------

def test_adapter_version_page_names_and_links_its_base(app_client, ctx):
    from fmhub.store import models_repo

    lineage = {"adapter": True, "base_model": "SmolLM2-135M-Instruct", "adapter_base_model": "SmolLM2-135M-Instruct",
               "job_id": "j1",
               "hyperparameters": {"finetuning_type": "lora", "lora_r": 16, "lora_alpha": 32.0,
                                   "lora_target_modules": ["all-linear"]}}
    models_repo.add_version(ctx.db_url, ModelVersion(
        name="chat", version=1, task="summarization", path="/nowhere/chat", base_model="SmolLM2-135M-Instruct",
        lineage=lineage, metrics={"test": TUNED, "test_zero_shot": ZERO_SHOT}))
    models_repo.add_version(ctx.db_url, ModelVersion(name="full", version=1, task="summarization",
                                                     path="/nowhere/full", base_model="SmolLM2-135M-Instruct",
                                                     lineage={"base_model": "SmolLM2-135M-Instruct"}))
    text = app_client.get("/ui/models/chat:1").text
    notice = re.search(r'<div class="alert ok small" id="adapter-notice"(.*?)</div>', text, re.S).group(1)
    assert 'id="adapter-base" href="/ui/models/SmolLM2-135M-Instruct"' in notice
    assert "LoRA adapter" in notice and "rank 16, alpha 32.0, on all-linear" in notice
    assert 'id="base-vs-finetuned"' in text and 'id="zs-groups-table"' in text
    assert re.search(r'<th scope="col" class="num">test_zero_shot</th>', text)  # the metrics table too
    other = app_client.get("/ui/models/full:1").text
    assert 'id="adapter-notice"' not in other and 'id="lineage-base"' in other


# -- a real (tiny) chat fine-tune -----------------------------------------------------------------------

def test_pages_of_a_tiny_chat_fine_tune(app_client, ctx, tmp_path):
    from tiny_chat import build_tiny_chat_llama, chat_files

    from fmhub.services.finetune import run_finetune
    from fmhub.services.models import import_model
    from fmhub.services.specs import FinetuneSpec

    import_model(ctx, build_tiny_chat_llama(tmp_path / "model"), name="tiny-chat", task="chat-completion")
    spec = FinetuneSpec(model="tiny-chat:1", task="chat-completion",
                        data={**chat_files(tmp_path), "group_by": "source"},
                        hyperparameters={"max_steps": 1, "lora_r": 4, "max_seq_length": 128,
                                         "per_device_train_batch_size": 4},
                        generation={"max_new_tokens": 3}, registered_model_name="tiny-chat-ft", device="cpu")
    result = run_finetune(ctx, spec)
    job = app_client.get(f"/ui/jobs/{result.job.id}").text
    assert 'id="zs-groups-table"' in job and 'href="/ui/models/tiny-chat:1"' in job
    samples = job[job.index('id="sample-generations"'):]
    assert samples.count('class="sample"') == 5 and "sample-zero-shot" in samples and 'title="group">' in samples
    model = app_client.get("/ui/models/tiny-chat-ft:1").text
    assert 'id="adapter-base" href="/ui/models/tiny-chat:1"' in model and 'id="base-vs-finetuned"' in model
    link = re.search(r'id="compare-with-base" href="([^"]+)"', model).group(1).replace("&amp;", "&")
    assert link == "/ui/evaluate?model=tiny-chat-ft%3A1&model=tiny-chat%3A1"
    wizard = app_client.get(link).text
    ticked = re.findall(r'name="model" value="([^"]+)"[^>]*checked', wizard)
    assert sorted(ticked) == ["tiny-chat-ft:1", "tiny-chat:1"]
