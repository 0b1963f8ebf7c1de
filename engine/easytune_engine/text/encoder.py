"""The built-in text encoder: word + hashed n-gram embeddings, then a small transformer.

It is the text tower of the retrieval reward (`easytune_engine.reward`), trained contrastively
against motion, then frozen and shared by the backbones as their conditioning encoder (the role CLIP
plays for MDM). Anything with the `TextEncoderLike` shape can stand in for it later (e.g. a
pretrained encoder a user has on disk), because the backbones only call `encode(texts)`.

    enc = load_text_encoder()  # the shipped weights, frozen, eval mode
    out = enc.encode(["a person waves"])  # tokens (1, L, D), mask (1, L), pooled (1, D)
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from ..layers import pre_norm_transformer
from .tokenizer import TokenBatch, Tokenizer, TokenizerConfig

MAX_PROMPT_CHARS = 400  # longer prompts are refused (the encoder reads at most max_tokens anyway)


@dataclass(frozen=True)
class TextEncoding:
    """What a text encoder returns for a batch of texts."""

    tokens: torch.Tensor  # (B, L, D) per-token features (position 0 is the pooled <cls> token)
    mask: torch.Tensor  # (B, L) bool, True on real tokens
    pooled: torch.Tensor  # (B, D) one vector per text (not normalised)


@runtime_checkable
class TextEncoderLike(Protocol):
    """The interface the backbones and the reward rely on; a pretrained encoder plugs in here."""

    @property
    def width(self) -> int:  # D of `tokens` and `pooled`
        ...

    def encode(self, texts: Sequence[str]) -> TextEncoding: ...


@dataclass(frozen=True)
class TextEncoderConfig:
    """Built-in text encoder; saved in every checkpoint that contains one."""

    width: int = 256  # D, token and pooled feature size
    layers: int = 4  # transformer encoder layers
    heads: int = 4  # attention heads
    ff_mult: int = 2  # feed-forward width = ff_mult * width
    dropout: float = 0.1
    num_buckets: int = 2048  # tokenizer: hashed n-gram buckets
    max_ngrams: int = 16  # tokenizer: n-grams per word
    max_tokens: int = 32  # tokenizer: tokens per text incl. <cls>

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be divisible by heads ({self.heads})")
        if min(self.width, self.layers, self.heads, self.ff_mult) < 1:
            raise ValueError("width, layers, heads and ff_mult must be >= 1")

    def tokenizer_config(self) -> TokenizerConfig:
        return TokenizerConfig(
            num_buckets=self.num_buckets, max_ngrams=self.max_ngrams, max_tokens=self.max_tokens
        )


def check_prompts(texts: Sequence[str], max_chars: int = MAX_PROMPT_CHARS) -> list[str]:
    """Validate prompts: a list of non-empty strings of at most `max_chars` characters."""
    if isinstance(texts, str):
        raise ValueError("texts must be a list of prompts, not a single string")
    texts = list(texts)
    if not texts:
        raise ValueError("no prompts given (empty list)")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"prompt {i} must be a string, got {type(t).__name__}")
        visible = "".join(c for c in t if not unicodedata.category(c).startswith(("Z", "C")))
        if not visible:
            raise ValueError(f"prompt {i} is empty (or only whitespace)")
        if len(t) > max_chars:
            raise ValueError(
                f"prompt {i} is too long: {len(t)} characters, at most {max_chars} allowed"
            )
    return texts


class TextEncoder(nn.Module):
    """Tokens -> (per-token features, mask, pooled <cls> feature)."""

    def __init__(self, config: TextEncoderConfig, vocabulary: Sequence[str] | None = None) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = Tokenizer(config.tokenizer_config(), vocabulary)
        d = config.width
        self.word_emb = nn.Embedding(self.tokenizer.vocab_size, d, padding_idx=0)
        self.ngram_emb = nn.EmbeddingBag(config.num_buckets, d, mode="sum", padding_idx=0)
        self.pos_emb = nn.Parameter(torch.randn(config.max_tokens, d) * 0.02)
        self.transformer = pre_norm_transformer(
            d, config.heads, config.ff_mult, config.dropout, config.layers
        )
        self.norm = nn.LayerNorm(d)

    @property
    def width(self) -> int:
        return self.config.width

    @property
    def vocabulary(self) -> tuple[str, ...]:
        return self.tokenizer.vocabulary

    def embed(self, batch: TokenBatch) -> torch.Tensor:
        """Input embeddings (B, L, D): word + mean of its n-gram buckets + position."""
        b, length, g = batch.ngram_ids.shape
        grams = batch.ngram_ids.reshape(b * length, g)  # (B*L, G)
        count = (grams != 0).sum(-1, keepdim=True).clamp(min=1)
        ngram = self.ngram_emb(grams) / count.sqrt()  # (B*L, D)
        x = self.word_emb(batch.word_ids) + ngram.view(b, length, -1)
        return x + self.pos_emb[:length]

    def forward(self, batch: TokenBatch) -> TextEncoding:
        device = self.pos_emb.device
        batch = TokenBatch(*(t.to(device) for t in (batch.word_ids, batch.ngram_ids, batch.mask)))
        h = self.transformer(self.embed(batch), src_key_padding_mask=~batch.mask)
        h = self.norm(h)
        return TextEncoding(tokens=h, mask=batch.mask, pooled=h[:, 0])

    def encode(self, texts: Sequence[str]) -> TextEncoding:
        """Encode prompts (validated: non-empty, at most MAX_PROMPT_CHARS characters)."""
        return self(self.tokenizer(check_prompts(texts)))


def load_text_encoder(path: str | Path | None = None, device: str = "cpu") -> TextEncoder:
    """The text tower of a reward checkpoint (default: the shipped one), frozen, in eval mode."""
    from ..reward.model import load_reward_model

    model = load_reward_model(path, device=device)
    enc = model.text_encoder
    enc.requires_grad_(False)
    enc.source_sha256 = model.checkpoint_sha256  # type: ignore[attr-defined]  # backbones record it
    return enc.eval()
