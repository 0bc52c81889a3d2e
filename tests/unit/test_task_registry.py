"""Every registered task has the same shape: schema, metrics, defaults, docs and an example job."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fmhub.services.specs import FinetuneSpec
from fmhub.tasks import get_task, task_names
from fmhub.tasks.base import Task

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_registry_lists_the_tasks():
    assert task_names() == ["text-classification", "token-classification", "question-answering",
                            "summarization", "translation", "chat-completion"]


@pytest.mark.parametrize("name", task_names())
def test_each_task_is_complete(name):
    task = get_task(name)
    assert isinstance(task, Task) and task.name == name
    # A task with alternative layouts (chat: messages, or prompt + completion) requires no one key.
    assert (task.schema.required or task.schema.optional) and set(task.schema.required) <= set(task.schema.keys)
    assert task.metric_for_best_model in (*task.metric_names, "loss")
    for key in ("learning_rate", "num_train_epochs", "per_device_train_batch_size", "max_seq_length"):
        assert key in task.default_hyperparameters
    assert type(task).__doc__ and type(task).__module__ and __import__(type(task).__module__, fromlist=["x"]).__doc__
    job = EXAMPLES / name / "job.yaml"
    spec = FinetuneSpec.model_validate(yaml.safe_load(job.read_text(encoding="utf-8")))
    assert spec.task == name
    assert set(spec.data.column_mapping) <= set(task.schema.keys)


# -- the facts each task owns ----------------------------------------------------------------------

HEADLINES = {"text-classification": "f1_macro", "token-classification": "f1", "question-answering": "f1",
             "summarization": "rougeL", "translation": "bleu", "chat-completion": "rougeL"}


@pytest.mark.parametrize("name", task_names())
def test_each_task_states_its_facts(name):
    task = get_task(name)
    assert task.headline_metric == HEADLINES[name]
    file, holds = task.sample_train_file
    assert file.startswith("train.") and holds
    assert task.labelled_head == (name in ("text-classification", "token-classification"))
    assert task.label_type_option == (name == "text-classification")
    assert task.encode_response([], []) == []


@pytest.mark.parametrize("name", task_names())
def test_each_task_encodes_its_response_example(name):
    """The documented response example is what :meth:`encode_response` makes of a prediction."""
    task = get_task(name)
    expected = task.score_response_example[0]
    if name == "text-classification":
        raw = [[{"label": expected["label"], "score": expected["score"]}]]
    elif name == "question-answering":
        raw = [{**{k: expected[k] for k in ("answer", "score", "start", "end")}, "windows": 1}]
    else:
        raw = [{k: v for k, v in expected.items() if k != "truncated"}]
    assert task.encode_response(raw, [False]) == [expected]


def test_text_classification_response_rounds_scores_and_lists_top_k():
    task = get_task("text-classification")
    raw = [[{"label": "pos", "score": 0.123456789}, {"label": "neg", "score": 0.0123}]]
    assert task.encode_response(raw, [True]) == [
        {"label": "pos", "score": 0.123457, "truncated": True,
         "top_k": [{"label": "pos", "score": 0.123457}, {"label": "neg", "score": 0.0123}]}]


def test_question_answering_is_truncated_when_its_context_needed_windows():
    task = get_task("question-answering")
    raw = [{"answer": "x", "score": 0.5, "start": 0, "end": 1, "windows": 3}]
    assert task.encode_response(raw, [False])[0]["truncated"] is True


def test_text_classification_counts_tokens_for_truncation_others_do_not():
    def tokenizer(first, second=None):  # one token per word, pairs counted together
        return {"input_ids": [a.split() + (b.split() if second else []) for a, b in zip(first, second or first)]}

    inputs = ["one two three", ["one two", "three four"], "one"]
    assert get_task("text-classification").truncated_flags(tokenizer, inputs, 2) == [True, True, False]
    assert get_task("summarization").truncated_flags(tokenizer, inputs, 2) == [False, False, False]


def test_hugging_face_objects_are_inputs_of_their_task_only():
    assert get_task("question-answering").hf_object_input({"question": "q", "context": "c"}) == {
        "question": "q", "context": "c"}
    assert get_task("text-classification").hf_object_input({"text": "a", "text_pair": "b"}) == ["a", "b"]
    assert get_task("text-classification").hf_object_input({"text": "a"}) == "a"
    assert get_task("summarization").hf_object_input({"text": "a"}) is None


@pytest.mark.parametrize("labels, problem", [
    ({"0": "LABEL_0", "1": "LABEL_1"}, "its text-classification head was never trained (its labels are LABEL_0, LABEL_1)"),
    ({}, "its text-classification head was never trained (it has no label names)"),
    ({"0": "neg", "1": "pos"}, None),
])
def test_the_trained_head_check_reads_the_config(tmp_path, labels, problem):
    import json

    (tmp_path / "config.json").write_text(json.dumps({"id2label": labels}), encoding="utf-8")
    message = get_task("text-classification").head_problem(tmp_path)
    assert message == (problem and problem + ": fine-tune it first")
    assert get_task("summarization").head_problem(tmp_path) is None  # no label head to train


def test_an_untrained_head_is_refused_naming_the_model():
    from types import SimpleNamespace

    from fmhub.errors import SpecError

    model = SimpleNamespace(config=SimpleNamespace(id2label={0: "LABEL_0", 1: "LABEL_1"}))
    with pytest.raises(SpecError, match="model 'm:1' has no trained token-classification head"):
        get_task("token-classification").require_trained_head(model, "m:1")
    get_task("translation").require_trained_head(model, "m:1")  # nothing to check
