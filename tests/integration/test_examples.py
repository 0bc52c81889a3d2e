"""The samples in ``examples/``: every task's notebook runs top to bottom against a real ``fmhub serve``
(tiny random models and tiny data files instead of the real ones), and every ``run.sh`` is valid bash.

Each notebook is executed with nbclient after its ``parameters`` cell is replaced by test values
(server URL, tiny model, tiny data, a few training steps, a unique registered model name); the job it
created must have completed and registered a model that the server knows, and the last cell must
print predictions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, build_tiny_bert
from server_process import running_server
from tiny_chat import build_tiny_chat_llama, chat_files
from tiny_tasks import DATA_FILES, build_tiny_b2b as _build_tiny_b2b, text_classification_files

pytestmark = pytest.mark.integration

EXAMPLES = REPO / "examples"
TASKS = ("text-classification", "token-classification", "question-answering", "summarization", "translation",
         "chat-completion")
CHAT = "chat-completion"
SEQ2SEQ = ("summarization", "translation")

#: A few optimizer steps on small batches; sequences short enough for the tiny models' 64 positions.
HYPERPARAMETERS = {"max_steps": 4, "per_device_train_batch_size": 4, "per_device_eval_batch_size": 8,
                   "max_seq_length": 48}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import fmhub

    root = tmp_path_factory.mktemp("examples")
    tiny_bert = build_tiny_bert(root / "tiny-bert")
    tiny_b2b = _build_tiny_b2b(tiny_bert, root / "tiny-b2b")
    tiny_chat = build_tiny_chat_llama(root / "tiny-chat")
    with running_server(root / "home") as server:
        client = fmhub.Client(url=server.url)
        jobs = [client.models.import_(tiny_bert, name="tiny-bert", task="text-classification"),
                client.models.import_(tiny_b2b, name="tiny-b2b", task="summarization"),
                client.models.import_(tiny_chat, name="tiny-chat", task=CHAT)]
        for job in jobs:
            done = client.jobs.wait(job.id, timeout_s=120, poll_s=0.3)
            assert done.status.value == "completed", done.error
        yield server, client, root
        client.close()


def _parameters(task: str, url: str, data: dict, name: str) -> str:
    model = "tiny-b2b:1" if task in SEQ2SEQ else "tiny-chat:1" if task == CHAT else "tiny-bert:1"
    hyperparameters = dict(HYPERPARAMETERS)
    if task == "question-answering":
        hyperparameters["doc_stride"] = 16
    return "\n".join([f"URL = {url!r}", f"TASK = {task!r}", f"MODEL = {model!r}", f"DATA = {data!r}",
                      f"HYPERPARAMETERS = {hyperparameters!r}", f"REGISTERED_MODEL_NAME = {name!r}"])


def _run_notebook(path: Path, parameters: str, cwd: Path):
    import nbclient
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code", f"{path}: one code cell tagged 'parameters'"
    tagged[0].source = parameters
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, str(cwd / "executed.ipynb"))  # kept with the test's tmp folder, to read on failure
    return nb


def _text_outputs(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


# --- tests ---------------------------------------------------------------------------------------

def test_notebooks_are_stored_without_outputs_and_have_one_parameters_cell():
    import nbformat

    for task in TASKS:
        nb = nbformat.read(str(EXAMPLES / task / "notebook.ipynb"), as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "python3"
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), task
        params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and params[0] is code[0], task
        # the defaults point at the shared data, relative to the notebook, as job.yaml does
        namespace: dict = {}
        exec(params[0].source, namespace)  # noqa: S102 - our own file
        job = yaml.safe_load((EXAMPLES / task / "job.yaml").read_text(encoding="utf-8"))
        assert namespace["MODEL"] == job["model"] and namespace["TASK"] == job["task"] == task
        assert namespace["DATA"] == job["data"] and namespace["HYPERPARAMETERS"] == job["hyperparameters"]
        assert all((EXAMPLES / task / namespace["DATA"][k]).is_file() for k in ("train", "validation", "test"))


def test_notebooks_are_what_the_generator_writes():
    import importlib.util

    import nbformat

    spec = importlib.util.spec_from_file_location("make_notebooks", EXAMPLES / "make_notebooks.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert set(generator.TASKS) == set(TASKS)
    for task in TASKS:
        stored = nbformat.read(str(EXAMPLES / task / "notebook.ipynb"), as_version=4)
        assert stored == generator.build(task), f"run: python examples/make_notebooks.py ({task} is stale)"


def test_run_scripts_are_valid_bash():
    for task in TASKS:
        script = EXAMPLES / task / "run.sh"
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script}: {result.stderr}"
        text = script.read_text(encoding="utf-8")
        assert "set -euo pipefail" in text and "fmhub serve" in text and "--submit --json" in text


@pytest.mark.parametrize("task", TASKS)
def test_notebook_runs_against_a_server(served, task, tmp_path):
    server, client, _ = served
    data = chat_files(tmp_path) if task == CHAT else DATA_FILES[task](tmp_path)
    name = f"notebook-{task}"
    nb = _run_notebook(EXAMPLES / task / "notebook.ipynb", _parameters(task, server.url, data, name), tmp_path)

    jobs = [j for j in client.jobs.list(kind="finetune") if j.spec.get("registered_model_name") == name]
    assert len(jobs) == 1
    job = jobs[0]
    assert job.status.value == "completed", job.error
    assert job.spec["task"] == task and job.outputs["registered_model"] == f"{name}:1"
    # A chat fine-tune also scores its base model, zero-shot, on the same test rows.
    assert set(job.outputs["metrics"]) == {"validation", "test"} | ({"test_zero_shot"} if task == CHAT else set())
    shown = client.models.get(f"{name}:1")
    assert shown["version"]["lineage"]["job_id"] == job.id

    follow = _text_outputs(nb.cells[[i for i, c in enumerate(nb.cells) if "client.jobs.follow" in c.source][0]])
    assert "step 1/4" in follow and "step 4/4" in follow, follow
    predict_cell = next(c for c in nb.cells if "client.models.predict" in c.source)
    result = json.loads(_text_outputs(predict_cell))
    assert result["model"] == f"{name}:1" and result["task"] == task
    assert len(result["predictions"]) >= 1
    deployed = _text_outputs(nb.cells[-1])  # deploy -> score -> delete
    scored, _ = json.JSONDecoder().raw_decode(deployed[deployed.index("{"):])
    assert f"deleted: {name.lower()}" in deployed
    assert scored["deployment"] == "blue" and scored["model"] == f"{name}:1"
    assert len(scored["predictions"]) == len(result["predictions"])
    assert all(e["name"] != name.lower() for e in client.endpoints.list())  # deleted again


def test_run_script_against_a_server(served, tmp_path):
    """text-classification/run.sh, copied next to a tiny job.yaml: submit, wait, show, predict."""
    server, client, root = served
    folder = tmp_path / "sample"
    folder.mkdir()
    (folder / "run.sh").write_text((EXAMPLES / "text-classification" / "run.sh").read_text(encoding="utf-8"))
    data = text_classification_files(tmp_path)
    job = {"model": "tiny-bert:1", "task": "text-classification", "data": data, "hyperparameters": HYPERPARAMETERS,
           "registered_model_name": "script-model", "device": "cpu"}
    (folder / "job.yaml").write_text(yaml.safe_dump(job), encoding="utf-8")
    # A home of its own: every step, the prediction included, goes through the server.
    env = {**os.environ, "FMHUB_URL": server.url, "FMHUB_HOME": str(tmp_path / "client-home"), "HF_HUB_OFFLINE": "1",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run(["bash", str(folder / "run.sh")], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert client.models.get("script-model:1")["version"]["task"] == "text-classification"
    assert not (tmp_path / "client-home" / "artifacts").exists()
    predicted = [line for line in result.stdout.splitlines() if line.endswith("a gorgeous, witty film")]
    assert predicted and re.match(r"[01] \(0\.\d+\), [01] \(0\.\d+\)", predicted[0]), result.stdout
