"""The chat-completion task: layouts and row checks, the assistant-only mask, truncation, the
default template, end-of-turn ids, prediction and metrics (tiny models, nothing downloaded)."""

from __future__ import annotations

import json

import pytest

from fmhub.tasks import get_task
from fmhub.tasks.base import Examples
from fmhub.tasks.chat_template import (IGNORE_INDEX, encode_chats, end_of_turn_ids, ensure_chat_template,
                                       set_end_of_turn)
from tiny_chat import build_chat_tokenizer, build_tiny_chat_llama, chat_files

MULTI = [{"role": "system", "content": "You are a helpful assistant."},
         {"role": "user", "content": "Hello! How are you today?"},
         {"role": "assistant", "content": "I am fine, thank you."},
         {"role": "user", "content": "What is the capital of France?"},
         {"role": "assistant", "content": "Paris is the capital of France.", "weight": 0},
         {"role": "user", "content": "Translate to German: A dog runs on the beach."},
         {"role": "assistant", "content": "Ein Hund rennt am Strand."}]


@pytest.fixture(scope="module")
def tok():
    return build_chat_tokenizer()


@pytest.fixture(scope="module")
def tiny_chat(tmp_path_factory):
    return build_tiny_chat_llama(tmp_path_factory.mktemp("tiny-chat"))


def ex(rows, split="train", file="chat.jsonl", columns=None):
    return Examples(split, file, rows, list(range(1, len(rows) + 1)), columns or {"messages": "messages"})


def labelled_runs(enc):
    """The labelled token runs of an encoded row, as lists of ids."""
    runs, current = [], []
    for token, label in zip(enc.input_ids, enc.labels):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


# -- the mask ---------------------------------------------------------------------------------------
def test_mask_labels_each_assistant_reply_and_its_end_of_turn_token_only(tok):
    enc = encode_chats(tok, [MULTI], end_of_turn_ids(tok))[0]
    runs = [tok.decode(r) for r in labelled_runs(enc)]
    # the weight-0 reply and every system/user token are out; each reply ends on <|im_end|>
    assert runs == ["I am fine, thank you.<|im_end|>", "Ein Hund rennt am Strand.<|im_end|>"]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert enc.input_ids.count(im_end) == 7 and enc.labels.count(im_end) == 2
    # the labelled tokens are exactly the reply tokens of the full rendering: the model sees at
    # training what it sees at inference
    assert tok.decode(enc.input_ids) == tok.apply_chat_template(
        [{"role": m["role"], "content": m["content"]} for m in MULTI], tokenize=False)


def test_mask_with_weight_1_everywhere_labels_all_three_replies(tok):
    rows = [[{**m, "weight": 1} if m["role"] == "assistant" else m for m in MULTI]]
    enc = encode_chats(tok, rows, end_of_turn_ids(tok))[0]
    assert [tok.decode(r) for r in labelled_runs(enc)] == [
        "I am fine, thank you.<|im_end|>", "Paris is the capital of France.<|im_end|>",
        "Ein Hund rennt am Strand.<|im_end|>"]


def test_tokenizers_without_offsets_get_the_same_mask_from_prefix_token_counts(tok):
    from fmhub.tasks.chat_template import _encode_by_prefixes

    fast = encode_chats(tok, [MULTI], end_of_turn_ids(tok))[0]
    slow = _encode_by_prefixes(tok, MULTI, set(end_of_turn_ids(tok)))
    assert slow.input_ids == fast.input_ids and slow.labels == fast.labels


@pytest.mark.parametrize("family", ["llama3", "mistral"])
def test_mask_follows_other_templates(family):
    from tiny_chat import LLAMA3_SPECIALS, LLAMA3_TEMPLATE, MISTRAL_TEMPLATE

    if family == "llama3":
        tok = build_chat_tokenizer(template=LLAMA3_TEMPLATE, eos="<|end_of_text|>", bos="<|begin_of_text|>",
                                   extra_specials=tuple(LLAMA3_SPECIALS))
        end = "<|eot_id|>"
        assert end_of_turn_ids(tok) == tok.convert_tokens_to_ids(["<|end_of_text|>", "<|eot_id|>"])
    else:
        tok = build_chat_tokenizer(template=MISTRAL_TEMPLATE, eos="</s>", bos="<s>", extra_specials=("<s>", "</s>"),
                                   with_im_tokens=False)
        end = "</s>"
        assert end_of_turn_ids(tok) == [tok.eos_token_id]
    rows = [[{**m, "content": m["content"] + "  "} if m["role"] == "assistant" else m for m in MULTI[1:]]]
    enc = encode_chats(tok, rows, end_of_turn_ids(tok))[0]
    runs = [tok.decode(r) for r in labelled_runs(enc)]
    if family == "llama3":  # the template trims contents; the header's blank line is not labelled
        assert runs == [f"I am fine, thank you.{end}", f"Ein Hund rennt am Strand.{end}"]
    else:  # the template puts a space before a reply (labelled when a token joins it to the reply)
        assert [r.lstrip() for r in runs] == [f"I am fine, thank you.  {end}", f"Ein Hund rennt am Strand.  {end}"]
        assert not any("[/INST]" in r for r in runs)


