"""Building blocks shared by the engine's models."""

from __future__ import annotations

from torch import nn


def pre_norm_transformer(
    width: int, heads: int, ff_mult: int, dropout: float, layers: int
) -> nn.TransformerEncoder:
    """A stack of pre-LayerNorm GELU transformer encoder layers over (B, T, width) tokens."""
    layer = nn.TransformerEncoderLayer(
        width,
        heads,
        ff_mult * width,
        dropout,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
