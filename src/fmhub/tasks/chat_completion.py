"""Chat completion: fine-tune a causal LM on conversations, loss on the assistant's replies only.

Rows are conversations (:mod:`fmhub.tasks.chat_rows`: ``messages``, ``prompt``/``completion`` or
``instruction``/``input``/``output``). Training renders each conversation with the model's chat
template (or the default ChatML one, :mod:`fmhub.tasks.chat_template`) and labels only the reply
tokens and the end-of-turn token that closes each reply; ``weight: 0`` replies are context.
Prediction (:mod:`fmhub.tasks.chat_generation`) generates the next assistant reply (greedy unless
sampling is asked for) and stops at the model's end-of-turn tokens. Metrics:
:mod:`fmhub.tasks.chat_metrics`.
"""

from __future__ import annotations

import logging
from typing import Any

from fmhub.data.labels import lines_text
from fmhub.data.problems import Problem, shorten_value
from fmhub.data.schema import TaskSchema
from fmhub.errors import SpecError
from fmhub.tasks.base import Examples, LabelInfo, Task
from fmhub.tasks.chat_metrics import chat_metrics
from fmhub.tasks.chat_rows import LAYOUT_HINT, RowChecker, has_layout
from fmhub.tasks.chat_generation import check_messages, generate_replies, prompt_messages
from fmhub.tasks.chat_template import (IGNORE_INDEX, ChatTemplateError, EncodedChat, encode_chats, end_of_turn_ids,
                                       ensure_chat_template, find_control_text, set_end_of_turn,
                                       special_token_texts, template_description)

log = logging.getLogger(__name__)

MAX_NEW_TOKENS_LIMIT = 4096
"""Largest ``max_new_tokens`` a scoring request may ask for."""