def test_default_chatml_template_for_a_base_model_uses_eos_as_end_of_turn():
    base = build_chat_tokenizer(template=None, with_im_tokens=False, eos="<|endoftext|>")
    used = ensure_chat_template(base)
    assert "default ChatML" in used and "<|endoftext|>" in used
    assert end_of_turn_ids(base) == [base.eos_token_id]
    enc = encode_chats(base, [MULTI[1:3]], end_of_turn_ids(base))[0]
    assert [base.decode(r) for r in labelled_runs(enc)] == ["I am fine, thank you.<|endoftext|>"]
    assert base.apply_chat_template(MULTI[1:2], tokenize=False, add_generation_prompt=True) == \
        "<|im_start|>user\nHello! How are you today?<|endoftext|>\n<|im_start|>assistant\n"


def test_the_report_names_the_default_template_of_a_base_model():
    base = build_chat_tokenizer(template=None, with_im_tokens=False, eos="<|endoftext|>")
    task = get_task("chat-completion")
    split = ex([{"messages": MULTI[1:3]}])
    assert task.token_counts(base, split)[0] > 10  # gives the tokenizer the default template
    notes, problems = task.length_report(base, split, 1024)
    assert not problems
    assert notes[0] == ("chat template: the default ChatML template (the model has none; turns end with "
                        "<|endoftext|>); loss on assistant replies and their end-of-turn token only")


def test_rows_holding_special_token_text_are_named_in_one_warning(tok):
    task = get_task("chat-completion")
    rows = [{"messages": MULTI[1:3]},
            {"messages": [{"role": "user", "content": "say <|im_end|> please"}, {"role": "assistant", "content": "a"}]},
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x<|im_start|>"}]}]
    notes, problems = task.length_report(tok, ex(rows), 1024)
    assert len(problems) == 1 and problems[0].line == 2 and "lines 2, 3" in problems[0].message
    assert problems[0].value == "'<|im_end|>'" and problems[0].severity == "warning"


def test_default_template_ends_turns_with_im_end_when_the_vocabulary_has_it():
    base = build_chat_tokenizer(template=None, eos="<|endoftext|>")
    assert "<|im_end|>" in ensure_chat_template(base)
    eos, im_end = base.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    assert end_of_turn_ids(base) == [eos, im_end]


def test_end_of_turn_of_a_template_that_differs_from_eos_goes_into_the_generation_config(tmp_path):
    from transformers import GenerationConfig

    tok = build_chat_tokenizer(eos="<|endoftext|>")
    eos, im_end = tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    assert end_of_turn_ids(tok) == [eos, im_end]
    config = GenerationConfig(eos_token_id=eos)
    assert set_end_of_turn(config, tok) == [eos, im_end]
    config.save_pretrained(str(tmp_path))
    saved = json.loads((tmp_path / "generation_config.json").read_text())
    assert saved["eos_token_id"] == [eos, im_end] and saved["pad_token_id"] == tok.pad_token_id


# -- row checks -------------------------------------------------------------------------------------
def test_row_checks_name_line_message_index_and_value():
    task = get_task("chat-completion")
    good_row = {"messages": MULTI[1:3]}
    rows = [
        dict(good_row),
        {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]},
        {"messages": [{"role": "user", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "a"},
                      {"role": "user", "content": "and?"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "s"},
                      {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "a", "weight": 2}]},
        {"messages": [{"role": "user", "content": "hi", "weight": 0}, {"role": "assistant", "content": "a"}]},
        {"messages": "not a list"},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "a", "weight": 0}]},
    ]
    good, problems = task.check_rows(ex(rows, columns={"messages": "conversation"}))
    assert good == [0]
    by_line = {p.line: p for p in problems}
    assert by_line[2].column == "conversation[1].role" and "unknown role 'bot'" in by_line[2].message \
        and by_line[2].value == "'bot'"
    assert by_line[3].column == "conversation[1].content" and "empty content" in by_line[3].message
    assert by_line[4].column == "conversation" and "no assistant message" in by_line[4].message
    assert by_line[5].column == "conversation[2].role" and "ends on a user message" in by_line[5].message
    assert by_line[6].column == "conversation[1].role" and "system message must come first" in by_line[6].message
    assert by_line[7].column == "conversation[1].weight" and by_line[7].value == "2"
    assert by_line[8].column == "conversation[0].weight" and "user message" in by_line[8].message
    assert "must be a list" in by_line[9].message
    assert by_line[10].severity == "warning" and "weight 0" in by_line[10].message
    assert all(p.file == "chat.jsonl" for p in problems)
    assert all(p.severity == "error" for line, p in by_line.items() if line != 10)


