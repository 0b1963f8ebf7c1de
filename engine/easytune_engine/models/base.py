"""The denoiser contract every backbone follows, so the fine-tuner and the server treat them alike.

A backbone is an `nn.Module` that
- denoises: `forward(x_t, t, cond) -> model_output` in its own space (`space`: raw features or a
  VAE latent), with `prediction_type` 'sample' (x̂0) or 'epsilon' (ε̂);
- knows its noise: `noise_shape(lengths)` is the shape of x_T for those motion lengths, and
  `noise_mask(lengths, n)` which of its n positions belong to each motion (losses average over
  these; the output is zero on the others);
- decodes: `decode(x0, lengths)` maps a clean sample of its space to normalised HumanML3D features
  (B, T, 263), zero after each length (identity for feature-space models; differentiable);
- carries its forward process (`schedule`), default sampler, the normalisation stats of the corpus
  it was trained on (`mean`, `std` buffers) and a typed config saved with its weights.

It never owns the text encoder: conditioning comes in as pooled embeddings (`Conditioning.text`)
from the frozen built-in encoder, whose content hash the checkpoint records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..diffusion.sampling import Conditioning
from ..diffusion.schedulers import PredictionType
from ..diffusion.schedules import NoiseSchedule
from ..layers import register_feature_stats

MAX_FRAMES = 196  # longest motion a backbone generates (HumanML3D's cap: 9.8 s at 20 fps)


@dataclass(frozen=True)
class SamplingDefaults:
    """How a backbone samples unless told otherwise."""

    sampler: str  # 'ddpm' | 'ddim' | 'lcm'
    steps: int
    guidance: float


def length_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(B,) lengths -> (B, frames) bool, True on valid frames."""
    return torch.arange(frames, device=lengths.device)[None] < lengths[:, None]


def check_lengths(lengths: torch.Tensor | list[int], max_frames: int = MAX_FRAMES) -> torch.Tensor:
    """Validate motion lengths (1..max_frames frames) -> (B,) long tensor."""
    lengths = torch.as_tensor(lengths, dtype=torch.long)
    if lengths.dim() != 1 or lengths.numel() == 0:
        raise ValueError(f"lengths must be a non-empty 1-D list, got shape {tuple(lengths.shape)}")
    bad = lengths[(lengths < 1) | (lengths > max_frames)]
    if bad.numel():
        raise ValueError(
            f"motion length {int(bad[0])} frames is out of range: valid 1..{max_frames} frames "
            f"(at 20 fps, up to {max_frames / 20:.1f} s)"
        )
    return lengths


class TextConditioner(nn.Module):
    """Pooled text embedding -> one width-W conditioning vector; a learned null for dropped text."""

    def __init__(self, text_dim: int, width: int) -> None:
        super().__init__()
        self.proj = nn.Linear(text_dim, width)
        self.null = nn.Parameter(torch.zeros(width))

    def forward(self, cond: Conditioning) -> torch.Tensor:
        h = self.proj(cond.text)  # (B, W)
        return torch.where(cond.text_mask()[:, None], h, self.null.expand_as(h))


class Backbone(nn.Module):
    """Base class of MDM-, MLD- and LCM-style backbones (see the module docstring)."""

    kind: ClassVar[str]
    space: ClassVar[str]  # 'features' | 'latent'
    prediction_type: ClassVar[PredictionType]

    def __init__(self, mean: np.ndarray | None, std: np.ndarray | None) -> None:
        super().__init__()
        register_feature_stats(self, mean, std)

    # Every backbone config carries these fields (schedule, num_train_timesteps, sampler, steps,
    # guidance, text_dim), so the properties live here once.

    @property
    def schedule(self) -> NoiseSchedule:
        c = self.config
        return NoiseSchedule(c.schedule, c.num_train_timesteps)  # type: ignore[attr-defined]

    @property
    def sampling(self) -> SamplingDefaults:
        c = self.config
        return SamplingDefaults(c.sampler, c.steps, c.guidance)  # type: ignore[attr-defined]

    @property
    def text_dim(self) -> int:
        return self.config.text_dim  # type: ignore[attr-defined]

    def noise_shape(self, lengths: torch.Tensor) -> tuple[int, ...]:
        raise NotImplementedError

    def noise_mask(self, lengths: torch.Tensor, n: int) -> torch.Tensor:
        """(B, n) bool: positions of x (dim 1 of `noise_shape`) that belong to each motion."""
        raise NotImplementedError

    def decode(self, x0: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        raise NotImplementedError

    def denormalize(self, features: torch.Tensor) -> torch.Tensor:
        """Normalised features -> raw HumanML3D features."""
        return features * self.std + self.mean

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What fine-tuning updates by default (the denoiser, never a VAE)."""
        return [p for p in self.parameters() if p.requires_grad]