class ChatCompletion(Task):
    """Supervised fine-tuning of a chat model on conversations (``AutoModelForCausalLM``)."""

    name = "chat-completion"
    schema = TaskSchema(
        required=(),
        optional=("messages", "prompt", "completion", "instruction", "input", "output", "system", "references"),
        aliases={"messages": ("messages", "conversation", "conversations", "chat", "dialog"),
                 "prompt": ("prompt", "query"),
                 "completion": ("completion", "response", "answer"),
                 "instruction": ("instruction",),
                 "input": ("input",),
                 "output": ("output",),
                 "system": ("system", "system_prompt"),
                 "references": ("references",)},
        list_keys=("messages", "references"),
    )
    metric_for_best_model = "loss"
    greater_is_better = False
    zero_shot_baseline = True  # an instruct model answers untrained: fine-tunes are compared with it
    validation_predictions = False  # validation: token loss and perplexity; generation on test only
    metric_names = ()
    headline_metric = "rougeL"
    sample_train_file = ("train.jsonl", 'one {"messages": [{"role": ..., "content": ...}, ...]} object per line')
    # LoRA on every linear layer at lr 2e-4 (the QLoRA paper's and TRL's SFT examples), one epoch;
    # 1,024 tokens hold the longest conversations of the shared chat data.
    default_hyperparameters = {
        "finetuning_type": "lora",
        "learning_rate": 2e-4,
        "num_train_epochs": 1.0,
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16,
        "max_seq_length": 1024,
        "warmup_steps": 0.03,
        "weight_decay": 0.0,
        "lr_scheduler_type": "cosine",
    }

    def __init__(self) -> None:
        # (tokenizer, rows, their encodings) of the last splits encoded: the report's statistics
        # and ``encode`` share one tokenisation of a split
        self._encoded: list[tuple[Any, list[dict[str, Any]], int, list[EncodedChat | ChatTemplateError]]] = []

    # -- data checks -----------------------------------------------------------------------------
    def check_rows(self, examples: Examples) -> tuple[list[int], list[Problem]]:
        """Build each row's ``messages`` from its layout and check it (roles, contents, weights,
        order); problems name the line and the message (``messages[3].role``)."""
        keys = set(examples.columns) or {k for row in examples.rows for k in row}
        if examples.rows and not has_layout(keys):
            return [], [Problem(f"no conversation columns mapped (mapped: {sorted(keys) or 'none'})",
                                file=examples.file, hint=LAYOUT_HINT)]
        checker = RowChecker(examples.file, examples.columns, examples.split or "train")
        good: list[int] = []
        problems: list[Problem] = []
        for i, (row, line) in enumerate(zip(examples.rows, examples.lines)):
            kept, found = checker.check(row, line)
            problems.extend(found)
            if kept:
                good.append(i)
        return good, problems

    def label_info(self, train: Examples) -> LabelInfo:
        return LabelInfo()

    def check_splits(self, splits: dict[str, Examples], info: LabelInfo) -> list[Problem]:
        return []

    def distribution(self, examples: Examples) -> dict[str, int]:
        """Rows per number of assistant replies (``1 reply``, ``2 replies``, ``3-5 replies``, ``6+ replies``)."""
        out: dict[str, int] = {}
        for row in examples.rows:
            n = sum(1 for m in row.get("messages") or [] if m["role"] == "assistant")
            key = "no reply" if n == 0 else "1 reply" if n == 1 else "2 replies" if n == 2 else \
                "3-5 replies" if n <= 5 else "6+ replies"
            out[key] = out.get(key, 0) + 1
        order = ("no reply", "1 reply", "2 replies", "3-5 replies", "6+ replies")
        return {k: out[k] for k in order if k in out}

    def texts_for_length(self, examples: Examples) -> list[Any]:
        return [row["messages"] for row in examples.rows]

    def _encode_rows(self, tokenizer: Any, examples: Examples) -> list[EncodedChat | ChatTemplateError]:
        """The rows rendered and tokenised with labels (kept for the split's report and encode)."""
        for tok, rows, n, encoded in self._encoded:
            if tok is tokenizer and rows is examples.rows and n == len(rows):
                return encoded
        try:
            ensure_chat_template(tokenizer)
        except ChatTemplateError as exc:
            raise SpecError(f"{exc}: it cannot be fine-tuned for {self.name}",
                            hint="choose a causal language model (one with a chat template, or an eos token)") from None
        encoded = encode_chats(tokenizer, [r["messages"] for r in examples.rows], end_of_turn_ids(tokenizer))
        self._encoded = [*self._encoded[-2:], (tokenizer, examples.rows, len(examples.rows), encoded)]
        return encoded

    def token_counts(self, tokenizer: Any, examples: Examples) -> list[int]:
        """Tokens per row after the chat template (the whole conversation, untruncated)."""
        return [len(e.input_ids) if isinstance(e, EncodedChat) else 0 for e in self._encode_rows(tokenizer, examples)]

    def length_report(self, tokenizer: Any, examples: Examples, max_seq_length: int
                      ) -> tuple[list[str], list[Problem]]:
        """The chat template in use, messages per row, and what ``max_seq_length`` cuts: rows cut,
        rows that lose (part of) a reply, and, as warnings naming the line, rows that lose every
        labelled token (one warning naming their lines: left out of training) or that the template
        cannot render (errors)."""
        split = examples.split or "data"
        encoded = self._encode_rows(tokenizer, examples)
        notes: list[str] = []
        problems: list[Problem] = []
        if split == "train":
            notes.append(f"chat template: {template_description(tokenizer)}; loss on assistant replies and their "
                         "end-of-turn token only")
        turns = [len(row["messages"]) for row in examples.rows]
        if turns:
            kept = [e for e in encoded if isinstance(e, EncodedChat)]
            tokens = sum(min(len(e.input_ids), max_seq_length) for e in kept)
            labelled = sum(1 for e in kept for x in e.labels[:max_seq_length] if x != IGNORE_INDEX)
            learned = f"; {tokens:,} tokens, {labelled:,} of them in assistant replies" if split != "test" else ""
            notes.append(f"{split}: messages per row mean {sum(turns) / len(turns):.1f}, max {max(turns)}; "
                         f"{sum(1 for row in examples.rows if row['messages'][0]['role'] == 'system')} row(s) with "
                         f"a system message{learned}")
        cut = lose_part = 0
        lose_all: list[int] = []
        for e, line in zip(encoded, examples.lines):
            if isinstance(e, ChatTemplateError):
                problems.append(Problem(str(e), file=examples.file, line=line, column=examples.columns.get(
                    "messages", "messages"), hint="check the roles and their order for this model's chat template"))
                continue
            if len(e.input_ids) <= max_seq_length:
                continue
            cut += 1
            kept = sum(1 for x in e.labels[:max_seq_length] if x != IGNORE_INDEX)
            if kept < e.labelled:
                lose_part += 1
            if e.labelled and not kept:
                lose_all.append(line)
        if cut and split != "test":
            notes.append(f"{split}: {cut} of {len(encoded)} row(s) are longer than max_seq_length {max_seq_length} "
                         f"tokens and are cut at the end; {lose_part} of them lose (part of) an assistant reply")
        if lose_all and split != "test":
            where = "training" if split == "train" else f"the {split} loss"
            problems.append(Problem(f"{len(lose_all)} row(s) have every reply beyond max_seq_length {max_seq_length} "
                                    f"tokens and are left out of {where}: {lines_text(lose_all)}",
                                    file=examples.file, line=lose_all[0],
                                    column=examples.columns.get("messages", "messages"),
                                    hint="raise --max-seq-length, or shorten those conversations", severity="warning"))
        problems.extend(self._marker_warnings(tokenizer, examples))
        return notes, problems

    def _marker_warnings(self, tokenizer: Any, examples: Examples) -> list[Problem]:
        """One warning for the rows whose messages hold a special token's text (``<|im_end|>``):
        the tokenizer reads it as a turn marker, not as text."""
        markers = special_token_texts(tokenizer)
        if not markers:
            return []
        lines, found = [], None
        for row, line in zip(examples.rows, examples.lines):
            hit = find_control_text(row["messages"], markers)
            if hit:
                lines.append(line)
                found = found or hit[1]
        if not lines:
            return []
        return [Problem(f"{len(lines)} row(s) hold the text of a special token such as {found!r} in a message: the "
                        f"tokenizer reads it as a marker, not as text ({lines_text(lines)})", file=examples.file,
                        line=lines[0], column=examples.columns.get("messages", "messages"), value=shorten_value(found),
                        hint="remove the marker from the message text", severity="warning")]

    # -- model -----------------------------------------------------------------------------------
    def load_model(self, path: str, info: LabelInfo | None, base_path: str | None = None) -> Any:
        """An ``AutoModelForCausalLM``; an adapter folder is loaded on ``base_path`` (merged).

        For fine-tuning (``info`` given) the generation config gets the chat template's end-of-turn
        ids as ``eos_token_id`` (:func:`~fmhub.tasks.chat_template.set_end_of_turn`), so the saved
        model stops at the end of its reply.
        """
        from fmhub.tasks.adapters import load_causal_lm

        model = load_causal_lm(path, base_path)
        if info is not None:
            from transformers import AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(path)
            except (OSError, ValueError):
                return model  # no tokenizer in the folder: the caller's tokenizer decides at prediction
            try:
                ensure_chat_template(tokenizer)
            except ChatTemplateError:
                return model
            set_end_of_turn(model, tokenizer)
        return model

    def encode(self, examples: Examples, tokenizer: Any, info: LabelInfo, max_seq_length: int,
               **options: Any) -> Any:
        """``input_ids``, ``attention_mask``, ``labels`` (-100 but on assistant replies and their
        end-of-turn token) and ``length`` per row, cut to the first ``max_seq_length`` tokens.

        A tokenizer without a chat template gets the default one (saved with the model). Rows left
        without a labelled token (all replies cut, or ``weight: 0`` only) are dropped with a logged
        warning (the validation report names them).
        """
        from datasets import Dataset

        encoded = self._encode_rows(tokenizer, examples)
        columns: dict[str, list[Any]] = {"input_ids": [], "attention_mask": [], "labels": []}
        dropped = 0
        for e in encoded:
            if isinstance(e, ChatTemplateError):
                dropped += 1
                continue
            ids, labels = e.input_ids[:max_seq_length], e.labels[:max_seq_length]
            if all(x == IGNORE_INDEX for x in labels):
                dropped += 1
                continue
            columns["input_ids"].append(ids)
            columns["attention_mask"].append([1] * len(ids))
            columns["labels"].append(labels)
        if dropped:
            log.warning("%s: %d row(s) without an assistant token within max_seq_length %d left out of the %s data",
                        examples.file, dropped, max_seq_length, examples.split or "training")
        columns["length"] = [len(ids) for ids in columns["input_ids"]]
        return Dataset.from_dict(columns)

    def data_collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorForSeq2Seq

        ensure_chat_template(tokenizer)  # also gives a padding token
        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX)

    # -- metrics ---------------------------------------------------------------------------------
    def compute_metrics(self, predictions: list[str], references: list[Any], info: LabelInfo | None
                        ) -> dict[str, Any]:
        """rougeL, rougeLsum, bleu, chrf, exact_match, f1 and n (:func:`chat_metrics`)."""
        return chat_metrics(predictions, references)

    def trainer_metrics(self, info: LabelInfo) -> Any:
        return None  # per-epoch validation reports the loss; generation metrics come after training

    def references(self, examples: Examples) -> list[list[str]]:
        """Per row ``references`` when given, else its last assistant message (else none)."""
        out = []
        for row in examples.rows:
            refs = row.get("references")
            if refs:
                out.append(list(refs))
            elif row["messages"] and row["messages"][-1]["role"] == "assistant":
                out.append([row["messages"][-1]["content"]])
            else:
                out.append([])
        return out

    def predictions_for_metrics(self, results: list[Any]) -> list[str]:
        return [r["generated_text"] for r in results]

    def model_inputs(self, examples: Examples) -> list[Any]:
        """Each row's messages without its final assistant reply (the reference)."""
        return [prompt_messages(row["messages"]) for row in examples.rows]

    # -- scoring ---------------------------------------------------------------------------------
    score_input_doc = 'a list of messages [{"role": "system"|"user"|"assistant", "content": string}], or a string'
    score_example = [[{"role": "user", "content": "Translate to German: A dog runs on the beach."}]]
    score_response_example = [{"generated_text": "Ein Hund rennt am Strand.", "finish_reason": "stop",
                               "truncated": False}]
    score_params_names = ("max_new_tokens", "temperature", "top_p", "do_sample")

    def check_score_input(self, value: Any) -> Any:
        """A message list (or ``{"messages": [...]}``, or a string: one user message).

        Raises:
            ValueError: naming the message index and field that is wrong.
        """
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("expected a non-empty text")
            return [{"role": "user", "content": value}]
        if isinstance(value, dict) and isinstance(value.get("messages"), list):
            value = value["messages"]
        if not isinstance(value, list) or not value:
            raise ValueError(f"expected {self.score_input_doc}")
        return check_messages(value)

    def hf_object_input(self, obj: dict[str, Any]) -> Any:
        """``{"messages": [...]}`` is one input."""
        return obj["messages"] if isinstance(obj.get("messages"), list) else None

    def column_plan(self, columns: list[str], key: str) -> Any:
        """A ``messages`` column (or its aliases), else the only column."""
        at = self._find_column(columns, "messages")
        if at is not None:
            return at
        if len(columns) == 1:
            return 0
        raise SpecError(f"{key}.columns {columns}: {self.name} takes one messages column",
                        hint="send one column named messages, holding a list of {role, content} objects")

    def score_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """``max_new_tokens`` (1-4096), ``temperature`` (0-2), ``top_p`` (0-1], ``do_sample`` (bool).

        Raises:
            ValueError: a value of the wrong type or out of range.
        """
        out: dict[str, Any] = {}
        if "max_new_tokens" in params:
            value = params["max_new_tokens"]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_NEW_TOKENS_LIMIT:
                raise ValueError(f"params.max_new_tokens: expected an integer from 1 to {MAX_NEW_TOKENS_LIMIT}")
            out["max_new_tokens"] = value
        if "temperature" in params:
            value = params["temperature"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 2:
                raise ValueError("params.temperature: expected a number from 0 to 2")
            out["temperature"] = float(value)
        if "top_p" in params:
            value = params["top_p"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ValueError("params.top_p: expected a number above 0 and at most 1")
            out["top_p"] = float(value)
        if "do_sample" in params:
            if not isinstance(params["do_sample"], bool):
                raise ValueError("params.do_sample: expected true or false")
            out["do_sample"] = params["do_sample"]
        return out

    def predict(self, model: Any, tokenizer: Any, inputs: list[Any], *, batch_size: int = 64,
                max_seq_length: int = 1024, top_k: int = 1, **options: Any) -> list[dict[str, Any]]:
        """Generate the next assistant reply per message list (batched, longest prompts first).

        An input ending on an assistant message loses that message (it is the reference). The
        prompt is the chat template with the generation prompt; one longer than ``max_seq_length``
        tokens keeps its last ``max_seq_length`` tokens. Generation is greedy unless ``do_sample``
        (or a ``temperature`` above 0 without ``do_sample``), with ``max_new_tokens`` (default
        :data:`~fmhub.tasks.chat_generation.DEFAULT_MAX_NEW_TOKENS`), and stops at the end-of-turn
        ids of the model's generation config and of the chat template.

        Returns:
            Per input ``{"generated_text", "finish_reason": "stop" | "length", "truncated"}``.
        """
        return generate_replies(model, tokenizer, inputs, batch_size=batch_size, max_seq_length=max_seq_length,
                                options=options)
