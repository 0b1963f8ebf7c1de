"""Motion VAE for the latent backbones: a transformer with learned distribution tokens (MLD).

Encoder:  (B, T, 263) --2 strided convs (x4 fewer frames)--> (B, T/4, W) + pos
          [2L distribution tokens; frame tokens] --transformer--> first 2L outputs -> μ, log σ²
          of L latent tokens of size d: z (B, L, d).
Decoder:  [z tokens -> W; T/4 positional query tokens] --transformer--> queries
          --2 transposed convs--> (B, T, W) --Linear--> (B, T, 263), zero after each length.
Positions past a motion's length are zeroed at every resolution, so a motion encodes and decodes
the same whether it is alone or batched with longer ones.

`latent_layout="frames"` drops the distribution tokens: every frame token (4 frames) gives its own
latent, z (B, ceil(T/4), d), zero (μ = 0, log σ² = 0: no KL) past each length, and the decoder
runs on those tokens instead of on queries. Global tokens must squeeze a whole clip into L·d
numbers; time-local latents keep fast, short events (a clap, a hop) where they happen.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import pre_norm_transformer
from ..motion.features import FEATURE_DIM
from .base import MAX_FRAMES, length_mask

# feature groups of the 263-d layout (motion/features.py)
ROOT = slice(0, 4)
LOCAL_VELOCITY = slice(193, 259)
CONTACTS = slice(259, 263)
# the pelvis height (channel 3) and the heights of the ankles and feet (joints 7, 8, 10, 11: the
# y of their root-relative positions, channels 4 + 3 (j - 1) + 1), in metres once denormalised
HEIGHTS = (3, 23, 26, 32, 35)
HEIGHT_UNIT_M = 0.05


LATENT_LAYOUTS = ("tokens", "frames")


@dataclass(frozen=True)
class VAEConfig:
    width: int = 256
    enc_layers: int = 3
    dec_layers: int = 3
    heads: int = 4
    ff_mult: int = 2
    dropout: float = 0.1
    latent_tokens: int = 4  # L
    latent_dim: int = 32  # d
    kl_weight: float = 1e-4  # MLD's λ_KL
    # Reconstruction-loss weights of feature groups (training only; 1.0 = every channel alike,
    # the behaviour of checkpoints saved before these fields existed). root: channels 0..3 (yaw
    # rate, facing-frame XZ velocity, height), whose errors integrate over the clip; velocity:
    # local joint velocities 193..258; contact: foot contacts 259..262.
    root_weight: float = 1.0
    velocity_weight: float = 1.0
    contact_weight: float = 1.0
    # weight of an auxiliary loss on the root trajectory integrated over time (cumulative yaw in
    # rad and cumulative facing-frame XZ displacement in m, raw units); 0 = off
    trajectory_weight: float = 0.0
    # weight of an auxiliary loss on the pelvis and foot heights (raw metres, in units of
    # HEIGHT_UNIT_M): the take-offs of jumps that an average over frames blurs away; 0 = off
    # (measured: benchmarks/results/height_term/README.md)
    height_weight: float = 0.0
    # "tokens": L learned distribution tokens (MLD); "frames": one latent per 4 frames, so the
    # latent's length follows the motion's (latent_tokens is then unused)
    latent_layout: str = "tokens"
    # training only, the `decoder` stage (encoder frozen): each clip's latent gets extra Gaussian
    # noise of std σ·latent_std, σ drawn uniformly in [0, decoder_noise], so the decoder learns to
    # decode a denoiser's imperfect latents to grounded motion; 0 = off (tried on the frames VAE:
    # no gain over the same steps without it, benchmarks/results/frames_latent/README.md)
    decoder_noise: float = 0.0

    def __post_init__(self) -> None:
        if self.latent_layout not in LATENT_LAYOUTS:
            raise ValueError(
                f"latent_layout must be one of {LATENT_LAYOUTS}, got {self.latent_layout!r}"
            )
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be divisible by heads ({self.heads})")
        if self.latent_tokens < 1 or self.latent_dim < 1:
            raise ValueError("latent_tokens and latent_dim must be >= 1")
        weights = (
            "root_weight",
            "velocity_weight",
            "contact_weight",
            "trajectory_weight",
            "height_weight",
        )
        for name in (*weights, "decoder_noise"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def channel_weights(self) -> torch.Tensor | None:
        """(263,) per-feature reconstruction weights, or None when every weight is 1."""
        groups = (
            (ROOT, self.root_weight),
            (LOCAL_VELOCITY, self.velocity_weight),
            (CONTACTS, self.contact_weight),
        )
        if all(w == 1.0 for _, w in groups):
            return None
        w = torch.ones(FEATURE_DIM)
        for sl, value in groups:
            w[sl] = value
        return w


DOWN = 4  # frames per encoder token (two stride-2 convolutions)


def latent_length(config: VAEConfig, frames: int) -> int:
    """Latent tokens of a batch whose longest motion has `frames` frames."""
    return math.ceil(frames / DOWN) if config.latent_layout == "frames" else config.latent_tokens


def latent_mask(config: VAEConfig, lengths: torch.Tensor, n: int) -> torch.Tensor:
    """(B, n) bool: the latent tokens that belong to each motion (every one for "tokens")."""
    if config.latent_layout == "frames":
        return _covers(lengths, n, DOWN)
    return torch.ones(lengths.shape[0], n, dtype=torch.bool, device=lengths.device)


class MotionVAE(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = c = config
        w, n_tok = c.width, math.ceil(MAX_FRAMES / DOWN)
        frames = c.latent_layout == "frames"
        n_lat = 0 if frames else c.latent_tokens
        self.down = nn.Sequential(
            nn.Conv1d(FEATURE_DIM, w, 4, stride=2, padding=1),
            nn.GELU(),
            nn.Conv1d(w, w, 4, stride=2, padding=1),
        )
        self.dist_tokens = nn.Parameter(torch.randn(2 * n_lat, w) * 0.02)
        self.enc_pos = nn.Parameter(torch.randn(n_tok, w) * 0.02)
        self.encoder = pre_norm_transformer(w, c.heads, c.ff_mult, c.dropout, c.enc_layers)
        self.enc_norm = nn.LayerNorm(w)
        # tokens: each of the 2L distribution tokens gives μ or log σ² of one latent token;
        # frames: each frame token gives both
        self.to_latent = nn.Linear(w, c.latent_dim * (2 if frames else 1))
        self.from_latent = nn.Linear(c.latent_dim, w)
        self.latent_pos = nn.Parameter(torch.randn(n_lat, w) * 0.02)
        self.queries = nn.Parameter(torch.randn(n_tok, w) * 0.02)
        self.decoder = pre_norm_transformer(w, c.heads, c.ff_mult, c.dropout, c.dec_layers)
        self.dec_norm = nn.LayerNorm(w)
        self.up = nn.Sequential(
            nn.ConvTranspose1d(w, w, 4, stride=2, padding=1),
            nn.GELU(),
            nn.ConvTranspose1d(w, w, 4, stride=2, padding=1),
            nn.GELU(),
        )
        self.out = nn.Linear(w, FEATURE_DIM)

    def encoder_modules(self) -> tuple[nn.Module, ...]:
        """The modules that map motion to (μ, log σ²): frozen, they fix the latent space."""
        return (self.down, self.encoder, self.enc_norm, self.to_latent)

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter `encode` uses; freezing these keeps the latent space fixed."""
        yield self.dist_tokens
        yield self.enc_pos
        for module in self.encoder_modules():
            yield from module.parameters()

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 263) normalised features -> (μ, log σ²), each (B, L, d)."""
        b, frames, _ = x.shape
        x = torch.where(length_mask(lengths, frames)[..., None], x, 0.0)
        x = F.pad(x, (0, 0, 0, (-frames) % DOWN))
        h = self.down[1](self.down[0](x.transpose(1, 2)))  # (B, W, T/2)
        h = h * _covers(lengths, h.shape[-1], 2)[:, None]  # padding never reaches a valid token
        h = self.down[2](h).transpose(1, 2)  # (B, T/4, W)
        n = h.shape[1]
        h = h + self.enc_pos[:n]
        two_l = self.dist_tokens.shape[0]
        seq = torch.cat([self.dist_tokens.expand(b, -1, -1), h], dim=1)
        tok_valid = _covers(lengths, n, DOWN)
        keep = torch.cat([torch.ones(b, two_l, dtype=torch.bool, device=x.device), tok_valid], 1)
        out = self.enc_norm(self.encoder(seq, src_key_padding_mask=~keep))
        if self.config.latent_layout == "frames":
            stats = self.to_latent(out)  # (B, T/4, 2d)
            mu, logvar = (s * tok_valid[..., None] for s in stats.chunk(2, dim=-1))
            return mu, logvar.clamp(-20.0, 10.0)
        stats = self.to_latent(out[:, :two_l])  # (B, 2L, d)
        mu, logvar = stats.chunk(2, dim=1)
        return mu, logvar.clamp(-20.0, 10.0)

    def decode(
        self, z: torch.Tensor, lengths: torch.Tensor, frames: int | None = None
    ) -> torch.Tensor:
        """(B, L, d) latents -> (B, frames, 263) normalised features, zero after lengths.

        `frames` defaults to max(lengths); giving it (>= max(lengths)) avoids reading the lengths
        back to the host, so the decoder can run inside a CUDA graph (models/fastpath.py)."""
        b = z.shape[0]
        frames = int(lengths.max()) if frames is None else frames
        n = math.ceil(frames / DOWN)
        tok_valid = _covers(lengths, n, DOWN)
        if self.config.latent_layout == "frames":
            z = F.pad(z, (0, 0, 0, n - z.shape[1]))[:, :n]  # (B, T/4, d)
            seq = self.from_latent(z) + self.queries[:n]
            h = self.dec_norm(self.decoder(seq, src_key_padding_mask=~tok_valid))
        else:
            lat = self.from_latent(z) + self.latent_pos  # (B, L, W)
            seq = torch.cat([lat, self.queries[:n].expand(b, -1, -1)], dim=1)
            keep = torch.cat(
                [torch.ones(b, lat.shape[1], dtype=torch.bool, device=z.device), tok_valid], 1
            )
            h = self.dec_norm(self.decoder(seq, src_key_padding_mask=~keep))[:, lat.shape[1] :]
        h = (h * tok_valid[..., None]).transpose(1, 2)  # (B, W, T/4), padded queries zeroed
        h = self.up[1](self.up[0](h))  # (B, W, T/2)
        h = h * _covers(lengths, h.shape[-1], 2)[:, None]
        h = self.up[3](self.up[2](h)).transpose(1, 2)[:, :frames]  # (B, T, W)
        return self.out(h) * length_mask(lengths, frames)[..., None]


def _covers(lengths: torch.Tensor, n: int, stride: int) -> torch.Tensor:
    """(B, n) bool: position j (covering frames j·stride ...) starts inside the motion."""
    return torch.arange(n, device=lengths.device)[None] * stride < lengths[:, None]