def test_a_developer_message_is_a_system_message_as_at_the_endpoint():
    task = get_task("chat-completion")
    rows = [{"messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"},
                          {"role": "assistant", "content": "a"}]}]
    good, problems = task.check_rows(ex(rows))
    assert good == [0] and not problems
    checked = task.model_inputs(ex(rows))[0]
    assert checked[0] == {"role": "system", "content": "be brief"}


def test_a_test_row_may_end_on_a_user_turn_when_it_has_references():
    task = get_task("chat-completion")
    rows = [{"messages": [{"role": "user", "content": "hi"}], "references": ["hello", "hi there"], "group": "qa"}]
    good, problems = task.check_rows(ex(rows, split="test", columns={"messages": "messages",
                                                                       "references": "references"}))
    assert good == [0] and not problems
    assert rows[0]["group"] == "qa"  # the data layer's group key stays
    test = ex(rows, split="test")
    assert task.references(test) == [["hello", "hi there"]]
    assert task.model_inputs(test) == [[{"role": "user", "content": "hi"}]]


def test_prompt_completion_and_instruction_layouts_become_messages():
    task = get_task("chat-completion")
    rows = [{"prompt": "What is 2+2?", "completion": "4", "group": "math"}]
    good, problems = task.check_rows(ex(rows, columns={"prompt": "prompt", "completion": "completion"}))
    assert good == [0] and not problems
    assert rows[0] == {"messages": [{"role": "user", "content": "What is 2+2?"},
                                    {"role": "assistant", "content": "4"}], "group": "math"}
    rows = [{"instruction": "Translate to German.", "input": "A dog.", "output": "Ein Hund."},
            {"instruction": "Say hi.", "input": None, "output": ""}]
    good, problems = task.check_rows(ex(rows, columns={"instruction": "instruction", "input": "input",
                                                       "output": "output"}))
    assert good == [0]
    assert rows[0]["messages"] == [{"role": "user", "content": "Translate to German.\n\nA dog."},
                                   {"role": "assistant", "content": "Ein Hund."}]
    assert problems[0].line == 2 and problems[0].column == "output"


def test_conversational_prompt_and_completion_lists_join():
    task = get_task("chat-completion")
    rows = [{"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}],
             "completion": [{"role": "assistant", "content": "a"}]},
            {"prompt": [{"role": "user", "content": "q"}, {"role": "narrator", "content": "x"}], "completion": "a"}]
    good, problems = task.check_rows(ex(rows, columns={"prompt": "prompt", "completion": "completion"}))
    assert good == [0] and rows[0]["messages"][1:] == [{"role": "user", "content": "q"},
                                                       {"role": "assistant", "content": "a"}]
    assert [(p.line, p.column) for p in problems] == [(2, "prompt[1].role")]


def test_a_messages_column_is_the_input_of_a_table_request():
    task = get_task("chat-completion")
    assert task.column_plan(["id", "messages"], "input_data") == 1
    assert task.hf_object_input({"messages": [{"role": "user", "content": "hi"}]}) == \
        [{"role": "user", "content": "hi"}]


