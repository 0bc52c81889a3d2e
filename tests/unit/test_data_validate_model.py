"""`fmhub data validate` counts tokens with a model that takes the task."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from fmhub.services.task_facts import token_count_model


def test_token_count_model_takes_the_task() -> None:
    from fmhub.catalog.cards import get_system_card

    assert token_count_model("text-classification") == "all-MiniLM-L6-v2"
    chat = token_count_model("chat-completion")
    assert "chat-completion" in get_system_card(chat).finetuning_tasks


def test_cli_data_validate_without_model_uses_one_for_the_task(tmp_path: Path, monkeypatch) -> None:
    import fmhub.services.finetune as finetune
    from fmhub.cli.app import app

    monkeypatch.setenv("FMHUB_HOME", str(tmp_path / "home"))
    seen = {}

    def fake_validate(ctx, spec):
        seen["model"] = spec.model
        raise SystemExit(0)

    monkeypatch.setattr(finetune, "validate", fake_validate)
    path = tmp_path / "chat.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ho"}]}\n')
    result = CliRunner().invoke(app, ["data", "validate", str(path), "--task", "chat-completion",
                                      "--validation", "none", "--test", "none"])
    assert seen.get("model") == token_count_model("chat-completion"), result.output
