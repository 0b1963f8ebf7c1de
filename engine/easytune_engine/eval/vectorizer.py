"""Word + part-of-speech vectorisation for the evaluator's text encoder (T2M's `WordVectorizer`).

T2M feeds its text bi-GRU GloVe vectors concatenated with a one-hot part of speech. We have no
downloaded vectors, so words get learned embeddings over a vocabulary of the training captions'
lemmas, and a word outside it falls into one of `hash_buckets` hashed rows (a stable CRC32 of the
lemma, so the same unseen word always lands in the same row). Tokens are HumanML3D's `lemma/POS`
strings; a raw prompt without tokens is analysed with the corpus lexicon (`prompt_tokens`).

Ids: 0 = padding, 1 = start, 2 = end, 3 .. 3+V-1 = vocabulary, then the hash buckets.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

# Universal POS tags (what spaCy and the corpus lexicon write) plus OTHER for anything else.
POS_TAGS: tuple[str, ...] = (
    "ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN SCONJ VERB OTHER".split()
)
PAD, SOS, EOS = 0, 1, 2
NUM_SPECIAL = 3
MAX_PROMPT_CHARS = 1000
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


@dataclass(frozen=True)
class Vocabulary:
    """The lemma vocabulary the evaluator was trained with (saved in its checkpoint)."""

    words: tuple[str, ...]  # lemmas, in id order (id = NUM_SPECIAL + index)
    hash_buckets: int = 256  # rows for lemmas outside `words`
    max_tokens: int = 20  # tokens kept per caption (T2M: 20), before start/end are added

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {w: i + NUM_SPECIAL for i, w in enumerate(self.words)})

    @property
    def size(self) -> int:
        """Rows of the word embedding table."""
        return NUM_SPECIAL + len(self.words) + self.hash_buckets

    def word_id(self, lemma: str) -> int:
        found = self._index.get(lemma)  # type: ignore[attr-defined]
        if found is not None:
            return found
        bucket = zlib.crc32(lemma.encode("utf-8")) % self.hash_buckets
        return NUM_SPECIAL + len(self.words) + bucket

    def encode(self, tokens: Sequence[str]) -> tuple[list[int], list[int]]:
        """`lemma/POS` tokens -> (word ids, POS ids) with start and end added.

        A token without '/POS' counts as OTHER. Raises ValueError for an empty token list.
        """
        if len(tokens) == 0:
            raise ValueError("empty caption: a prompt needs at least one word")
        words, pos = [SOS], [POS_TAGS.index("OTHER")]
        for token in list(tokens)[: self.max_tokens]:
            lemma, _, tag = token.rpartition("/")
            if not lemma:  # no '/': the whole token is the word
                lemma, tag = tag, "OTHER"
            words.append(self.word_id(lemma.lower()))
            pos.append(POS_TAGS.index(tag) if tag in POS_TAGS else POS_TAGS.index("OTHER"))
        words.append(EOS)
        pos.append(POS_TAGS.index("OTHER"))
        return words, pos

    def batch(self, captions: Sequence[Sequence[str]]) -> TextBatch:
        """Encode and pad a list of token lists."""
        if len(captions) == 0:
            raise ValueError("no captions to encode")
        encoded = [self.encode(c) for c in captions]
        t = max(len(w) for w, _ in encoded)
        words = torch.zeros(len(encoded), t, dtype=torch.long)
        pos = torch.full((len(encoded), t), POS_TAGS.index("OTHER"), dtype=torch.long)
        for b, (w, p) in enumerate(encoded):
            words[b, : len(w)] = torch.tensor(w)
            pos[b, : len(p)] = torch.tensor(p)
        lengths = torch.tensor([len(w) for w, _ in encoded], dtype=torch.long)
        return TextBatch(words, pos, lengths)


@dataclass(frozen=True)
class TextBatch:
    """Padded word ids (B, L), POS ids (B, L) and lengths (B,) including start/end."""

    words: torch.Tensor
    pos: torch.Tensor
    lengths: torch.Tensor


def build_vocabulary(
    captions: Iterable[Sequence[str]], *, min_count: int = 1, hash_buckets: int = 256
) -> Vocabulary:
    """The lemmas of `lemma/POS` token lists seen at least `min_count` times, by frequency."""
    counts: Counter[str] = Counter()
    for tokens in captions:
        for token in tokens:
            lemma = token.rpartition("/")[0] or token
            counts[lemma.lower()] += 1
    words = tuple(
        w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count
    )
    return Vocabulary(words=words, hash_buckets=hash_buckets)


def prompt_tokens(text: str) -> list[str]:
    """`lemma/POS` tokens for a raw prompt, using the corpus lexicon (unknown words: OTHER).

    Raises ValueError for an empty prompt, one with no word in it, or one over 1000 characters.
    """
    from easytune_engine.data.corpus.lexicon import analyses

    if not isinstance(text, str):
        raise ValueError(f"a prompt must be a string, got {type(text).__name__}")
    if len(text) > MAX_PROMPT_CHARS:
        raise ValueError(f"prompt is {len(text)} characters long; at most {MAX_PROMPT_CHARS}")
    words = _WORD.findall(text.lower())
    if not words:
        raise ValueError(f"empty prompt: {text!r} has no words")
    out = []
    for word in words:
        found = analyses(word)
        lemma, pos = found[0] if found else (word, "OTHER")
        out.append(f"{lemma}/{pos}")
    return out
