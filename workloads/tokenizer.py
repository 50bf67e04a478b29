"""WordPiece tokenization (uncased BERT) built from a vocabulary list through the `tokenizers` package."""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece
from tokenizers.processors import TemplateProcessing

from workloads.errors import WorkloadError

CLS, SEP, PAD, UNK = "[CLS]", "[SEP]", "[PAD]", "[UNK]"


@dataclass(frozen=True, slots=True)
class Encoding:
    """One sentence as model input: token ids, their strings, and for each token the index of its word."""

    words: tuple[str, ...]
    tokens: tuple[str, ...]
    input_ids: tuple[int, ...]
    word_ids: tuple[int | None, ...]  # None for [CLS], [SEP]
    truncated_words: int  # words dropped because the sentence exceeded max_len tokens

    @property
    def first_subtoken(self) -> dict[int, int]:
        """word index -> position of that word's first sub-token."""
        first: dict[int, int] = {}
        for pos, w in enumerate(self.word_ids):
            if w is not None and w not in first:
                first[w] = pos
        return first


def build_tokenizer(vocab: list[str]) -> Tokenizer:
    """The uncased BERT WordPiece tokenizer over `vocab` (token i has id i)."""
    ids = {tok: i for i, tok in enumerate(vocab)}
    for special in (CLS, SEP, PAD, UNK):
        if special not in ids:
            raise WorkloadError(f"tokenizer vocabulary lacks the special token {special}; a BERT vocabulary has all of {CLS} {SEP} {PAD} {UNK}.")
    tok = Tokenizer(WordPiece(ids, unk_token=UNK, max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = TemplateProcessing(
        single=f"{CLS} $A {SEP}", special_tokens=[(CLS, ids[CLS]), (SEP, ids[SEP])]
    )
    return tok


def split_words(tokenizer: Tokenizer, text: str) -> list[str]:
    """Words of raw text as BERT sees them: split on whitespace and punctuation."""
    return [w for w, _ in tokenizer.pre_tokenizer.pre_tokenize_str(text)]


def encode_words(tokenizer: Tokenizer, words: list[str] | tuple[str, ...], max_len: int) -> Encoding:
    """Encode pre-split words, keeping at most max_len tokens including [CLS] and [SEP].

    Words whose first sub-token does not fit are dropped (their count is reported), so every kept word has
    its first sub-token inside the window.
    """
    if max_len < 3:
        raise WorkloadError(f"max_len must be at least 3 tokens ([CLS], one token, [SEP]), got {max_len}.")
    enc = tokenizer.encode(list(words), is_pretokenized=True)
    ids, toks, wids = list(enc.ids), list(enc.tokens), list(enc.word_ids)
    truncated = 0
    if len(ids) > max_len:
        body_ids, body_toks, body_wids = ids[1:-1][: max_len - 2], toks[1:-1][: max_len - 2], wids[1:-1][: max_len - 2]
        kept_words = {w for w in body_wids}
        truncated = len(words) - len(kept_words)
        ids = [ids[0], *body_ids, ids[-1]]
        toks = [toks[0], *body_toks, toks[-1]]
        wids = [None, *body_wids, None]
    return Encoding(tuple(words), tuple(toks), tuple(ids), tuple(wids), truncated)
