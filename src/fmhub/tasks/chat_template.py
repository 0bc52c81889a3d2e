"""Chat templates: rendering a conversation, the assistant-only loss mask, the end-of-turn tokens.

The mask is computed from the text the model's own chat template renders, so training sees exactly
the tokens that inference sees. For each assistant message the template is rendered up to that
message with the generation prompt (``<|im_start|>assistant\\n``): the reply starts where that
prefix ends. The rendered conversation is tokenised once with the fast tokenizer's character
offsets; the tokens that overlap a reply's characters are labelled, and so is the first
end-of-turn token after the reply (the model learns to stop). Everything else, and the replies of
messages with ``weight: 0``, is -100.

A tokenizer without a chat template (a base model) gets :func:`default_chat_template` (ChatML,
ending each turn with ``<|im_end|>`` when the vocabulary has it, else with the tokenizer's
end-of-sequence token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IGNORE_INDEX = -100
"""Label of positions the loss skips (transformers' convention)."""

ROLES = ("system", "user", "assistant")
"""The roles a message may have."""

CHATML_END = "<|im_end|>"
CHATML_START = "<|im_start|>"

#: End-of-turn tokens of well-known chat templates (ChatML, Llama 3, Phi-3, Gemma, Mistral ...),
#: recognised when the rendered template ends an assistant turn with one of them.
KNOWN_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>",
                     "<|end_of_text|>", "<|eom_id|>")

#: A throwaway reply used to find the token that ends an assistant turn.
_PROBE_REPLY = "fmhub probe reply"

TEMPLATE_OWN = "the model's chat template"


class ChatTemplateError(ValueError):
    """The chat template renders a conversation in a way the mask cannot follow (a reply is not
    found in the rendered text), or fails on it."""


def default_chat_template(tokenizer: Any) -> str:
    """The ChatML template for a tokenizer without one (``<|im_start|>role\\ncontent<|im_end|>\\n``).

    The end of a turn is ``<|im_end|>`` when the vocabulary has it as one token, else the
    tokenizer's end-of-sequence token (so the model stops where ``generate`` stops).

    Raises:
        ChatTemplateError: the tokenizer has neither ``<|im_end|>`` nor an end-of-sequence token.
    """
    end = default_end_of_turn(tokenizer)
    end_js = end.replace("\\", "\\\\").replace("'", "\\'")
    return ("{% for message in messages %}{{ '" + CHATML_START + "' + message['role'] + '\\n' + message['content'] + '"
            + end_js + "' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '" + CHATML_START
            + "assistant\\n' }}{% endif %}")


def default_end_of_turn(tokenizer: Any) -> str:
    """``<|im_end|>`` when the vocabulary has it as a single token, else the eos token's text (or
    the separator token's, for vocabularies without an eos token).

    Raises:
        ChatTemplateError: none of these tokens exists.
    """
    vocab_id = tokenizer.convert_tokens_to_ids(CHATML_END)
    if isinstance(vocab_id, int) and vocab_id != tokenizer.unk_token_id and vocab_id is not None and vocab_id >= 0:
        return CHATML_END
    for token in (tokenizer.eos_token, getattr(tokenizer, "sep_token", None)):
        if token:
            return str(token)
    raise ChatTemplateError("the tokenizer has no chat template, no <|im_end|> token and no end-of-sequence token")


def ensure_chat_template(tokenizer: Any) -> str:
    """Give a tokenizer without a chat template :func:`default_chat_template` (kept when the
    tokenizer is saved with the model), and a padding token when it has none.

    Returns:
        Which template is in use, for the report: :data:`TEMPLATE_OWN`, or a description of the
        default ChatML template and its end-of-turn token.
    """
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = default_chat_template(tokenizer)
    return template_description(tokenizer)


def template_description(tokenizer: Any) -> str:
    """Which template a tokenizer uses, without changing it: :data:`TEMPLATE_OWN`, or the default
    ChatML one (given by :func:`ensure_chat_template`, or to be given)."""
    template = getattr(tokenizer, "chat_template", None)
    if template and template != default_chat_template(tokenizer):
        return TEMPLATE_OWN
    return f"the default ChatML template (the model has none; turns end with {default_end_of_turn(tokenizer)})"


