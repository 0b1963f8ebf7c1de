"""A tokeniser that never fails: corpus words plus hashed character n-grams (fastText-style).

Every token gets a word id (the corpus lexicon, else `<unk>`) *and* up to `max_ngrams` hashed
character n-gram buckets of the word wrapped in `<` `>` (n = 3..5; Bojanowski et al. 2017). An
unseen word, a typo ("wlaks") or a non-ASCII word ("tänzelt") still lands on buckets it shares with
words the encoder has seen, so it is embedded near them instead of all on one `<unk>` vector.

    tok = Tokenizer()
    batch = tok(["A person waves!", ""])   # TokenBatch: word_ids (B, L), ngram_ids (B, L, G), mask
    tok.words("Ein Mann läuft 3 m.")       # ['ein', 'mann', 'läuft', '3', 'm', '.']

Normalisation: Unicode NFKC, lower case, words are runs of letters/digits (any script), every other
non-space character is its own token. The hash is CRC-32 (stable across runs and machines, unlike
Python's `hash`). Position 0 of every sequence is `<cls>`, so an empty string is one `<cls>` token.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

PAD, CLS, UNK = "<pad>", "<cls>", "<unk>"
SPECIALS = (PAD, CLS, UNK)
_WORD = re.compile(r"[^\W_]+|[^\w\s]|_", re.UNICODE)


@dataclass(frozen=True)
class TokenizerConfig:
    """How text becomes ids; saved with every text encoder."""

    num_buckets: int = 2048  # hashed character n-gram buckets (id 0 is reserved for padding)
    min_n: int = 3  # shortest character n-gram
    max_n: int = 5  # longest character n-gram
    max_ngrams: int = 16  # n-grams kept per word (the first ones, shortest n first)
    max_tokens: int = 32  # tokens per text including <cls>; longer texts are cut

    def __post_init__(self) -> None:
        if self.num_buckets < 2:
            raise ValueError(f"num_buckets must be >= 2, got {self.num_buckets}")
        if not 1 <= self.min_n <= self.max_n:
            raise ValueError(f"need 1 <= min_n <= max_n, got {self.min_n}, {self.max_n}")
        if self.max_ngrams < 1 or self.max_tokens < 2:
            raise ValueError("max_ngrams must be >= 1 and max_tokens >= 2")


@dataclass(frozen=True)
class TokenBatch:
    """Token ids of a batch of texts, padded to the longest."""

    word_ids: torch.Tensor  # (B, L) int64; 0 = <pad>, 1 = <cls>, 2 = <unk>
    ngram_ids: torch.Tensor  # (B, L, G) int64; 0 = no n-gram
    mask: torch.Tensor  # (B, L) bool, True on real tokens (position 0 is <cls>)


def normalize_text(text: str) -> str:
    """NFKC, lower case, whitespace collapsed; the form captions are compared in."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def default_vocabulary() -> tuple[str, ...]:
    """The corpus lexicon (every word a built-in caption can contain) plus digits, sorted."""
    from ..data.corpus.captions import corpus_vocabulary

    words = set(corpus_vocabulary()) | {str(d) for d in range(10)} | set(".,;!?'-")
    return tuple(sorted(words))


class Tokenizer:
    """Text -> `TokenBatch`. Accepts any string; never raises on content."""

    def __init__(
        self, config: TokenizerConfig | None = None, vocabulary: Iterable[str] | None = None
    ) -> None:
        self.config = config or TokenizerConfig()
        words = default_vocabulary() if vocabulary is None else tuple(vocabulary)
        self.vocabulary: tuple[str, ...] = SPECIALS + tuple(w for w in words if w not in SPECIALS)
        self._index = {w: i for i, w in enumerate(self.vocabulary)}
        self._cache: dict[str, tuple[list[int], list[list[int]]]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def words(self, text: str) -> list[str]:
        """The normalised word/punctuation tokens of `text` (no <cls>, not truncated)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return _WORD.findall(normalize_text(text))

    def ngrams(self, word: str) -> list[int]:
        """Hashed character n-gram bucket ids (1..num_buckets-1) of `<word>`."""
        c = self.config
        w = f"<{word}>"
        out: list[int] = []
        for n in range(c.min_n, c.max_n + 1):
            for i in range(len(w) - n + 1):
                h = zlib.crc32(w[i : i + n].encode("utf-8"))
                out.append(1 + h % (c.num_buckets - 1))
                if len(out) == c.max_ngrams:
                    return out
        if not out:  # shorter than min_n even with the brackets (cannot happen for n <= 3)
            out.append(1 + zlib.crc32(w.encode("utf-8")) % (c.num_buckets - 1))
        return out

    def encode_one(self, text: str) -> tuple[list[int], list[list[int]]]:
        """([<cls>, word ids...], [[], n-gram ids of each word...]) for one text (cached)."""
        hit = self._cache.get(text)
        if hit is not None:
            return hit
        words = self.words(text)[: self.config.max_tokens - 1]
        ids = [self._index[CLS]] + [self._index.get(w, self._index[UNK]) for w in words]
        grams = [[]] + [self.ngrams(w) for w in words]
        if len(self._cache) < 100_000:  # captions repeat across batches; bounded memory
            self._cache[text] = (ids, grams)
        return ids, grams

    def __call__(self, texts: Sequence[str]) -> TokenBatch:
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not a single str")
        encoded = [self.encode_one(t) for t in texts]
        b = len(encoded)
        length = max((len(ids) for ids, _ in encoded), default=1)
        word_ids = torch.zeros(b, length, dtype=torch.long)
        ngram_ids = torch.zeros(b, length, self.config.max_ngrams, dtype=torch.long)
        for i, (ids, grams) in enumerate(encoded):
            word_ids[i, : len(ids)] = torch.tensor(ids)
            for j, g in enumerate(grams):
                if g:
                    ngram_ids[i, j, : len(g)] = torch.tensor(g)
        return TokenBatch(word_ids, ngram_ids, word_ids != 0)
