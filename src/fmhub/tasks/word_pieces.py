"""Words and sub-words for token classification: which sub-word carries a word's tag, and what the
tokenizer is fed for a word it would turn into no sub-word token."""

from __future__ import annotations

from typing import Any

IGNORE = -100
"""The label id the loss and the metrics ignore (``torch.nn.CrossEntropyLoss``'s default)."""


def align_labels(word_ids: list[int | None], tag_ids: list[int]) -> list[int]:
    """Label per sub-word: the first sub-word of each word gets its tag, the rest ``-100``.

    Args:
        word_ids: The tokenizer's word index per sub-word (None for special tokens), [seq_len].
        tag_ids: Tag id per word, [n_words].

    Returns:
        [seq_len] label ids with ``-100`` where the loss ignores the position.
    """
    labels, previous = [], None
    for w in word_ids:
        labels.append(IGNORE if w is None or w == previous else tag_ids[w])
        previous = w
    return labels


def placeholder_token(tokenizer: Any) -> str:
    """The word fed to the tokenizer in place of a word that becomes no sub-word token: the
    tokenizer's unknown token (``[UNK]`` for BERT), else ``"?"``."""
    return getattr(tokenizer, "unk_token", None) or "?"


def empty_words(tokenizer: Any, sentences: list[list[str]]) -> list[list[int]]:
    """Per sentence, the indices of the words the tokenizer turns into no sub-word token.

    A zero-width space, a lone combining mark or a control character is such a word for a BERT
    WordPiece tokenizer (its normaliser removes them); so is an empty string for any tokenizer.
    Each distinct word is tokenised once, on its own and without special tokens.
    """
    distinct = sorted({w for words in sentences for w in words})
    if not distinct:
        return [[] for _ in sentences]
    ids = tokenizer(distinct, add_special_tokens=False, return_attention_mask=False,
                    return_token_type_ids=False)["input_ids"]
    empty = {w for w, pieces in zip(distinct, ids) if not pieces}
    return [[i for i, w in enumerate(words) if w in empty] for words in sentences]


def fill_empty_words(tokenizer: Any, sentences: list[list[str]]) -> list[list[str]]:
    """The sentences as the tokenizer is fed them: a word that becomes no sub-word token is
    replaced by :func:`placeholder_token`.

    Why a placeholder: every word then keeps a position of its own, so the model gives it a tag
    and the IOB2 sequence stays whole (``B-PER I-PER I-PER``). Tagging such a word ``O`` would cut
    the entity in two, and copying the previous word's tag would turn a following ``B-`` copy into
    a second entity; dropping the word from the metrics would score a different sentence than the
    reference. The user's words are kept in every result; only the tokenizer sees the placeholder.
    """
    unk = placeholder_token(tokenizer)
    out = []
    for words, empty in zip(sentences, empty_words(tokenizer, sentences)):
        if empty:
            words = list(words)
            for i in empty:
                words[i] = unk
        out.append(words)
    return out