def test_test_rows_may_give_a_prompt_and_references_only():
    task = get_task("chat-completion")
    rows = [{"prompt": "What is the capital of France?", "references": '["Paris", "Paris, France"]'}]
    good, problems = task.check_rows(ex(rows, split="test", columns={"prompt": "question", "references": "refs"}))
    assert good == [0] and not problems
    assert task.references(ex(rows, split="test")) == [["Paris", "Paris, France"]]
    rows = [{"prompt": "What is the capital of France?", "references": None}]
    good, problems = task.check_rows(ex(rows, split="test", columns={"prompt": "question", "references": "refs"}))
    assert good == [] and "no assistant message" in problems[0].message and problems[0].column == "question"


def test_unmapped_layout_is_one_problem_with_the_layouts_in_the_hint():
    task = get_task("chat-completion")
    good, problems = task.check_rows(ex([{"text": "x"}], columns={}))
    assert good == [] and len(problems) == 1 and "prompt" in problems[0].hint


def _spec(files, **kw):
    from fmhub.services.specs import DataSpec

    return DataSpec(**{"validation": "none", "test": "none", **files, **kw})


def test_jsonl_messages_lists_and_csv_json_cells_read_through_the_data_layer(tmp_path, tok):
    from fmhub.services.data_prep import prepare_data

    task = get_task("chat-completion")
    files = chat_files(tmp_path)
    prepared = prepare_data(_spec(files, validation=files["validation"], test=files["test"]), task, tok, 1024, 42)
    assert prepared.report.ok, prepared.report.errors
    train = prepared.splits["train"]
    assert train.rows[2]["messages"][2] == {"role": "user", "content": "Summarize the dialogue."}
    assert prepared.splits["test"].rows[1]["references"] == ["Ein Hund rennt am Strand."]
    assert prepared.report.split("train").distribution == {"1 reply": 8, "2 replies": 4}
    assert any("chat template: the model's chat template" in n for n in prepared.report.notes)
    note = next(n for n in prepared.report.notes if n.startswith("train: messages per row mean 3.0, max 4"))
    encoded = encode_chats(tok, [r["messages"] for r in train.rows], end_of_turn_ids(tok))
    assert f"{sum(len(e.input_ids) for e in encoded):,} tokens, {sum(e.labelled for e in encoded):,} of them" in note

    csv_path = tmp_path / "chat.csv"
    import csv

    with csv_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["conversation", "source"])
        w.writerow([json.dumps(MULTI), "chat"])
        w.writerow(['[{"role": "user", "content": "hi"}, {"role": "model", "content": "x"}]', "chat"])
        w.writerow(["[{'role': 'user', 'content': 'hi'}]", "chat"])  # Python repr, not JSON
    prepared = prepare_data(_spec({"train": str(csv_path)}, column_mapping={"messages": "conversation"}), task,
                            tok, 1024, 42)
    assert [(p.line, p.column) for p in prepared.report.errors] == [(3, "conversation[1].role"),
                                                                    (4, "conversation")]
    broken = prepared.report.errors[1]
    assert "does not parse" in broken.message and "column 3" in broken.message and "double quotes" in broken.hint

    test_csv = tmp_path / "test.csv"
    with test_csv.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["messages", "references"])
        w.writerow([json.dumps(MULTI[1:2]), json.dumps(["I am fine.", "Fine, thanks."])])
        w.writerow([json.dumps(MULTI[1:3]), "I am fine."])
    prepared = prepare_data(_spec({"train": files["train"], "test": str(test_csv)}), task, tok, 1024, 42)
    assert prepared.report.ok, prepared.report.errors
    assert task.references(prepared.splits["test"]) == [["I am fine.", "Fine, thanks."], ["I am fine."]]

    pc = tmp_path / "pc.csv"
    pc.write_text("prompt,completion\nWhat is the capital of France?,Paris.\n", encoding="utf-8")
    prepared = prepare_data(_spec({"train": str(pc)}), task, tok, 1024, 42)
    assert prepared.report.ok and prepared.splits["train"].rows[0]["messages"][1]["content"] == "Paris."


def test_parquet_messages_with_weight_on_some_turns(tmp_path, tok):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fmhub.services.data_prep import prepare_data

    rows = [{"messages": MULTI, "source": "chat"}, {"messages": MULTI[1:3], "source": "qa"}]
    pq.write_table(pa.Table.from_pylist(rows), str(tmp_path / "chat.parquet"))
    prepared = prepare_data(_spec({"train": str(tmp_path / "chat.parquet")}), get_task("chat-completion"), tok,
                            1024, 42)
    assert prepared.report.ok, prepared.report.errors
    messages = prepared.splits["train"].rows[0]["messages"]
    assert [m.get("weight") for m in messages] == [None, None, None, None, 0, None, None]
    enc = encode_chats(tok, [messages], end_of_turn_ids(tok))[0]
    assert len(labelled_runs(enc)) == 2


