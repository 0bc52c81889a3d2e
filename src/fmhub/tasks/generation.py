"""Shared parts of the text-to-text tasks (summarization, translation): row checks where an
empty target is reported and left out of training, encoding source -> labels, and batched
``generate`` for prediction. Works with any ``AutoModelForSeq2SeqLM`` (T5, BART, Marian, a
warm-started ``EncoderDecoderModel``) and with decoder-only causal LMs (see
:mod:`fmhub.tasks.causal_lm`: prompt -> target, loss masked on the prompt).

A target may be one string or a list of reference strings (multi-reference test sets): every
reference is a training pair, and the metrics score each prediction against all of its references.
"""

from __future__ import annotations

from typing import Any

from fmhub.data.problems import Problem, shorten_value
from fmhub.tasks import causal_lm
from fmhub.tasks.base import Examples, LabelInfo, Task

DEFAULT_GENERATION = {"num_beams": 1, "max_new_tokens": 64}


class Seq2SeqTask(Task):
    """Base of the text-to-text tasks; subclasses set ``name``, ``schema``, the source/target keys
    and ``compute_metrics``."""

    source_key: str
    target_key: str
    metric_for_best_model = "loss"
    greater_is_better = False
    metric_names: tuple[str, ...] = ()
    verb = "generate"

    def check_rows(self, examples: Examples) -> tuple[list[int], list[Problem]]:
        good, problems = [], []
        for i, (row, line) in enumerate(zip(examples.rows, examples.lines)):
            source, target = row.get(self.source_key), row.get(self.target_key)
            if isinstance(source, list) and all(isinstance(x, str) for x in source):
                source = row[self.source_key] = " ".join(x.strip() for x in source if x.strip())  # sentences
            if not isinstance(source, str) or not source.strip():
                problems.append(Problem(f"empty {self.source_key}: row left out (nothing to {self.verb})",
                                        file=examples.file, line=line, column=self.source_key,
                                        value=shorten_value("" if source is None else source), severity="warning"))
                continue
            if isinstance(target, list):  # several references (JSON/JSONL): keep the non-empty ones
                if not all(isinstance(t, str) for t in target):
                    problems.append(Problem(f"{self.target_key} must be a text or a list of texts",
                                            file=examples.file, line=line, column=self.target_key,
                                            value=shorten_value(target),
                                            hint="give one reference string, or a JSON array of strings"))
                    continue
                refs = [t for t in target if t.strip()]
                target = row[self.target_key] = refs if len(refs) > 1 else (refs[0] if refs else "")
            if not isinstance(target, list) and (not isinstance(target, str) or not target.strip()):
                row[self.target_key] = ""
                problems.append(Problem(f"empty {self.target_key}: left out of training and of the metrics, "
                                        "still predicted", file=examples.file, line=line, column=self.target_key,
                                        value=shorten_value("" if target is None else target), severity="warning"))
            good.append(i)
        return good, problems

    def label_info(self, train: Examples) -> LabelInfo:
        return LabelInfo()

    def check_splits(self, splits: dict[str, Examples], info: LabelInfo) -> list[Problem]:
        train = splits["train"]
        if len(train) and not any(row[self.target_key] for row in train.rows):
            return [Problem(f"no training row has a {self.target_key}", file=train.file, column=self.target_key,
                            hint="check the column mapping")]
        return []

    def distribution(self, examples: Examples) -> dict[str, int]:
        empty = sum(1 for row in examples.rows if not row[self.target_key])
        return {f"with {self.target_key}": len(examples) - empty, f"without {self.target_key}": empty}

    def texts_for_length(self, examples: Examples) -> list[Any]:
        return [row[self.source_key] for row in examples.rows]

    def load_model(self, path: str, info: LabelInfo | None, base_path: str | None = None) -> Any:
        """``AutoModelForSeq2SeqLM``, or ``AutoModelForCausalLM`` for a decoder-only config; a LoRA
        adapter folder is loaded on ``base_path`` (merged)."""
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

        from fmhub.tasks.adapters import is_adapter_folder, load_causal_lm

        if is_adapter_folder(path):
            return load_causal_lm(path, base_path)
        if causal_lm.is_causal_lm(AutoConfig.from_pretrained(path)):
            return AutoModelForCausalLM.from_pretrained(path)
        return AutoModelForSeq2SeqLM.from_pretrained(path)

    def instruction(self, options: dict[str, Any]) -> str:
        """The instruction in a causal LM's prompt (``options["instruction"]`` overrides it)."""
        return options.get("instruction") or "Rewrite the following text."

    answer_tag = "Answer:"

    def source_text(self, row: dict[str, Any], prefix: str = "") -> str:
        """The model input for a row (``prefix`` such as T5's ``summarize: `` in front)."""
        return prefix + row[self.source_key]

    def encode(self, examples: Examples, tokenizer: Any, info: LabelInfo, max_seq_length: int,
               **options: Any) -> Any:
        """Token ids and ``labels`` for rows that have a target (no padding), one pair per reference.

        With ``options["causal_lm"]`` the pair is one sequence (prompt + target + end token) whose
        ``labels`` are -100 on the prompt; otherwise ``input_ids`` is the source (at most
        ``max_seq_length`` tokens) and ``labels`` the target (at most ``max_target_length``, by
        default ``max_seq_length``).
        """
        from datasets import Dataset

        prefix = options.get("source_prefix") or ""
        pairs = [(self.source_text(r, prefix), t) for r in examples.rows for t in _as_list(r[self.target_key])]
        target_len = options.get("max_target_length") or max_seq_length
        if options.get("causal_lm"):
            causal_lm.ensure_pad_token(tokenizer)
            instruction = self.instruction({**info.extra, **options})
            rows = [causal_lm.encode_pair(tokenizer, causal_lm.build_prompt(
                tokenizer, instruction, causal_lm.truncate_source(tokenizer, src, max_seq_length)[0],
                self.answer_tag), tgt, target_len) for src, tgt in pairs]
            columns = {k: [r[k] for r in rows] for k in ("input_ids", "attention_mask", "labels")}
        else:
            enc = tokenizer([src for src, _ in pairs], truncation=True, max_length=max_seq_length)
            labels = tokenizer(text_target=[tgt for _, tgt in pairs], truncation=True, max_length=target_len)
            columns = {k: v for k, v in enc.items() if k != "token_type_ids"}
            columns["labels"] = labels["input_ids"]
        columns["length"] = [len(ids) for ids in columns["input_ids"]]
        return Dataset.from_dict(columns)

    def data_collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorForSeq2Seq

        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)

    def trainer_metrics(self, info: LabelInfo) -> Any:
        return None  # per-epoch validation reports the loss; generated-text metrics come after training

    def references(self, examples: Examples) -> list[str]:
        return [row[self.target_key] for row in examples.rows]

    def predictions_for_metrics(self, results: list[Any]) -> list[str]:
        return [r["generated_text"] for r in results]

    def model_inputs(self, examples: Examples) -> list[Any]:
        return [row[self.source_key] for row in examples.rows]

    score_params_names = ("num_beams", "max_new_tokens")

    def score_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """``num_beams`` (1-8) and ``max_new_tokens`` (1-512) for generation."""
        out: dict[str, Any] = {}
        if "num_beams" in params:
            value = params["num_beams"]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 8:
                raise ValueError("params.num_beams: expected an integer from 1 to 8")
            out["num_beams"] = value
        if "max_new_tokens" in params:
            value = params["max_new_tokens"]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 512:
                raise ValueError("params.max_new_tokens: expected an integer from 1 to 512")
            out["max_new_tokens"] = value
        return out

    def predict(self, model: Any, tokenizer: Any, inputs: list[Any], *, batch_size: int = 64,
                max_seq_length: int = 512, top_k: int = 1, **options: Any) -> list[dict[str, Any]]:
        """Generate a text per input string (beam search with ``num_beams``, up to ``max_new_tokens``).

        Returns:
            Per input ``{"generated_text", "truncated"}`` (``truncated`` when the input had more
            than ``max_seq_length`` tokens).
        """
        import torch

        from fmhub.tasks.batching import length_sorted_batches

        saved = {k[len("fmhub_"):]: v for k, v in model.config.to_dict().items() if k.startswith("fmhub_")}
        options = {**saved, **{k: v for k, v in options.items() if v is not None}}
        prefix = options.get("source_prefix") or ""
        generation = {k: options.get(k, v) for k, v in DEFAULT_GENERATION.items()}
        if options.get("length_penalty") is not None:
            generation["length_penalty"] = options["length_penalty"]
        texts = [prefix + str(x) for x in inputs]
        out: list[Any] = [None] * len(texts)
        device = next(model.parameters()).device
        model.eval()
        if causal_lm.is_causal_lm(model.config):
            return self._predict_causal(model, tokenizer, texts, batch_size, max_seq_length, options, generation)
        with torch.inference_mode():
            for idx in length_sorted_batches([len(t) for t in texts], batch_size):
                full = tokenizer([texts[i] for i in idx], truncation=False)["input_ids"]
                enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_seq_length, padding=True,
                                return_tensors="pt").to(device)
                enc.pop("token_type_ids", None)
                ids = model.generate(**enc, **generation)
                decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
                for row, i in enumerate(idx):
                    out[i] = {"generated_text": decoded[row].strip(), "truncated": len(full[row]) > max_seq_length}
        return out

    def _predict_causal(self, model: Any, tokenizer: Any, texts: list[str], batch_size: int, max_seq_length: int,
                        options: dict[str, Any], generation: dict[str, Any]) -> list[dict[str, Any]]:
        import torch

        from fmhub.tasks.batching import length_sorted_batches

        instruction = self.instruction(options)
        cut = [causal_lm.truncate_source(tokenizer, t, max_seq_length) for t in texts]
        prompts = [causal_lm.build_prompt(tokenizer, instruction, src, self.answer_tag) for src, _ in cut]
        out: list[Any] = [None] * len(texts)
        with torch.inference_mode():
            for idx in length_sorted_batches([len(p) for p in prompts], batch_size):
                generated = causal_lm.generate(model, tokenizer, [prompts[i] for i in idx], generation)
                for text, i in zip(generated, idx):
                    out[i] = {"generated_text": text, "truncated": cut[i][1]}
        return out


def _as_list(target: str | list[str]) -> list[str]:
    return [t for t in target if t] if isinstance(target, list) else ([target] if target else [])


def pairs_with_reference(predictions: list[str], references: list[str | list[str]]
                         ) -> tuple[list[str], list[list[str]]]:
    """Keep the predictions whose reference is not empty, each with its list of references.

    Returns:
        (predictions ``[n]``, references ``[n][refs_i]``), ``refs_i >= 1``.
    """
    kept = [(p, refs) for p, r in zip(predictions, references) if (refs := [x for x in _as_list(r) if x.strip()])]
    return [p for p, _ in kept], [r for _, r in kept]


def reference_streams(references: list[list[str]]) -> list[list[str | None]]:
    """sacreBLEU's layout: one stream per reference position, ``None`` where a row has fewer."""
    depth = max((len(r) for r in references), default=1)
    return [[r[k] if k < len(r) else None for r in references] for k in range(depth)]
