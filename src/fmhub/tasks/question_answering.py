"""Extractive question answering (SQuAD layout): find the answer span in the context.

Keys: ``question``, ``context``, ``answers`` (``{"text": [...], "answer_start": [...]}``; the nested
``answers.text`` / ``answers.answer_start`` can be mapped from separate columns). An empty answer
list marks an unanswerable question and switches on SQuAD v2 behaviour (a null answer wins when its
score beats the best span). Long contexts are split into windows of ``max_seq_length`` tokens that
overlap by ``doc_stride`` tokens, so no answer is lost to truncation. Metrics: exact_match and f1
with the SQuAD normalisation (0-100), plus HasAns_/NoAns_ figures for v2 data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fmhub.data.problems import Problem, shorten_value
from fmhub.data.schema import TaskSchema
from fmhub.errors import SpecError
from fmhub.tasks.base import Examples, LabelInfo, Task
from fmhub.tasks.iob import parse_list_cell
from fmhub.tasks.squad_metrics import squad_scores

N_BEST_SIZE = 20          # candidate starts and ends per window (SQuAD reference post-processing)
MAX_ANSWER_LENGTH = 30    # tokens
DEFAULT_DOC_STRIDE = 128  # tokens; transformers run_qa.py default


def _as_answers(value: Any) -> tuple[dict[str, list[Any]] | None, str | None]:
    """Normalise the answers cell to ``{"text": [...], "answer_start": [...]}``."""
    if isinstance(value, str):
        parsed, why = parse_list_cell(value) if value.strip().startswith("[") else (None, None)
        if parsed is None and why is None:
            import json

            try:
                value = json.loads(value)
            except ValueError:
                return None, "expected an object {\"text\": [...], \"answer_start\": [...]}"
        else:
            value = parsed
    if isinstance(value, list):  # [{"text": ..., "answer_start": ...}, ...]
        if not all(isinstance(a, dict) for a in value):
            return None, "a list of answers must hold objects with text and answer_start"
        value = {"text": [a.get("text") for a in value], "answer_start": [a.get("answer_start") for a in value]}
    if not isinstance(value, dict):
        return None, "expected an object {\"text\": [...], \"answer_start\": [...]}"
    texts, starts = value.get("text", []), value.get("answer_start", [])
    texts = [texts] if isinstance(texts, str) else list(texts or [])
    starts = [starts] if isinstance(starts, (int, float)) else list(starts or [])
    if len(texts) != len(starts):
        return None, f"{len(texts)} answer texts but {len(starts)} answer_start values"
    try:
        starts = [int(s) for s in starts]
    except (TypeError, ValueError):
        return None, "answer_start values must be integers (character offsets)"
    return {"text": [str(t) for t in texts], "answer_start": starts}, None


class QuestionAnswering(Task):
    """Extractive QA with ``AutoModelForQuestionAnswering`` (start and end logits per token)."""

    name = "question-answering"
    schema = TaskSchema(
        required=("question", "context", "answers"),
        optional=("answers.text", "answers.answer_start"),
        aliases={"question": ("question", "query", "q"), "context": ("context", "passage", "paragraph", "document"),
                 "answers": ("answers", "answer")},
    )
    metric_for_best_model = "loss"
    greater_is_better = False
    metric_names = ()
    headline_metric = "f1"
    runtime_checked = True
    sample_train_file = ("train.jsonl",
                         'one {"question", "context", "answers": {"text": [...], "answer_start": [...]}} per line')
    # transformers run_qa.py: lr 3e-5..5e-5, batch 12-32, max_seq_length 384, doc_stride 128, 2 epochs.
    default_hyperparameters = {
        "learning_rate": 5e-5,
        "num_train_epochs": 2.0,
        "per_device_train_batch_size": 32,
        "max_seq_length": 384,
        "doc_stride": DEFAULT_DOC_STRIDE,
        "warmup_steps": 0.06,
        "weight_decay": 0.01,
    }

    # -- data checks ---------------------------------------------------------------------------
    def check_rows(self, examples: Examples) -> tuple[list[int], list[Problem]]:
        good, problems = [], []
        for i, (row, line) in enumerate(zip(examples.rows, examples.lines)):
            bad = False
            for key in ("question", "context"):
                v = row.get(key)
                if not isinstance(v, str) or not v.strip():
                    problems.append(Problem(f"empty {key}", file=examples.file, line=line, column=key,
                                            value=shorten_value(v), hint="fill it in or remove the row"))
                    bad = True
            answers, why = _as_answers(row.get("answers"))
            if why:
                problems.append(Problem(f"answers: {why}", file=examples.file, line=line, column="answers",
                                        value=shorten_value(row.get("answers"))))
                bad = True
            if bad:
                continue
            context = row["context"]
            for k, (text, start) in enumerate(zip(answers["text"], answers["answer_start"])):
                if context[start:start + len(text)] == text:
                    continue
                where = [j for j in range(len(context)) if context.startswith(text, j)] if text else []
                if len(where) == 1:
                    answers["answer_start"][k] = where[0]
                    problems.append(Problem(f"answer_start {start} does not point at {text!r}; corrected to "
                                            f"{where[0]} (the only occurrence)", file=examples.file, line=line,
                                            column="answers.answer_start", value=shorten_value(start),
                                            severity="warning"))
                    continue
                why = "occurs several times" if where else "does not occur in the context"
                problems.append(Problem(f"answer_start {start} does not point at the answer {text!r}, which {why}",
                                        file=examples.file, line=line, column="answers.answer_start",
                                        value=shorten_value(start), hint="fix the character offset of the answer"))
                bad = True
            row["answers"] = answers
            if not bad:
                good.append(i)
        return good, [p for p in problems]

    def label_info(self, train: Examples) -> LabelInfo:
        v2 = any(not row["answers"]["text"] for row in train.rows)
        return LabelInfo(labels=[], extra={"version_2": v2})

    def check_splits(self, splits: dict[str, Examples], info: LabelInfo) -> list[Problem]:
        return []

    def distribution(self, examples: Examples) -> dict[str, int]:
        unanswerable = sum(1 for row in examples.rows if not row["answers"]["text"])
        return {"answerable": len(examples) - unanswerable, "unanswerable": unanswerable}

    def texts_for_length(self, examples: Examples) -> list[Any]:
        return [[row["question"], row["context"]] for row in examples.rows]

    # -- model ---------------------------------------------------------------------------------
    def load_model(self, path: str, info: LabelInfo | None, base_path: str | None = None) -> Any:
        from transformers import AutoModelForQuestionAnswering

        return AutoModelForQuestionAnswering.from_pretrained(path)

    def _windows(self, tokenizer: Any, questions: list[str], contexts: list[str], max_seq_length: int,
                 doc_stride: int) -> Any:
        """Tokenize (question, context) pairs into windows of ``max_seq_length`` tokens.

        A question keeps at most half of ``max_seq_length`` (longer ones are cut at a token
        boundary), and the overlap between windows is at most half the room left for the context,
        so each window moves on by at least a quarter of ``max_seq_length`` tokens: the number of
        windows stays proportional to the context's length. (Without these bounds a question of
        nearly ``max_seq_length`` tokens made the Rust tokenizer panic, and one just under it made
        hundreds of windows of a short context.)
        """
        questions = [q.lstrip() for q in questions]
        specials = tokenizer.num_special_tokens_to_add(pair=True)
        most = max(1, max_seq_length // 2)
        asked = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
        longest = 0
        for i, offsets in enumerate(asked["offset_mapping"]):
            if len(offsets) > most:
                questions[i] = questions[i][:offsets[most - 1][1]]
            longest = max(longest, min(len(offsets), most))
        room = max(1, max_seq_length - longest - specials)
        stride = max(0, min(doc_stride, room // 2))
        return tokenizer(questions, contexts, truncation="only_second",
                         max_length=max_seq_length, stride=stride, return_overflowing_tokens=True,
                         return_offsets_mapping=True)

    def encode(self, examples: Examples, tokenizer: Any, info: LabelInfo, max_seq_length: int,
               **options: Any) -> Any:
        """Windows with ``start_positions``/``end_positions`` (the [CLS] index when the answer is
        not inside a window), as transformers' ``run_qa.py`` prepares training features."""
        from datasets import Dataset

        stride = options.get("doc_stride") or DEFAULT_DOC_STRIDE
        rows = examples.rows
        enc = self._windows(tokenizer, [r["question"] for r in rows], [r["context"] for r in rows],
                            max_seq_length, stride)
        starts, ends = [], []
        for w, offsets in enumerate(enc["offset_mapping"]):
            cls = enc["input_ids"][w].index(tokenizer.cls_token_id) if tokenizer.cls_token_id in enc["input_ids"][w] else 0
            seq = enc.sequence_ids(w)
            answers = rows[enc["overflow_to_sample_mapping"][w]]["answers"]
            if not answers["text"]:
                starts.append(cls), ends.append(cls)
                continue
            a_start = answers["answer_start"][0]
            a_end = a_start + len(answers["text"][0])
            first = seq.index(1)
            last = len(seq) - 1 - seq[::-1].index(1)
            if not (offsets[first][0] <= a_start and offsets[last][1] >= a_end):
                starts.append(cls), ends.append(cls)
                continue
            s = first
            while s <= last and offsets[s][0] <= a_start:
                s += 1
            e = last
            while e >= first and offsets[e][1] >= a_end:
                e -= 1
            starts.append(s - 1), ends.append(e + 1)
        columns = {k: enc[k] for k in enc.keys() if k not in ("offset_mapping", "overflow_to_sample_mapping")}
        columns["start_positions"], columns["end_positions"] = starts, ends
        columns["length"] = [len(ids) for ids in enc["input_ids"]]
        return Dataset.from_dict(columns)

    def data_collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    # -- metrics -------------------------------------------------------------------------------
    def compute_metrics(self, predictions: list[str], references: list[list[str]], info: LabelInfo) -> dict[str, Any]:
        """SQuAD exact_match and f1 (0-100); HasAns_/NoAns_ when some questions are unanswerable."""
        return {**squad_scores(predictions, references), "n": len(references)}

    def trainer_metrics(self, info: LabelInfo) -> Any:
        return None  # per-epoch validation reports the loss; span metrics come after training

    def references(self, examples: Examples) -> list[list[str]]:
        return [row["answers"]["text"] for row in examples.rows]

    def predictions_for_metrics(self, results: list[Any]) -> list[str]:
        return [r["answer"] for r in results]

    def model_inputs(self, examples: Examples) -> list[Any]:
        return [{"question": row["question"], "context": row["context"]} for row in examples.rows]

    # -- scoring -------------------------------------------------------------------------------
    score_input_doc = 'an object {"question": string, "context": string}'
    score_example = [{"question": "Where was Ada born?", "context": "Ada Lovelace was born in London in 1815."}]
    score_response_example = [{"answer": "London", "score": 0.93, "start": 25, "end": 31, "truncated": False}]

    def check_score_input(self, value: Any) -> Any:
        """A ``{"question", "context"}`` object of two strings (see :meth:`Task.check_score_input`)."""
        if isinstance(value, dict) and isinstance(value.get("question"), str) and \
                isinstance(value.get("context"), str) and set(value) <= {"question", "context"}:
            return {"question": value["question"], "context": value["context"]}
        raise ValueError(f"expected {self.score_input_doc}")

    def hf_object_input(self, obj: dict[str, Any]) -> Any:
        """``{"question", "context"}`` is one input (see :meth:`Task.hf_object_input`)."""
        return obj if set(obj) == {"question", "context"} else None

    def column_plan(self, columns: list[str], key: str) -> Any:
        """A ``question`` and a ``context`` column (or their aliases; else the two columns in
        order); see :meth:`Task.column_plan`."""
        q, c = self._find_column(columns, "question"), self._find_column(columns, "context")
        if q is None or c is None or q == c:
            if len(columns) == 2:
                q, c = 0, 1
            else:
                raise SpecError(f"{key}.columns {columns} name no question and context column",
                                hint='name them "question" and "context"')
        return {"question": q, "context": c}

    def encode_response(self, raw: list[Any], truncated: list[bool]) -> list[dict[str, Any]]:
        """``{"answer", "score", "start", "end", "truncated"}`` per input (truncated: the context
        needed more than one window)."""
        return [{**{k: pred[k] for k in ("answer", "score", "start", "end")}, "truncated": pred.get("windows", 1) > 1}
                for pred in raw]

    # -- prediction ----------------------------------------------------------------------------
    def predict(self, model: Any, tokenizer: Any, inputs: list[Any], *, batch_size: int = 64,
                max_seq_length: int = 384, top_k: int = 1, **options: Any) -> list[dict[str, Any]]:
        """Answer ``{"question", "context"}`` inputs.

        Every window of a context is scored; the best span over all windows wins (up to
        ``N_BEST_SIZE`` starts/ends per window, at most ``MAX_ANSWER_LENGTH`` tokens). With
        ``version_2`` (option) an empty answer wins when the null score ([CLS] start + end)
        beats the best span.

        Returns:
            Per input ``{"answer", "score", "start", "end"}`` (character offsets in the context;
            ``answer`` "" and ``start``/``end`` None for no answer), and ``"windows"``.
        """
        import torch

        from fmhub.tasks.batching import length_sorted_batches

        stride = options.get("doc_stride") or DEFAULT_DOC_STRIDE
        version_2 = bool(options.get("version_2", getattr(model.config, "fmhub_version_2", False)))
        questions = [str(x["question"]) for x in inputs]
        contexts = [str(x["context"]) for x in inputs]
        if not inputs:
            return []
        enc = self._windows(tokenizer, questions, contexts, max_seq_length, stride)
        n_windows = len(enc["input_ids"])
        start_logits: list[Any] = [None] * n_windows
        end_logits: list[Any] = [None] * n_windows
        device = next(model.parameters()).device
        model.eval()
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        with torch.inference_mode():
            for idx in length_sorted_batches([len(x) for x in enc["input_ids"]], batch_size):
                batch = tokenizer.pad({k: [enc[k][i] for i in idx] for k in keys}, return_tensors="pt").to(device)
                out = model(**batch)
                for row, i in enumerate(idx):
                    n = len(enc["input_ids"][i])
                    start_logits[i] = out.start_logits[row, :n].float().cpu().numpy()
                    end_logits[i] = out.end_logits[row, :n].float().cpu().numpy()
        best: list[dict[str, Any]] = [{"score": -math.inf, "null": math.inf, "windows": 0} for _ in inputs]
        for w in range(n_windows):
            ex = enc["overflow_to_sample_mapping"][w]
            b = best[ex]
            b["windows"] += 1
            s_log, e_log, offsets, seq = start_logits[w], end_logits[w], enc["offset_mapping"][w], enc.sequence_ids(w)
            b["null"] = min(b["null"], float(s_log[0] + e_log[0]))
            for s in np.argsort(s_log)[::-1][:N_BEST_SIZE]:
                if seq[s] != 1:
                    continue
                for e in np.argsort(e_log)[::-1][:N_BEST_SIZE]:
                    if seq[e] != 1 or e < s or e - s + 1 > MAX_ANSWER_LENGTH:
                        continue
                    score = float(s_log[s] + e_log[e])
                    if score > b["score"]:
                        b.update(score=score, start=offsets[s][0], end=offsets[e][1])
        results = []
        for b, context in zip(best, contexts):
            if "start" not in b or (version_2 and b["null"] > b["score"]):
                results.append({"answer": "", "score": None, "start": None, "end": None, "windows": b["windows"]})
                continue
            prob = 1.0 / (1.0 + math.exp(min(50.0, b["null"] - b["score"])))
            results.append({"answer": context[b["start"]:b["end"]], "score": round(prob, 4), "start": b["start"],
                            "end": b["end"], "windows": b["windows"]})
        return results
