"""MLD- and MotionLCM-style backbones: diffusion in the latent space of a motion VAE.

Latent denoiser (MLD): tokens [latent tokens (L); time; text] through a transformer with long skip
connections (the first half's outputs feed the mirrored layers of the second half). It predicts
ε in the *scaled* latent x = μ / `latent_std` (one scalar, or one per channel with
`latent_scale="channel"`, measured on the training set after the
VAE stage, like Stable Diffusion's scale factor), so x0 has unit variance.

MotionLCM: the same denoiser plus a guidance-scale embedding added to the time token, distilled
into a consistency function f(x_t, t, w) = c_skip(t)·x_t + c_out(t)·x̂0(x_t, t, w) that maps any
x_t straight to a clean latent; it samples in 1, 2 or 4 steps with the guidance baked in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..diffusion.sampling import Conditioning
from ..layers import timestep_embedding
from .base import MAX_FRAMES, Backbone, TextConditioner
from .vae import MotionVAE, VAEConfig, latent_length, latent_mask


@dataclass(frozen=True)
class MLDConfig:
    vae: VAEConfig = field(default_factory=VAEConfig)
    width: int = 256
    layers: int = 7  # odd: (layers - 1) / 2 skip pairs around a middle layer
    heads: int = 4
    ff_mult: int = 2
    dropout: float = 0.1
    text_dim: int = 128
    cond_drop: float = 0.1
    schedule: str = "scaled_linear"
    num_train_timesteps: int = 1000
    sampler: str = "ddim"
    steps: int = 50
    guidance: float = 7.5
    # "scalar": one latent_std for every latent channel (Stable Diffusion's scale factor);
    # "channel": one per channel (a (d,) latent_std), for latents whose channels differ in spread
    latent_scale: str = "scalar"

    def __post_init__(self) -> None:
        if isinstance(self.vae, dict):  # rebuilt from a checkpoint's JSON
            object.__setattr__(self, "vae", VAEConfig(**self.vae))
        if self.latent_scale not in ("scalar", "channel"):
            raise ValueError(
                f"latent_scale must be 'scalar' or 'channel', got {self.latent_scale!r}"
            )
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be divisible by heads ({self.heads})")
        if self.layers < 1 or self.layers % 2 == 0:
            raise ValueError(f"layers must be odd (skip pairs around a middle), got {self.layers}")


@dataclass(frozen=True)
class LCMConfig(MLDConfig):
    sampler: str = "lcm"
    steps: int = 4
    guidance: float = 7.5  # the w fed to the guidance embedding (no CFG pass at sampling)
    origin_steps: int = 50  # skip-step grid of the distillation: k = 1000 / 50 = 20
    w_min: float = 5.0  # distillation draws w uniformly in [w_min, w_max] (MotionLCM: 5..15)
    w_max: float = 15.0
    ema_decay: float = 0.95  # target network
    huber_c: float = 0.001
    sigma_data: float = 0.5


def _layer(c: MLDConfig) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(
        c.width,
        c.heads,
        c.ff_mult * c.width,
        c.dropout,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )


class LatentDenoiser(nn.Module):
    """(B, L, d) latent, t, conditioning -> (B, L, d) ε̂."""

    def __init__(self, c: MLDConfig, guidance_embedding: bool = False) -> None:
        super().__init__()
        self.config = c
        w, half = c.width, (c.layers - 1) // 2
        self.inp = nn.Linear(c.vae.latent_dim, w)
        # rows: latent tokens (as many as the longest motion can have), then time, then text
        self.pos = nn.Parameter(torch.randn(latent_length(c.vae, MAX_FRAMES) + 2, w) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.text = TextConditioner(c.text_dim, w)
        self.w_mlp = None
        if guidance_embedding:
            self.w_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
            nn.init.zeros_(self.w_mlp[2].weight)  # starts as the teacher exactly
            nn.init.zeros_(self.w_mlp[2].bias)
        self.down_layers = nn.ModuleList(_layer(c) for _ in range(half))
        self.mid = _layer(c)
        self.up_layers = nn.ModuleList(_layer(c) for _ in range(half))
        self.skips = nn.ModuleList(nn.Linear(2 * w, w) for _ in range(half))
        self.norm = nn.LayerNorm(w)
        self.out = nn.Linear(w, c.vae.latent_dim)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        w = self.config.width
        time = self.time_mlp(timestep_embedding(t, w))  # (B, W)
        if self.w_mlp is not None:
            if cond.guidance is None:
                raise ValueError("this model embeds the guidance scale: set Conditioning.guidance")
            time = time + self.w_mlp(timestep_embedding(cond.guidance * 100.0, w))
        n = x_t.shape[1]
        h = torch.cat([self.inp(x_t), time[:, None], self.text(cond)[:, None]], dim=1)
        h = h + torch.cat([self.pos[:n], self.pos[-2:]])  # (B, L + 2, W)
        pad = None  # "frames" latents: tokens past each length are masked out
        if self.config.vae.latent_layout == "frames":
            valid = latent_mask(self.config.vae, cond.lengths, n)
            pad = ~torch.cat([valid, valid.new_ones(valid.shape[0], 2)], dim=1)
        skips = []
        for layer in self.down_layers:
            h = layer(h, src_key_padding_mask=pad)
            skips.append(h)
        h = self.mid(h, src_key_padding_mask=pad)
        for layer, skip in zip(self.up_layers, self.skips, strict=True):
            h = layer(skip(torch.cat([h, skips.pop()], dim=-1)), src_key_padding_mask=pad)
        out = self.out(self.norm(h)[:, :n])
        return out if pad is None else out * ~pad[:, :n, None]


class MLD(Backbone):
    kind = "mld"
    space = "latent"
    prediction_type = "epsilon"

    def __init__(
        self, config: MLDConfig, mean: np.ndarray | None = None, std: np.ndarray | None = None
    ) -> None:
        super().__init__(mean, std)
        self.config = config
        self.vae = MotionVAE(config.vae)
        self.denoiser = LatentDenoiser(config, guidance_embedding=isinstance(config, LCMConfig))
        shape = (config.vae.latent_dim,) if config.latent_scale == "channel" else ()
        self.register_buffer("latent_std", torch.ones(shape))

    def noise_shape(self, lengths: torch.Tensor) -> tuple[int, ...]:
        v = self.config.vae
        return (lengths.shape[0], latent_length(v, int(lengths.max())), v.latent_dim)

    def noise_mask(self, lengths: torch.Tensor, n: int) -> torch.Tensor:
        return latent_mask(self.config.vae, lengths, n)

    def encode(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Normalised features -> scaled latent x0 (the posterior mean), (B, L, d)."""
        mu, _ = self.vae.encode(features, lengths)
        return mu / self.latent_std

    def decode(
        self, x0: torch.Tensor, lengths: torch.Tensor, frames: int | None = None
    ) -> torch.Tensor:
        """Scaled latent x0 -> (B, frames, 263) normalised features (frames: max(lengths))."""
        return self.vae.decode(x0 * self.latent_std, lengths, frames)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        return self.denoiser(x_t, t, cond)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.denoiser.parameters() if p.requires_grad]


