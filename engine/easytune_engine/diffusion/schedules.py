"""Noise schedules: the forward process q(x_t | x_0) = N(sqrt(ᾱ_t) x_0, (1 − ᾱ_t) I).

Paper notation → code: ᾱ_t = `alphas_cumprod[t]`, α_t = sqrt(ᾱ_t) (signal scale),
σ_t = sqrt(1 − ᾱ_t) (noise scale). t runs over 0 .. num_train_timesteps − 1; t = 0 is the least
noisy training step.
Used by the backbones (training and samplers) and by the noise-aware reward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

ScheduleName = Literal["cosine", "scaled_linear", "linear"]


@dataclass(frozen=True)
class NoiseSchedule:
    """A discrete diffusion schedule with `num_train_timesteps` steps."""

    name: ScheduleName = "scaled_linear"
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085  # scaled_linear / linear only (MLD's values)
    beta_end: float = 0.012

    def __post_init__(self) -> None:
        if self.name not in ("cosine", "scaled_linear", "linear"):
            raise ValueError(
                f"unknown schedule {self.name!r}; valid: cosine, scaled_linear, linear"
            )
        if self.num_train_timesteps < 2:
            raise ValueError("num_train_timesteps must be at least 2")

    def betas(self) -> torch.Tensor:
        n = self.num_train_timesteps
        if self.name == "linear":
            return torch.linspace(self.beta_start, self.beta_end, n, dtype=torch.float64)
        if self.name == "scaled_linear":
            return (
                torch.linspace(self.beta_start**0.5, self.beta_end**0.5, n, dtype=torch.float64)
                ** 2
            )
        # cosine (Nichol & Dhariwal 2021), betas clipped at 0.999
        s = 0.008
        steps = torch.arange(n + 1, dtype=torch.float64) / n
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)

    def alphas_cumprod(self) -> torch.Tensor:
        """ᾱ_t for t = 0 .. T−1, float64, (T,)."""
        return torch.cumprod(1.0 - self.betas(), dim=0)

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(ᾱ_t) x0 + sqrt(1 − ᾱ_t) ε, t: (B,) long; x0, noise: (B, ...)."""
        abar = self.alphas_cumprod().to(device=x0.device, dtype=x0.dtype)[t]
        shape = (-1,) + (1,) * (x0.dim() - 1)
        return abar.sqrt().view(shape) * x0 + (1 - abar).sqrt().view(shape) * noise


def ddim_timesteps(num_inference_steps: int, num_train_timesteps: int = 1000) -> torch.Tensor:
    """Training timesteps visited by an n-step DDIM sampler, from noisiest to cleanest: (n,).

    "leading" spacing (as in MLD / diffusers): t = (n−1−i)·(T // n) for i = 0 .. n−1, so step i of a
    50-step schedule over 1000 training steps sits at t = 980 − 20·i; step 25 (1-based) is t = 500.
    """
    if not 1 <= num_inference_steps <= num_train_timesteps:
        raise ValueError(
            f"num_inference_steps must be in 1..{num_train_timesteps}, got {num_inference_steps}"
        )
    stride = num_train_timesteps // num_inference_steps
    return torch.arange(num_inference_steps - 1, -1, -1, dtype=torch.long) * stride
