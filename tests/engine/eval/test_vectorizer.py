"""Word + POS vectorisation: vocabulary ids, hashed unseen words, raw prompts, bad input."""

from __future__ import annotations

import pytest

from easytune_engine.eval.vectorizer import (
    EOS,
    NUM_SPECIAL,
    POS_TAGS,
    SOS,
    build_vocabulary,
    prompt_tokens,
)


def vocab():
    return build_vocabulary([["walk/VERB", "forward/ADV"], ["walk/VERB", "a/DET"]], hash_buckets=8)


def test_vocabulary_by_frequency_with_start_and_end() -> None:
    v = vocab()
    assert v.words[0] == "walk" and v.size == NUM_SPECIAL + 3 + 8
    words, pos = v.encode(["walk/VERB", "a/DET"])
    assert words[0] == SOS and words[-1] == EOS and words[1] == NUM_SPECIAL
    assert pos[1] == POS_TAGS.index("VERB") and pos[2] == POS_TAGS.index("DET")


def test_unseen_words_hash_stably_into_buckets() -> None:
    v = vocab()
    a = v.word_id("moonwalk")
    assert a == v.word_id("moonwalk") and NUM_SPECIAL + 3 <= a < v.size
    _, pos = v.encode(["moonwalk/XYZ", "bare"])
    assert pos[1] == POS_TAGS.index("OTHER") and pos[2] == POS_TAGS.index("OTHER")


def test_tokens_are_capped_and_batched() -> None:
    v = vocab()
    b = v.batch([["walk/VERB"] * 30, ["a/DET"]])
    assert b.words.shape == (2, v.max_tokens + 2) and b.lengths.tolist() == [22, 3]


def test_prompt_tokens_use_the_corpus_lexicon() -> None:
    assert prompt_tokens("A person walks forward.")[:3] == ["a/DET", "person/NOUN", "walk/VERB"]
    assert prompt_tokens("Zorbs 3 times")[0] == "zorbs/OTHER"
    assert prompt_tokens("café, naïve")  # non-ASCII words are words


@pytest.mark.parametrize("bad", ["", "   ", "!!!", "x" * 1001])
def test_bad_prompts_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="prompt"):
        prompt_tokens(bad)


def test_empty_caption_is_refused() -> None:
    with pytest.raises(ValueError, match="empty caption"):
        vocab().encode([])
