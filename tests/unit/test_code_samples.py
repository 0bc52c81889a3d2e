"""The model card's code samples are real: the Python parses and calls methods the client has,
the CLI lines parse with the Typer app's own commands, the REST calls hit existing routes and
their bodies validate as the job specs."""

from __future__ import annotations

import ast
import inspect
import json
import shlex
from types import SimpleNamespace

import pytest

from fmhub.catalog.cards import load_system_cards
from fmhub.entities import ModelCard, ModelSource
from fmhub.services.code_samples import code_samples, offline_hint, served_tasks
from fmhub.tasks import task_names

BASE = "http://127.0.0.1:8000"


def _cards() -> list[dict]:
    cards = [c.model_dump() for c in load_system_cards()]
    for task in task_names():  # a workspace version per task (predict and deploy samples too)
        cards.append(ModelCard(name=f"my-{task}", architecture="BertForSequenceClassification", parameters=1,
                               inference_tasks=[task], finetuning_tasks=[task], license="mit", registry="workspace",
                               version=3, source=ModelSource(kind="local", url="/models/x"),
                               available_offline=True).model_dump())
    return cards


CARDS = _cards()


def _commands(text: str) -> list[list[str]]:
    """Shell commands of a sample as argument lists (continuations joined, comments dropped)."""
    commands, buffer = [], ""
    for line in text.replace("\\\n", " ").splitlines():
        if not buffer and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buffer = f"{buffer}\n{line}" if buffer else line
        try:
            commands.append(shlex.split(buffer))
        except ValueError:  # a quoted word (a JSON body) goes on over the next lines
            continue
        buffer = ""
    assert not buffer, f"unbalanced quotes in {text!r}"
    return commands


def _click_command(args: list[str]):
    import typer

    from fmhub.cli.app import app

    command = typer.main.get_command(app)
    rest = args[1:]
    while hasattr(command, "commands") and rest and rest[0] in command.commands:
        command, rest = command.commands[rest[0]], rest[1:]
    return command, rest


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c["name"])
def test_cli_samples_parse_with_the_typer_app(card):
    samples = code_samples(card, BASE)
    assert samples, "every card has at least a fine-tune sample"
    for action, langs in samples.items():
        for args in _commands(langs["cli"]):
            if args[0] in ("export", "echo"):
                continue
            assert args[0] == "fmhub", args
            command, rest = _click_command(args)
            assert not hasattr(command, "commands"), f"no such command: {args}"
            ctx = command.make_context(args[0], rest)  # unknown flags and bad values raise here
            assert ctx.params
            if action == "finetune":
                assert ctx.params["model"] == card["name"] + (f":{card['version']}" if card.get("version") else "")


def _call_target(node: ast.Call) -> list[str]:
    parts, func = [], node.func
    while isinstance(func, ast.Attribute):
        parts.insert(0, func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.insert(0, func.id)
    return parts


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c["name"])
def test_python_samples_parse_and_call_real_client_methods(card):
    import fmhub
    from fmhub.client import Client
    from fmhub.services.specs import FinetuneSpec

    client = Client(url=BASE)
    try:
        for action, langs in code_samples(card, BASE).items():
            tree = ast.parse(langs["python"])
            calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
            checked = 0
            for call in calls:
                target = _call_target(call)
                if target[:1] == ["fmhub"]:
                    func = getattr(fmhub, target[1])
                elif target[:1] == ["client"]:
                    func = client
                    for part in target[1:]:
                        func = getattr(func, part)  # AttributeError: the client has no such method
                else:
                    continue
                args = [object()] * len(call.args)
                inspect.signature(func).bind(*args, **{k.arg: None for k in call.keywords})
                checked += 1
                if target == ["client", "finetune"]:
                    body = eval(compile(ast.Expression(call.args[0]), "<sample>", "eval"),
                                {"asset": SimpleNamespace(ref="train:1")})
                    spec = FinetuneSpec.model_validate(body)
                    assert spec.data.train == "train:1"
            assert checked >= 2, langs["python"]
    finally:
        client.close()