class LCM(MLD):
    """MotionLCM-style: forward returns the consistency function's clean latent (x0 space)."""

    kind = "lcm"
    prediction_type = "sample"

    def __init__(
        self, config: LCMConfig, mean: np.ndarray | None = None, std: np.ndarray | None = None
    ) -> None:
        if not isinstance(config, LCMConfig):
            raise TypeError("LCM needs an LCMConfig")
        super().__init__(config, mean, std)
        # a buffer (not saved) so it moves with the model: a captured CUDA graph cannot copy it
        self.register_buffer("_abar", self.schedule.alphas_cumprod().float(), persistent=False)

    def boundary(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(c_skip, c_out) at steps t, (B, 1, 1): c_skip(0) = 1, c_out(0) = 0."""
        sd = self.config.sigma_data  # type: ignore[attr-defined]
        s = 10.0 * t.float()
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s / (s**2 + sd**2) ** 0.5
        return c_skip.view(-1, 1, 1), c_out.view(-1, 1, 1)

    def consistency(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        abar = self._abar[t].view(-1, 1, 1)
        x0 = (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()
        c_skip, c_out = self.boundary(t)
        return c_skip * x_t + c_out * x0

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        x0 = self.consistency(x_t, t, self.denoiser(x_t, t, cond))
        if self.config.vae.latent_layout == "frames":  # zero past each length, like ε̂
            x0 = x0 * self.noise_mask(cond.lengths, x0.shape[1])[..., None]
        return x0
