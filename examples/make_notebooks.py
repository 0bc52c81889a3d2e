"""Write ``examples/<task>/notebook.ipynb`` for every task, from that folder's ``job.yaml``.

Each notebook drives a running ``fmhub serve`` through the Python client (``fmhub.Client``):
connect, submit the fine-tune job of ``job.yaml``, follow its progress events, wait for it and show
its metrics, show the registered model's card and lineage, predict on a sample input, and deploy the
model to an online endpoint, score the same input there and delete the endpoint.

The first code cell is tagged ``parameters`` (papermill's convention): it holds everything a run
may change (server URL, model, data files, hyperparameters, registered model name), with the values
of ``job.yaml`` as defaults, so the notebook and the job file say the same thing. The notebooks are
stored without outputs.

Run it after changing a ``job.yaml`` or this file::

    python examples/make_notebooks.py
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

#: Per task: what the notebook says it does, and the sample input it predicts on (the task's
#: request form: text, [text, pair], or {"question", "context"}).
TASKS = {
    "text-classification": {
        "what": "sentiment classification on SST-2",
        "inputs": ["a gorgeous, witty film", "the plot is a tired mess"],
        "top_k": 2,
    },
    "token-classification": {
        "what": "named-entity recognition on a CoNLL-2003 subset",
        "inputs": ["Angela Merkel met Emmanuel Macron in Paris on Tuesday."],
        "top_k": 1,
    },
    "question-answering": {
        "what": "extractive question answering on a SQuAD v1.1 subset",
        "inputs": [{"question": "Where did they meet?",
                    "context": "The two ministers met in Paris on Tuesday to discuss the new trade agreement."}],
        "top_k": 1,
    },
    "summarization": {
        "what": "dialogue summarization on a DialogSum subset",
        "inputs": ["#Person1#: Did you finish the report?\n#Person2#: Not yet, I will send it to you "
                   "tomorrow morning.\n#Person1#: Fine, but no later than ten."],
        "top_k": 1,
    },
    "translation": {
        "what": "English -> German translation on a Multi30k subset",
        "inputs": ["A man rides a bike down the street."],
        "top_k": 1,
    },
    "chat-completion": {
        "what": "a LoRA chat fine-tune on the shared chat data (summaries, dialogue, translation, QA)",
        "inputs": [[{"role": "user", "content": "Translate to German: A man rides a bike down the street."}]],
        "top_k": 1,
    },
}


def _flat(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def _literal(value: object, level: int = 0) -> str:
    """A Python literal for ``value``: on one line when it fits, else one item per line."""
    flat = _flat(value)
    if len(flat) + 4 * level <= 88 or not isinstance(value, (dict, list)) or not value:
        return flat
    pad, end = "    " * (level + 1), "    " * level
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}: {_literal(v, level + 1)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + "\n" + end + "}"
    items = [f"{pad}{_literal(v, level + 1)}," for v in value]
    return "[\n" + "\n".join(items) + "\n" + end + "]"


def parameters_source(task: str, job: dict) -> str:
    """The ``parameters`` cell: job.yaml's values (data paths are relative to the notebook's folder)."""
    model = job["model"]
    name = job.get("registered_model_name") or f"{model}-{task}"
    return "\n".join([
        "import os",
        "",
        'URL = os.environ.get("FMHUB_URL", "http://127.0.0.1:8000")  # a running `fmhub serve`',
        f"TASK = {json.dumps(task)}",
        f"MODEL = {json.dumps(model)}",
        "# Files on the server's disk; relative paths are resolved from this notebook's folder.",
        f"DATA = {_literal(job['data'])}",
        f"HYPERPARAMETERS = {_literal(job.get('hyperparameters') or {})}",
        f"REGISTERED_MODEL_NAME = {json.dumps(name)}",
    ])


CONNECT = """\
import json
from pathlib import Path

import fmhub

client = fmhub.Client(url=URL)
print(client.health())"""

SUBMIT = """\
def server_path(value):
    \"\"\"A file that exists here goes to the server as an absolute path; `auto`, `none` and data
    asset references (NAME:VERSION) go as they are.\"\"\"
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value


data = {key: server_path(value) if key in ("train", "validation", "test") else value
        for key, value in DATA.items()}
spec = {"model": MODEL, "task": TASK, "data": data, "hyperparameters": HYPERPARAMETERS,
        "registered_model_name": REGISTERED_MODEL_NAME}
job = client.finetune(spec)  # the data is read and checked first: errors come back here, before training
print("job", job.id, job.status.value)"""

FOLLOW = """\
PRINT_EVERY = 10  # print every 10th training event
SKIP = ("runtime", "samples_per_second", "steps_per_second")