def _rest_calls(text: str) -> list[tuple[str, str, dict | None]]:
    """(method, URL, JSON body) of each curl command."""
    calls = []
    for args in _commands(text):
        if args[0] == "KEY=$(curl":  # KEY=$(curl ... | python3 -c ...): the curl part
            args = ["curl", *args[1:args.index("|")]]
        if args[0] != "curl":
            continue
        method, url, body, i = "GET", None, None, 1
        while i < len(args):
            if args[i] == "-X":
                method, i = args[i + 1], i + 2
            elif args[i] in ("-H", "--data-binary"):
                if args[i] == "--data-binary":
                    body = args[i + 1]
                i += 2
            elif args[i] == "-d":
                body, i = json.loads(args[i + 1]), i + 2
            elif args[i].startswith("-"):
                i += 1
            else:
                url, i = args[i], i + 1
        calls.append((method, url, body))
    return calls


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c["name"])
def test_rest_samples_hit_real_routes_with_valid_bodies(card, ctx):
    from urllib.parse import urlsplit

    from starlette.routing import Match

    from fmhub.api.app import create_app
    from fmhub.api.routers.endpoints import CreateEndpoint
    from fmhub.api.routers.models import PredictRequest
    from fmhub.api.routers.scoring import ScoreRequest
    from fmhub.services.specs import DeploymentSpec, FinetuneSpec

    app = create_app(ctx, serve_endpoints=False)
    models = {"/api/v1/jobs/finetune": FinetuneSpec, "/deployments": DeploymentSpec, "/predict": PredictRequest,
              "/api/v1/endpoints": CreateEndpoint, "/score": ScoreRequest}
    for langs in code_samples(card, BASE).values():
        calls = _rest_calls(langs["rest"])
        assert calls
        for method, url, body in calls:
            assert url.startswith(BASE + "/"), url
            path = urlsplit(url).path
            scope = {"type": "http", "path": path, "method": method}
            matched = [r for r in app.routes if r.matches(scope)[0] == Match.FULL]
            assert matched, f"{method} {path} is no route of the API"
            if isinstance(body, dict):
                model = next(m for suffix, m in models.items() if path.endswith(suffix))
                model.model_validate(body)


def test_finetune_samples_use_the_cards_hyperparameter_defaults():
    card = next(c for c in CARDS if c["name"] == "all-MiniLM-L6-v2")
    samples = code_samples(card, BASE)
    assert "--learning-rate 0.0001" in samples["finetune"]["cli"]  # the card's default, not the task's
    assert set(samples) == {"finetune"}  # a sentence encoder serves no fmhub task
    assert code_samples(card, BASE, task="summarization")["finetune"]["cli"].count("--task summarization") == 1
    with pytest.raises(ValueError):
        code_samples(next(c for c in CARDS if c["name"] == "opus-mt-en-de"), BASE, task="text-classification")


def test_remote_servers_get_the_api_key_header():
    card = next(c for c in CARDS if c["name"] == "my-text-classification")
    remote = code_samples(card, "https://fmhub.example.org/")
    assert 'Authorization: Bearer $FMHUB_API_KEY' in remote["finetune"]["rest"]
    assert "https://fmhub.example.org/api/v1/jobs/finetune" in remote["finetune"]["rest"]
    assert "FMHUB_API_KEY" not in code_samples(card, BASE)["finetune"]["rest"]


def test_offline_hint_and_served_tasks():
    cards = {c["name"]: c for c in CARDS}
    assert offline_hint({**cards["bart-large-cnn"], "available_offline": True}) is None
    hint = offline_hint({**cards["bart-large-cnn"], "available_offline": False})
    assert "hf download facebook/bart-large-cnn" in hint
    assert "fmhub models import ./bart-large-cnn --name my-bart-large-cnn --task summarization" in hint
    args = shlex.split(hint.split("`")[-2])
    command, rest = _click_command(args)
    assert command.make_context(args[0], rest).params["name"] == "my-bart-large-cnn"
    assert "my-bart-large-cnn" not in cards  # a catalog name cannot be imported into the workspace
    assert "pip install" in offline_hint({**cards["all-MiniLM-L6-v2"], "available_offline": False})
    assert served_tasks(cards["all-MiniLM-L6-v2"]) == []
    assert served_tasks(cards["flan-t5-base"]) == ["summarization", "translation"]


def test_a_key_protected_loopback_server_gets_the_key_in_every_sample():
    card = next(c for c in CARDS if c["name"] == "my-text-classification")
    samples = code_samples(card, BASE, needs_key=True)
    for action in ("finetune", "predict", "deploy"):
        rest = samples[action]["rest"]
        calls = [line for line in rest.splitlines() if "curl" in line and "/score" not in line]
        assert calls and all("Authorization: Bearer $FMHUB_API_KEY" in line for line in calls), action
        assert "FMHUB_API_KEY" in samples[action]["python"]
    assert "export FMHUB_API_KEY=" in samples["deploy"]["cli"]
    open_server = code_samples(card, BASE, needs_key=False)
    assert "FMHUB_API_KEY" not in open_server["deploy"]["cli"] + open_server["deploy"]["rest"]
