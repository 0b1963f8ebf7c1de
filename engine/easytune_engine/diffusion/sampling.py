"""The sampling loop, classifier-free guidance, and the conditioning every denoiser takes.

    cond = Conditioning(text=pooled, lengths=lengths)              # (B, D), (B,)
    model = classifier_free_guidance(denoiser, scale=7.5)          # same call signature
    x0 = sample_loop(model, scheduler, noise, cond, hook=None)     # no no_grad inside

A denoiser is any callable `(x_t, t, cond) -> model_output` with x_t (B, ...) and t (B,) long.
The loop hands each step to `hook(StepInfo)`; a hook may return a tensor that replaces the next x
(e.g. `info.prev_sample.detach()` to stop gradients between steps, as EasyTune does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import torch

from .schedulers import Generators, Scheduler


@dataclass(frozen=True)
class Conditioning:
    """Text conditioning for a batch; text rows with `use_text` False are unconditional."""

    text: torch.Tensor  # (B, D) pooled text embedding from the frozen text encoder
    lengths: torch.Tensor  # (B,) long, motion length in frames
    use_text: torch.Tensor | None = None  # (B,) bool; None = all True
    guidance: torch.Tensor | None = None  # (B,) guidance scale w, for guidance-embedded models

    def __len__(self) -> int:
        return self.text.shape[0]

    def text_mask(self) -> torch.Tensor:
        if self.use_text is None:
            return torch.ones(len(self), dtype=torch.bool, device=self.text.device)
        return self.use_text

    def unconditional(self) -> Conditioning:
        return replace(self, use_text=torch.zeros_like(self.text_mask()))

    def repeat2(self) -> Conditioning:
        """[cond; uncond] stacked along the batch, for one guided forward pass."""
        guidance = None if self.guidance is None else self.guidance.repeat(2)
        return Conditioning(
            text=self.text.repeat(2, 1),
            lengths=self.lengths.repeat(2),
            use_text=torch.cat([self.text_mask(), torch.zeros_like(self.text_mask())]),
            guidance=guidance,
        )


class DenoiseFn(Protocol):
    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor: ...


def classifier_free_guidance(model: DenoiseFn, scale: float) -> DenoiseFn:
    """out = uncond + scale · (cond − uncond); scale 1 is exactly the conditional model."""
    if scale < 0:
        raise ValueError(f"guidance scale must be >= 0, got {scale}")
    if scale == 1.0:
        return model

    def guided(x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        both = model(torch.cat([x_t, x_t]), torch.cat([t, t]), cond.repeat2())
        c, u = both.chunk(2)
        return u + scale * (c - u)

    return guided


@dataclass(frozen=True)
class StepInfo:
    """One sampling step, as seen by a hook."""

    index: int  # 0-based step index
    t: int  # training timestep of x_t
    x_t: torch.Tensor
    model_output: torch.Tensor
    pred_x0: torch.Tensor
    prev_sample: torch.Tensor


StepHook = Callable[[StepInfo], torch.Tensor | None]


def sample_loop(
    model: DenoiseFn,
    scheduler: Scheduler,
    x_T: torch.Tensor,
    cond: Conditioning,
    *,
    hook: StepHook | None = None,
    generator: Generators = None,
) -> torch.Tensor:
    """Run the scheduler's timesteps from x_T; returns the final sample (x at t = −1)."""
    if scheduler.timesteps.numel() == 0:
        raise ValueError("the scheduler has no timesteps: call set_timesteps(n) first")
    x = x_T
    for i, t in enumerate(scheduler.timesteps.tolist()):
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        out = model(x, tt, cond)
        step = scheduler.step(out, t, x, generator=generator)
        replacement = None
        if hook is not None:
            replacement = hook(StepInfo(i, t, x, out, step.pred_x0, step.prev_sample))
        x = step.prev_sample if replacement is None else replacement
    return x