def plain_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """``{"role", "content"}`` only (templates must not see ``weight``)."""
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def render(tokenizer: Any, messages: list[dict[str, Any]], add_generation_prompt: bool = False) -> str:
    """The conversation as the chat template writes it (no tokenisation).

    Raises:
        ChatTemplateError: the template fails on this conversation (e.g. roles that must alternate).
    """
    try:
        return tokenizer.apply_chat_template(plain_messages(messages), tokenize=False,
                                             add_generation_prompt=add_generation_prompt)
    except Exception as exc:  # jinja's TemplateError and raise_exception() calls inside templates
        raise ChatTemplateError(f"the chat template fails on this conversation: {exc}") from None


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    """The token ids that end an assistant turn: the end-of-sequence token, and the token the chat
    template writes after a reply when that is another one (e.g. ``<|eot_id|>``, ``<|end|>``).

    Returns:
        ``[eos, end_of_turn]`` without duplicates (SmolLM2: ``[2]``, ``<|im_end|>`` being its eos).
    """
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    if not getattr(tokenizer, "chat_template", None):
        end = tokenizer.convert_tokens_to_ids(default_end_of_turn(tokenizer))
        return ids + [int(end)] if isinstance(end, int) and end not in ids else ids
    probe = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": _PROBE_REPLY}]
    try:
        text = render(tokenizer, probe)
    except ChatTemplateError:
        return ids
    at = text.rfind(_PROBE_REPLY)
    if at < 0:
        return ids
    reply_end = at + len(_PROBE_REPLY)
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        tokens = enc["input_ids"]
        first = next((j for j, (start, _) in enumerate(enc["offset_mapping"]) if start >= reply_end), len(tokens))
    else:
        tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
        first = len(tokenizer(text[:reply_end], add_special_tokens=False)["input_ids"])
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    special |= {int(i) for i in (getattr(tokenizer, "added_tokens_decoder", None) or {})}
    for token in tokens[first:]:
        piece = tokenizer.convert_ids_to_tokens(token)
        if token in special or piece in KNOWN_END_OF_TURN:
            if token not in ids:
                ids.append(int(token))
            break
        if piece.strip() and not set(piece) <= {"Ġ", "Ċ", "▁", " ", "\n"}:
            break  # a non-special, non-space token after the reply: no end-of-turn token to add
    return ids


def special_token_texts(tokenizer: Any) -> set[str]:
    """The texts of the tokenizer's special tokens (``<|im_start|>``, ``</s>`` ...) that a message's
    content should not hold (the tokenizer would read them as markers)."""
    texts = set(getattr(tokenizer, "all_special_tokens", []) or [])
    for token in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        if getattr(token, "special", False):
            texts.add(str(token.content))
    return {t for t in texts if t and len(t) > 1}


def find_control_text(messages: list[dict[str, Any]], markers: set[str] | list[str]) -> tuple[int, str] | None:
    """The first message whose content holds one of ``markers`` (:func:`special_token_texts`), as
    ``(message index, marker)``: the marker first in that content, the longest where two start at
    the same place. None when no message holds one."""
    for i, message in enumerate(messages):
        content = message.get("content") or ""
        found = [(content.index(m), -len(m), m) for m in markers if m in content]
        if found:
            return i, min(found)[2]
    return None


def set_end_of_turn(model_or_config: Any, tokenizer: Any) -> list[int]:
    """Write :func:`end_of_turn_ids` into a generation config as ``eos_token_id`` (a list when
    several), so that ``generate`` and serving stop at the end of the assistant's turn; also set
    ``pad_token_id`` when it is missing.

    Args:
        model_or_config: A model (its ``generation_config`` is changed) or a ``GenerationConfig``.
        tokenizer: The model's tokenizer (with its chat template).

    Returns:
        The end-of-turn ids written (existing eos ids of the config are kept, first).
    """
    config = getattr(model_or_config, "generation_config", model_or_config)
    current = config.eos_token_id
    existing = [] if current is None else ([int(x) for x in current] if isinstance(current, (list, tuple))
                                           else [int(current)])
    ids = list(dict.fromkeys([*existing, *end_of_turn_ids(tokenizer)]))
    config.eos_token_id = ids[0] if len(ids) == 1 else ids
    if getattr(config, "pad_token_id", None) is None:
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (ids[0] if ids else None)
        config.pad_token_id = pad
    return ids


@dataclass
class EncodedChat:
    """One conversation tokenised with its assistant-only labels.

    Attributes:
        input_ids: ``[seq_len]`` token ids of the rendered conversation (not truncated).
        labels: ``[seq_len]``: the token id on labelled positions, :data:`IGNORE_INDEX` elsewhere.
    """

    input_ids: list[int]
    labels: list[int]

    @property
    def labelled(self) -> int:
        """How many positions count in the loss."""
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


