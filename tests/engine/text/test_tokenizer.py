"""Tokeniser robustness: any string tokenises; unseen words share n-gram buckets with seen ones."""

from __future__ import annotations

import pytest
import torch

from easytune_engine.text import Tokenizer, TokenizerConfig, normalize_text
from easytune_engine.text.tokenizer import CLS, UNK

WEIRD = [
    "",
    "   ",
    "A person WAVES!!!",
    "a prson wlaks forwrd",  # typos
    "jumps 3 times, then 12.5 m",
    "Ein Mann läuft schnell — très vite 🏃",
    "人が歩く",
    "\x00\t\n control \u200b chars",
    "x" * 5000,
    "word " * 100,
]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer()


@pytest.mark.parametrize("text", WEIRD)
def test_never_fails(tok: Tokenizer, text: str) -> None:
    batch = tok([text])
    assert batch.word_ids.shape[0] == 1
    assert batch.word_ids.shape[1] <= tok.config.max_tokens
    assert batch.word_ids[0, 0] == tok.vocabulary.index(CLS)
    assert batch.mask[0, 0]
    assert (batch.ngram_ids >= 0).all() and (batch.ngram_ids < tok.config.num_buckets).all()


def test_batch_padding_and_mask(tok: Tokenizer) -> None:
    batch = tok(["a person walks forward", "", "wave"])
    assert batch.word_ids.shape == batch.mask.shape
    assert batch.mask.sum(1).tolist() == [5, 1, 2]
    assert (batch.word_ids[~batch.mask] == 0).all()
    assert (batch.ngram_ids[~batch.mask] == 0).all()
    assert (batch.ngram_ids[:, 0] == 0).all()  # <cls> has no n-grams


def test_casing_and_whitespace_normalised(tok: Tokenizer) -> None:
    a, b = tok(["A  Person Waves"]), tok(["a person waves"])
    assert torch.equal(a.word_ids, b.word_ids) and torch.equal(a.ngram_ids, b.ngram_ids)
    assert normalize_text("  A\tPerson  ") == "a person"


def test_unseen_word_is_unk_but_shares_ngrams(tok: Tokenizer) -> None:
    unk = tok.vocabulary.index(UNK)
    typo = tok(["wavess"])
    assert typo.word_ids[0, 1] == unk
    shared = set(tok.ngrams("wavess")) & set(tok.ngrams("waves"))
    assert len(shared) >= 3
    assert tok(["waves"]).word_ids[0, 1] != unk


def test_words_split_punctuation_numbers_and_scripts(tok: Tokenizer) -> None:
    assert tok.words("Jumps 3 times, then stops.") == [
        "jumps", "3", "times", ",", "then", "stops", ".",
    ]  # fmt: skip
    assert tok.words("Mann läuft") == ["mann", "läuft"]


def test_hash_is_stable() -> None:
    # CRC-32 based: the same on every run and machine (Python's hash() is salted per process).
    assert Tokenizer().ngrams("walk") == Tokenizer().ngrams("walk")
    assert Tokenizer(TokenizerConfig(num_buckets=2048)).ngrams("<>")  # never empty


def test_rejects_non_string_and_bare_string(tok: Tokenizer) -> None:
    with pytest.raises(TypeError):
        tok("a single string")
    with pytest.raises(TypeError):
        tok.words(3)  # type: ignore[arg-type]


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="min_n"):
        TokenizerConfig(min_n=4, max_n=3)