# -- truncation ---------------------------------------------------------------------------------------
def test_truncation_counts_rows_cut_and_rows_that_lose_replies_and_encode_drops_rows_without_labels(tok):
    task = get_task("chat-completion")
    long_user = " ".join(["The cat sat on the mat and the dog slept."] * 12)
    rows = [{"messages": MULTI[1:3]},                                                  # short
            {"messages": [{"role": "user", "content": long_user}, {"role": "assistant", "content": "Paris."}]},
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": long_user}]}]
    split = ex(rows)
    counts = task.token_counts(tok, split)
    limit = counts[0] + 5
    assert counts[1] > limit + 10 and counts[2] > limit
    notes, problems = task.length_report(tok, split, limit)
    assert any(f"2 of 3 row(s) are longer than max_seq_length {limit}" in n and "2 of them lose" in n for n in notes)
    assert [(p.line, p.severity) for p in problems] == [(2, "warning")]
    assert "1 row(s) have every reply beyond" in problems[0].message and "line 2" in problems[0].message
    ds = task.encode(split, tok, task.label_info(split), limit)
    assert ds.num_rows == 2 and max(ds["length"]) == limit
    cut = ds[1]
    assert cut["labels"][-1] != IGNORE_INDEX and len(cut["labels"]) == limit  # kept the start of the reply


def test_collated_batch_gives_a_finite_loss_on_assistant_tokens(tiny_chat):
    import torch
    from transformers import AutoTokenizer

    task = get_task("chat-completion")
    tok = AutoTokenizer.from_pretrained(str(tiny_chat))
    model = task.load_model(str(tiny_chat), None)
    ds = task.encode(ex([{"messages": MULTI}, {"messages": MULTI[1:3]}]), tok, task.label_info(ex([])), 256)
    batch = task.data_collator(tok)([{k: ds[i][k] for k in ("input_ids", "attention_mask", "labels")}
                                     for i in range(2)])
    assert batch["labels"].shape == batch["input_ids"].shape
    loss = model(**batch).loss
    assert torch.isfinite(loss)


# -- prediction ---------------------------------------------------------------------------------------
def _fixed_next_token(model, token_id):
    """Make the model always predict ``token_id`` next (an lm_head with only a bias)."""
    import torch

    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-10.0)
        head.bias[token_id] = 10.0
    model.lm_head = head
    return model


def test_predict_stops_at_the_end_of_turn_token_and_says_length_otherwise(tiny_chat):
    from transformers import AutoTokenizer

    task = get_task("chat-completion")
    tok = AutoTokenizer.from_pretrained(str(tiny_chat))
    model = task.load_model(str(tiny_chat), None)
    inputs = [MULTI, MULTI[1:2], task.check_score_input("Hello!")]
    _fixed_next_token(model, tok.convert_tokens_to_ids("<|im_end|>"))
    out = task.predict(model, tok, inputs, batch_size=2, max_new_tokens=5)
    assert out == [{"generated_text": "", "finish_reason": "stop", "truncated": False}] * 3
    word = tok("Paris", add_special_tokens=False)["input_ids"][0]
    _fixed_next_token(model, word)
    out = task.predict(model, tok, inputs, batch_size=2, max_new_tokens=3, max_seq_length=8)
    assert [o["finish_reason"] for o in out] == ["length"] * 3
    assert out[0]["generated_text"] == tok.decode([word] * 3).strip()
    assert [o["truncated"] for o in out] == [True, True, True]


def test_predict_stops_at_the_template_end_of_turn_when_the_generation_config_has_only_eos(tmp_path):
    from transformers import AutoTokenizer

    folder = build_tiny_chat_llama(tmp_path / "m", eos="<|endoftext|>")
    task = get_task("chat-completion")
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = task.load_model(str(folder), None)
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids("<|endoftext|>")
    _fixed_next_token(model, tok.convert_tokens_to_ids("<|im_end|>"))
    out = task.predict(model, tok, [MULTI[1:2]], max_new_tokens=4)
    assert out[0]["finish_reason"] == "stop"