def reply_spans(tokenizer: Any, messages: list[dict[str, Any]], text: str) -> list[tuple[int, int, bool]]:
    """Character spans of the assistant replies inside ``text`` (the rendered conversation).

    Returns:
        Per assistant message ``(start, end, labelled)``; ``labelled`` is False for ``weight: 0``.

    Raises:
        ChatTemplateError: a reply cannot be found in the rendered text.
    """
    spans: list[tuple[int, int, bool]] = []
    cursor = 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = cursor
        try:
            head = render(tokenizer, messages[:i], add_generation_prompt=True) if i else None
        except ChatTemplateError:
            head = None
        if head is not None and text.startswith(head) and len(head) >= cursor:
            start = len(head)
        content = message["content"]
        at = text.find(content, start)
        if at < 0:
            content = content.strip()
            at = text.find(content, start) if content else -1
        if at < 0:
            raise ChatTemplateError(f"assistant message {i} is not found in the text the chat template renders")
        spans.append((at, at + len(content), message.get("weight", 1) != 0))
        cursor = at + len(content)
    return spans


def encode_chats(tokenizer: Any, conversations: list[list[dict[str, Any]]], end_ids: list[int],
                 chunk: int = 512) -> list[EncodedChat | ChatTemplateError]:
    """Render and tokenise conversations with assistant-only labels.

    Args:
        tokenizer: A tokenizer with a chat template (see :func:`ensure_chat_template`); a fast one
            maps tokens to characters, a slow one is followed by token counts of prefixes.
        conversations: Checked message lists (roles and contents valid).
        end_ids: :func:`end_of_turn_ids` of the tokenizer: the first of them after a reply is
            labelled with it.
        chunk: Conversations tokenised per call.

    Returns:
        Per conversation an :class:`EncodedChat`, or the :class:`ChatTemplateError` that kept it
        from being encoded.
    """
    out: list[EncodedChat | ChatTemplateError] = []
    ends = set(end_ids)
    if not getattr(tokenizer, "is_fast", False):  # no character offsets: token counts of prefixes
        for messages in conversations:
            try:
                out.append(_encode_by_prefixes(tokenizer, messages, ends))
            except ChatTemplateError as exc:
                out.append(exc)
        return out
    for begin in range(0, len(conversations), chunk):
        part = conversations[begin:begin + chunk]
        texts: list[str] = []
        spans: list[list[tuple[int, int, bool]] | ChatTemplateError] = []
        for messages in part:
            try:
                text = render(tokenizer, messages)
                spans.append(reply_spans(tokenizer, messages, text))
            except ChatTemplateError as exc:
                text = ""
                spans.append(exc)
            texts.append(text)
        enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True,
                        return_attention_mask=False, return_token_type_ids=False)
        for ids, offsets, row_spans in zip(enc["input_ids"], enc["offset_mapping"], spans):
            if isinstance(row_spans, ChatTemplateError):
                out.append(row_spans)
                continue
            out.append(_label(ids, offsets, row_spans, ends))
    return out


def _label(ids: list[int], offsets: list[tuple[int, int]], spans: list[tuple[int, int, bool]],
           ends: set[int]) -> EncodedChat:
    """Label the tokens overlapping each labelled reply span, and the end-of-turn token after it."""
    labels = [IGNORE_INDEX] * len(ids)
    t = 0
    for k, (start, end, labelled) in enumerate(spans):
        limit = spans[k + 1][0] if k + 1 < len(spans) else None
        while t < len(ids) and offsets[t][1] <= start:
            t += 1
        while t < len(ids) and offsets[t][0] < end:
            if labelled:
                labels[t] = ids[t]
            t += 1
        j = t  # the end-of-turn token that closes the reply (before the next reply starts)
        while j < len(ids) and (limit is None or offsets[j][0] < limit):
            if ids[j] in ends:
                if labelled:
                    labels[j] = ids[j]
                break
            j += 1
    return EncodedChat(list(ids), labels)


def _encode_by_prefixes(tokenizer: Any, messages: list[dict[str, Any]], ends: set[int]) -> EncodedChat:
    """Labels for a tokenizer without character offsets: a reply starts after the tokens of the
    conversation up to it with the generation prompt, and runs to its first end-of-turn token (or
    to the end of the conversation up to and with it)."""
    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    full = ids(render(tokenizer, messages))
    labels = [IGNORE_INDEX] * len(full)
    for i, message in enumerate(messages):
        if message["role"] != "assistant" or message.get("weight", 1) == 0:
            continue
        start = len(ids(render(tokenizer, messages[:i], add_generation_prompt=True))) if i else 0
        stop = min(len(full), len(ids(render(tokenizer, messages[:i + 1]))))
        for j in range(start, stop):
            labels[j] = full[j]
            if full[j] in ends:
                break
    return EncodedChat(full, labels)
