"""Building blocks shared by the engine's models."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .motion.features import FEATURE_DIM


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


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of steps t (B,) (integer or real, e.g. a guidance scale) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


def register_feature_stats(module: nn.Module, mean, std) -> None:
    """Buffers `mean`, `std` (263,) float32: the corpus normalisation a model was trained with
    (zeros / ones when not given yet, e.g. before a checkpoint is loaded into the module)."""
    m = (
        torch.zeros(FEATURE_DIM)
        if mean is None
        else torch.tensor(np.asarray(mean), dtype=torch.float32)
    )
    s = (
        torch.ones(FEATURE_DIM)
        if std is None
        else torch.tensor(np.asarray(std), dtype=torch.float32)
    )
    if m.shape != (FEATURE_DIM,) or s.shape != (FEATURE_DIM,):
        raise ValueError(f"mean and std must have shape ({FEATURE_DIM},)")
    module.register_buffer("mean", m)
    module.register_buffer("std", s)
