"""The built-in text encoder and the interface a pretrained encoder would implement."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from easytune_engine.text import (
    TextEncoder,
    TextEncoderConfig,
    TextEncoderLike,
    TextEncoding,
    check_prompts,
)

TINY = TextEncoderConfig(width=16, layers=1, heads=2, num_buckets=64, dropout=0.0)


class BagOfWordsEncoder:
    """A stand-in 'pretrained' encoder: anything with `width` and `encode` plugs in."""

    width = 8

    def encode(self, texts: Sequence[str]) -> TextEncoding:
        texts = check_prompts(texts)
        n = max(len(t.split()) for t in texts)
        tokens = torch.zeros(len(texts), n, self.width)
        mask = torch.zeros(len(texts), n, dtype=torch.bool)
        for i, t in enumerate(texts):
            for j, w in enumerate(t.split()):
                tokens[i, j, len(w) % self.width] = 1.0
                mask[i, j] = True
        return TextEncoding(tokens, mask, tokens.sum(1))


class TextEncoderContract:
    """Every text encoder: shapes, mask, determinism in eval mode, clear errors."""

    def make(self) -> TextEncoderLike:
        raise NotImplementedError

    def test_is_text_encoder_like(self) -> None:
        assert isinstance(self.make(), TextEncoderLike)

    def test_shapes(self) -> None:
        enc = self.make()
        out = enc.encode(["a person waves", "someone jumps three times, then sits down"])
        b, length, d = out.tokens.shape
        assert (b, d) == (2, enc.width)
        assert out.mask.shape == (2, length) and out.mask.dtype == torch.bool
        assert out.pooled.shape == (2, enc.width)
        assert torch.isfinite(out.tokens).all() and torch.isfinite(out.pooled).all()
        assert out.mask[1].sum() > out.mask[0].sum()

    def test_deterministic(self) -> None:
        enc = self.make()
        a = enc.encode(["a person waves"]).pooled
        b = enc.encode(["a person waves"]).pooled
        assert torch.equal(a, b)

    @pytest.mark.parametrize(
        ("texts", "match"),
        [([""], "empty"), (["   "], "empty"), (["x" * 1000], "too long"), ([], "no prompts")],
    )
    def test_bad_prompts(self, texts: list[str], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            self.make().encode(texts)

    def test_non_ascii_prompt(self) -> None:
        out = self.make().encode(["Ein Mann läuft 🏃", "人が歩く"])
        assert torch.isfinite(out.pooled).all()


class TestBuiltinEncoder(TextEncoderContract):
    def make(self) -> TextEncoder:
        torch.manual_seed(0)
        return TextEncoder(TINY).eval()

    def test_padding_does_not_change_features(self) -> None:
        enc = self.make()
        alone = enc.encode(["a person waves"]).pooled
        padded = enc.encode(["a person waves", "a person walks forward then turns left"]).pooled
        torch.testing.assert_close(alone[0], padded[0], atol=1e-5, rtol=1e-5)

    def test_truncates_long_word_lists(self) -> None:
        enc = self.make()
        out = enc.encode(["walk " * 70])
        assert out.tokens.shape[1] == TINY.max_tokens

    def test_config_validation(self) -> None:
        with pytest.raises(ValueError, match="divisible"):
            TextEncoderConfig(width=10, heads=3)


class TestPluggedInEncoder(TextEncoderContract):
    def make(self) -> BagOfWordsEncoder:
        return BagOfWordsEncoder()