def test_a_model_loaded_for_fine_tuning_stops_at_the_end_of_turn_once_saved(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fmhub.tasks.base import LabelInfo

    folder = build_tiny_chat_llama(tmp_path / "m", eos="<|endoftext|>")
    tok = AutoTokenizer.from_pretrained(str(folder))
    eos, im_end = tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    task = get_task("chat-completion")
    assert task.load_model(str(folder), None).generation_config.eos_token_id == eos  # prediction: as saved
    model = task.load_model(str(folder), LabelInfo())
    assert model.generation_config.eos_token_id == [eos, im_end]
    model.save_pretrained(str(tmp_path / "out"))
    assert AutoModelForCausalLM.from_pretrained(str(tmp_path / "out")).generation_config.eos_token_id == [eos, im_end]


def test_score_inputs_and_params():
    task = get_task("chat-completion")
    assert task.check_score_input("hi") == [{"role": "user", "content": "hi"}]
    assert task.check_score_input({"messages": [{"role": "user", "content": "hi"}]}) == \
        [{"role": "user", "content": "hi"}]
    with pytest.raises(ValueError, match=r"messages\[1\]\.role"):
        task.check_score_input([{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}])
    with pytest.raises(ValueError, match=r"messages\[0\]\.content"):
        task.check_score_input([{"role": "user", "content": 3}])
    assert task.score_params({"max_new_tokens": 9, "temperature": 0.5, "top_p": 0.9, "do_sample": True}) == \
        {"max_new_tokens": 9, "temperature": 0.5, "top_p": 0.9, "do_sample": True}
    for bad in ({"max_new_tokens": 0}, {"temperature": 3}, {"top_p": 0}, {"do_sample": "yes"}):
        with pytest.raises(ValueError):
            task.score_params(bad)


def test_default_hyperparameters_are_lora():
    task = get_task("chat-completion")
    assert task.default_hyperparameters["finetuning_type"] == "lora"
    assert task.default_hyperparameters["learning_rate"] == 2e-4
    assert task.metric_for_best_model == "loss" and not task.greater_is_better


# -- metrics ---------------------------------------------------------------------------------------
def test_metrics_equal_the_reference_packages_with_several_references():
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU, CHRF

    from fmhub.tasks.squad_metrics import squad_scores

    task = get_task("chat-completion")
    preds = ["The cat sat on the mat. It slept.", "Ein Hund rennt.", "Paris", "unused"]
    refs = [["A cat was sitting on the mat. Then it slept."], ["Ein Hund rennt am Strand.", "Der Hund rennt."],
            ["paris", "Paris, France"], []]
    m = task.compute_metrics(preds, refs, None)
    assert m["n"] == 3
    scorer = rouge_scorer.RougeScorer(["rougeL", "rougeLsum"], use_stemmer=True)
    sent = lambda t: t.replace(". ", ".\n")  # noqa: E731
    exp_l = sum(scorer.score_multi([sent(r) for r in rs], sent(p))["rougeL"].fmeasure
                for p, rs in zip(preds[:3], refs[:3])) / 3 * 100
    exp_lsum = sum(scorer.score_multi([sent(r) for r in rs], sent(p))["rougeLsum"].fmeasure
                   for p, rs in zip(preds[:3], refs[:3])) / 3 * 100
    assert m["rougeL"] == pytest.approx(exp_l) and m["rougeLsum"] == pytest.approx(exp_lsum)
    streams = [[refs[0][0], refs[1][0], refs[2][0]], [None, refs[1][1], refs[2][1]]]
    assert m["bleu"] == pytest.approx(BLEU().corpus_score(preds[:3], streams).score)
    assert m["chrf"] == pytest.approx(CHRF().corpus_score(preds[:3], streams).score)
    squad = squad_scores(preds[:3], refs[:3])
    assert m["exact_match"] == pytest.approx(squad["exact_match"]) == pytest.approx(100 / 3)
    assert m["f1"] == pytest.approx(squad["f1"])


def test_references_default_to_the_last_assistant_message():
    task = get_task("chat-completion")
    rows = [{"messages": MULTI}, {"messages": MULTI, "references": ["a", "b"]}]
    split = ex(rows, split="test")
    assert task.references(split) == [["Ein Hund rennt am Strand."], ["a", "b"]]
    inputs = task.model_inputs(split)
    assert inputs[0][-1] == {"role": "user", "content": "Translate to German: A dog runs on the beach."}
    assert all("weight" not in m for m in inputs[0])
    assert task.predictions_for_metrics([{"generated_text": "x", "finish_reason": "stop"}]) == ["x"]
