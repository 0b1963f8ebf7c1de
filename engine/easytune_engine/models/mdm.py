"""MDM-style backbone: a transformer over the 263-d features that predicts x0.

One conditioning token (text embedding + time embedding) is prepended to the motion tokens, as in
MDM. For CPU budgets a motion token covers `patch` consecutive frames (MDM uses 1); lengths need
not be multiples of the patch: frames are padded inside and cropped again.

    x_t (B, T, 263) --patch--> (B, T/p, 263p) --Linear--> (B, T/p, W) + pos
    [cond token; motion tokens] --transformer--> motion tokens --Linear--> (B, T, 263) = x̂0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..diffusion.sampling import Conditioning
from ..layers import pre_norm_transformer, timestep_embedding
from ..motion.features import FEATURE_DIM
from .base import MAX_FRAMES, Backbone, TextConditioner, length_mask


@dataclass(frozen=True)
class MDMConfig:
    width: int = 256
    layers: int = 4
    heads: int = 4
    ff_mult: int = 2
    dropout: float = 0.1
    patch: int = 4  # frames per motion token
    text_dim: int = 128  # pooled text embedding size (the built-in encoder's width)
    cond_drop: float = 0.1  # training: share of captions replaced by the null condition
    schedule: str = "cosine"
    num_train_timesteps: int = 1000
    sampler: str = "ddpm"  # MDM samples with the SDE by default; 'ddim' works too
    steps: int = 50
    guidance: float = 2.5  # MDM's scale, applied in x0 space
    # training only: weight of the integrated root-trajectory term on the predicted x0 (cumulative
    # yaw and facing-frame XZ travel, training/objectives.py); 0 = off, the loss MDM shipped with
    trajectory_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be divisible by heads ({self.heads})")
        if not 1 <= self.patch <= 8:
            raise ValueError(f"patch must be in 1..8 frames, got {self.patch}")
        if not self.trajectory_weight >= 0:
            raise ValueError(f"trajectory_weight must be >= 0, got {self.trajectory_weight}")


class MDM(Backbone):
    kind = "mdm"
    space = "features"
    prediction_type = "sample"

    def __init__(
        self, config: MDMConfig, mean: np.ndarray | None = None, std: np.ndarray | None = None
    ) -> None:
        super().__init__(mean, std)
        self.config = c = config
        self.inp = nn.Linear(FEATURE_DIM * c.patch, c.width)
        self.pos = nn.Parameter(torch.randn(math.ceil(MAX_FRAMES / c.patch) + 1, c.width) * 0.02)
        self.time_mlp = nn.Sequential(
            nn.Linear(c.width, c.width), nn.SiLU(), nn.Linear(c.width, c.width)
        )
        self.text = TextConditioner(c.text_dim, c.width)
        self.transformer = pre_norm_transformer(c.width, c.heads, c.ff_mult, c.dropout, c.layers)
        self.norm = nn.LayerNorm(c.width)
        self.out = nn.Linear(c.width, FEATURE_DIM * c.patch)

    def noise_shape(self, lengths: torch.Tensor) -> tuple[int, ...]:
        return (lengths.shape[0], int(lengths.max()), FEATURE_DIM)

    def noise_mask(self, lengths: torch.Tensor, n: int) -> torch.Tensor:
        return length_mask(lengths, n)

    def decode(self, x0: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return x0 * length_mask(lengths, x0.shape[1])[..., None]

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        b, frames, _ = x_t.shape
        p = self.config.patch
        valid = length_mask(cond.lengths, frames)  # (B, T)
        x = torch.where(valid[..., None], x_t, 0.0)
        pad = (-frames) % p
        x = F.pad(x, (0, 0, 0, pad))  # (B, T', 263)
        n = x.shape[1] // p
        h = self.inp(x.reshape(b, n, p * FEATURE_DIM))  # (B, N, W)
        c_tok = self.time_mlp(timestep_embedding(t, self.config.width)) + self.text(cond)
        seq = torch.cat([c_tok[:, None], h], dim=1) + self.pos[: n + 1]  # (B, 1 + N, W)
        tok_valid = torch.arange(n, device=x.device)[None] * p < cond.lengths[:, None]
        keep = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=x.device), tok_valid], 1)
        out = self.norm(self.transformer(seq, src_key_padding_mask=~keep))[:, 1:]
        x0 = self.out(out).reshape(b, n * p, FEATURE_DIM)[:, :frames]
        return x0 * valid[..., None]