n_train = 0
for event in client.jobs.follow(job.id, poll_s=2.0):
    d = event.data
    if event.kind == "train":
        n_train += 1
        if n_train % PRINT_EVERY == 1 or d.get("step") == d.get("total"):
            loss, eta = d.get("loss"), d.get("eta_s")
            print(f"step {d.get('step')}/{d.get('total')}"
                  + (f"  loss {loss:.4f}" if isinstance(loss, (int, float)) else "")
                  + (f"  eta {eta:.0f} s" if isinstance(eta, (int, float)) else ""))
    elif event.kind == "eval":
        scores = {k: round(v, 4) for k, v in d.get("metrics", {}).items()
                  if isinstance(v, (int, float)) and k not in SKIP}
        at = f" at step {d['step']}" if d.get("step") is not None else ""
        print(f"eval {d.get('split', 'validation')}{at}:", scores)
    elif event.kind == "stage":
        print("--", d.get("stage"))"""

WAIT = """\
job = client.jobs.wait(job.id)
print("status:", job.status.value)
if job.status.value != "completed":
    raise RuntimeError(f"job {job.id} {job.status.value}: {job.error}")
for split, metrics in job.outputs["metrics"].items():
    print(split, {k: round(v, 4) for k, v in metrics.items() if isinstance(v, (int, float))})
REF = job.outputs["registered_model"]
print("registered model:", REF)"""

SHOW = """\
shown = client.models.get(REF)
card, lineage = shown["card"], shown["version"]["lineage"]
print(f"{card['name']}: {card.get('description')}")
print("base model:", lineage["base_model"], "| job:", lineage["job_id"], "| task:", lineage["task"])
for asset in lineage["data"]:
    print(f"  {asset['split']:<10} {asset['asset']}  sha256 {asset['sha256'][:12]}")
print("column mapping:", ", ".join(lineage["column_mapping"]))
print("hyperparameters:", {k: v for k, v in lineage["hyperparameters"].items() if v is not None})"""


DEPLOY = """\
ENDPOINT = REGISTERED_MODEL_NAME.lower().replace("_", "-").replace(".", "-")[:40]
client.endpoints.create(ENDPOINT)
shown = client.endpoints.deploy(ENDPOINT, REF, "blue")
print(shown["scoring_uri"], "->", shown["deployments"][0]["state"], shown["deployments"][0]["runtime_detail"])
scored = client.endpoints.invoke(ENDPOINT, INPUTS)
print(json.dumps(scored, indent=2, ensure_ascii=False))
print("deleted:", client.endpoints.delete(ENDPOINT)["deleted"])"""


def predict_source(task: str) -> str:
    spec = TASKS[task]
    return "\n".join([
        f"INPUTS = {_literal(spec['inputs'])}",
        f"result = client.models.predict(REF, INPUTS, top_k={spec['top_k']})",
        "print(json.dumps(result, indent=2, ensure_ascii=False))",
    ])


def build(task: str) -> nbformat.NotebookNode:
    """The notebook for ``task`` (from ``examples/<task>/job.yaml``)."""
    job = yaml.safe_load((HERE / task / "job.yaml").read_text(encoding="utf-8"))
    spec = TASKS[task]
    parameters = new_code_cell(parameters_source(task, job), metadata={"tags": ["parameters"]})
    cells = [
        new_markdown_cell(
            f"# Fine-tune `{job['model']}` for {task} with the fmhub Python client\n\n"
            f"This notebook runs the job of [`job.yaml`](job.yaml), {spec['what']}, on an fmhub server: it "
            "submits the fine-tune job, follows its progress, shows the test metrics and the registered "
            "model's card and lineage, and predicts with the new model.\n\n"
            "It needs a running server on the machine that holds the data files: start one with "
            "`fmhub serve` (default `http://127.0.0.1:8000`; set `FMHUB_URL` or `URL` below for another). "
            "The same job from the command line: [`run.sh`](run.sh)."),
        new_markdown_cell("## Parameters\n\nThe defaults are the values of `job.yaml`."),
        parameters,
        new_markdown_cell("## Connect to the server"),
        new_code_cell(CONNECT),
        new_markdown_cell("## Submit the fine-tune job\n\nThe server reads the data files from its own disk; "
                          "files that exist here are sent as absolute paths."),
        new_code_cell(SUBMIT),
        new_markdown_cell("## Follow its progress\n\nTraining events carry step, total, loss and ETA; "
                          "evaluation events carry the validation metrics."),
        new_code_cell(FOLLOW),
        new_markdown_cell("## Wait for the result and show the metrics"),
        new_code_cell(WAIT),
        new_markdown_cell("## The registered model: card and lineage\n\nThe lineage names the base model, "
                          "the data assets (name:version and sha256), the job and its hyperparameters."),
        new_code_cell(SHOW),
        new_markdown_cell("## Predict"),
        new_code_cell(predict_source(task)),
        new_markdown_cell("## Deploy to an online endpoint, score, delete\n\nThe endpoint runs the model in its "
                          "own process on the server, batches concurrent requests, and answers at a stable URL "
                          "with the endpoint's key."),
        new_code_cell(DEPLOY),
    ]
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating changes nothing
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    return nb


def main() -> None:
    for task in TASKS:
        nb = build(task)
        nbformat.validate(nb)
        path = HERE / task / "notebook.ipynb"
        nbformat.write(nb, str(path))
        print("wrote", path.relative_to(HERE.parent))


if __name__ == "__main__":
    main()
