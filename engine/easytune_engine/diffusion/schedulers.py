"""Samplers as schedulers: `set_timesteps(n)` then `step(model_output, t, x_t) -> SchedulerOutput`.

Every scheduler shares one shape (diffusers' idea, k-diffusion's small-and-alike spirit):

    sched = DDIMScheduler(schedule, prediction_type="epsilon", eta=0.0)
    sched.set_timesteps(50)                     # sched.timesteps: (50,) long, noisiest first
    for t in sched.timesteps.tolist():
        out = sched.step(model(x, t), t, x)    # out.prev_sample: x_{t_prev}; out.pred_x0: x̂0
        x = out.prev_sample

Nothing here calls `no_grad`: a step is differentiable in `model_output` and `x_t`, so the caller
(the fine-tuner) decides where gradients flow. Notation: ᾱ_t = `alphas_cumprod[t]`; the step after
the last one sits at "t = −1", where ᾱ = 1 (the clean sample).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import torch

from .schedules import NoiseSchedule, ddim_timesteps

PredictionType = Literal["sample", "epsilon"]  # the model predicts x0, or the noise ε
PREDICTION_TYPES = ("sample", "epsilon")


@dataclass(frozen=True)
class SchedulerOutput:
    prev_sample: torch.Tensor  # x at the next (less noisy) timestep, same shape as x_t
    pred_x0: torch.Tensor  # x̂0 predicted at this step


class Scheduler(Protocol):
    """What every sampler offers; `timesteps` is set by `set_timesteps`."""

    schedule: NoiseSchedule
    timesteps: torch.Tensor

    def set_timesteps(self, num_inference_steps: int) -> None: ...

    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        x_t: torch.Tensor,
        generator: Generators = None,
    ) -> SchedulerOutput: ...


def check_prediction_type(prediction_type: str) -> None:
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"unknown prediction_type {prediction_type!r}; valid: sample, epsilon")


def split_prediction(
    model_output: torch.Tensor, x_t: torch.Tensor, abar_t: float, prediction_type: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x̂0, ε̂) from the model output at a step with ᾱ_t = abar_t (x_t = √ᾱ x0 + √(1−ᾱ) ε)."""
    a, s = abar_t**0.5, (1.0 - abar_t) ** 0.5
    if prediction_type == "sample":
        x0 = model_output
        eps = (x_t - a * x0) / max(s, 1e-8)
    else:
        eps = model_output
        x0 = (x_t - s * eps) / a
    return x0, eps


CANONICAL_ROWS = 256  # per-row noise is drawn at this length along dim 1, then cropped


def row_noise(shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    """N(0, I) of `shape` whose leading entries along dim 0 do not depend on shape[0].

    Drawn at CANONICAL_ROWS along dim 0 and cropped, so a motion's noise is the same whether it
    is sampled alone or padded to a longer batch-mate's length.
    """
    shape = tuple(shape)
    rows = max(shape[0], CANONICAL_ROWS) if shape else 0
    full = torch.randn((rows, *shape[1:]), generator=generator) if shape else torch.randn(())
    return full[: shape[0]] if shape else full


class NoiseTape:
    """Every noise draw of a sampling run, kept in fixed tensors so the run can be replayed.

        tape = NoiseTape(streams)            # per-row generators, as for the eager loop
        x0 = loop(..., generator=tape)       # first run: draws like the eager loop and keeps them
        tape.rewind(); tape.refill(other)    # the next run: same tensors, new rows' noise
        x0 = loop(..., generator=tape)       # or a CUDA graph that captured the loop replays

    A run fed from a tape draws exactly what the eager loop would draw from the same generators,
    in the same order, so it produces the same motion; the tape's tensors never move, which is
    what a captured CUDA graph needs.
    """

    def __init__(self, generators: Sequence[torch.Generator]) -> None:
        self.generators = list(generators)
        self.buffers: list[torch.Tensor] = []
        self.recording = True
        self.cursor = 0

    def take(self, x: torch.Tensor) -> torch.Tensor:
        if self.recording:
            noise = _row_noise_like(x, self.generators)
            self.buffers.append(noise)
            return noise
        if self.cursor >= len(self.buffers) or self.buffers[self.cursor].shape != x.shape:
            raise RuntimeError("this sampling run draws noise the recorded run did not")
        noise = self.buffers[self.cursor]
        self.cursor += 1
        return noise

    def rewind(self) -> None:
        """Stop recording; the next run reads the kept tensors from the first."""
        self.recording = False
        self.cursor = 0

    def refill(self, generators: Sequence[torch.Generator]) -> None:
        """Draw new noise into the same tensors, in the order the loop consumes it."""
        if len(generators) != len(self.generators):
            raise ValueError(f"{len(generators)} generators for a tape of {len(self.generators)}")
        self.generators = list(generators)
        for buf in self.buffers:
            buf.copy_(_row_noise_like(buf, self.generators))


Generators = torch.Generator | Sequence[torch.Generator] | NoiseTape | None


def _row_noise_like(x: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
    if len(generators) != x.shape[0]:
        raise ValueError(f"{len(generators)} generators for a batch of {x.shape[0]}")
    rows = [row_noise(x.shape[1:], g).to(x.dtype) for g in generators]
    return torch.stack(rows).to(x.device)


def _noise_like(x: torch.Tensor, generator: Generators) -> torch.Tensor:
    """Fresh N(0, I) noise; a list of generators draws row b of the batch from generator b."""
    if isinstance(generator, NoiseTape):
        return generator.take(x)
    if generator is None or isinstance(generator, torch.Generator):
        return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return _row_noise_like(x, generator)


class _Strided:
    """Shared bookkeeping: the schedule, ᾱ as Python floats, and the visited timesteps."""

    def __init__(self, schedule: NoiseSchedule, prediction_type: PredictionType) -> None:
        check_prediction_type(prediction_type)
        self.schedule = schedule
        self.prediction_type = prediction_type
        self._abar = schedule.alphas_cumprod().tolist()
        self.timesteps = torch.empty(0, dtype=torch.long)
        self._prev: dict[int, int] = {}

    def _set(self, timesteps: torch.Tensor) -> None:
        self.timesteps = timesteps
        ts = timesteps.tolist()
        self._prev = {t: (ts[i + 1] if i + 1 < len(ts) else -1) for i, t in enumerate(ts)}

    def set_timesteps(self, num_inference_steps: int) -> None:
        self._set(ddim_timesteps(num_inference_steps, self.schedule.num_train_timesteps))

    def abar(self, t: int) -> float:
        return 1.0 if t < 0 else self._abar[t]

    def prev_timestep(self, t: int) -> int:
        if t not in self._prev:
            raise ValueError(
                f"t = {t} is not one of this scheduler's timesteps (call set_timesteps first); "
                f"valid: {self.timesteps.tolist()}"
            )
        return self._prev[t]


class DDIMScheduler(_Strided):
    """DDIM (Song et al. 2021): η = 0 is the deterministic ODE sampler, η = 1 DDPM-like noise."""

    def __init__(
        self,
        schedule: NoiseSchedule,
        prediction_type: PredictionType = "epsilon",
        eta: float = 0.0,
    ) -> None:
        super().__init__(schedule, prediction_type)
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1], got {eta}")
        self.eta = eta

    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        x_t: torch.Tensor,
        generator: Generators = None,
    ) -> SchedulerOutput:
        prev = self.prev_timestep(t)
        a_t, a_prev = self.abar(t), self.abar(prev)
        x0, eps = split_prediction(model_output, x_t, a_t, self.prediction_type)
        sigma = self.eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5
        direction = max(1 - a_prev - sigma**2, 0.0) ** 0.5
        x_prev = a_prev**0.5 * x0 + direction * eps
        if sigma > 0:
            x_prev = x_prev + sigma * _noise_like(x_t, generator)
        return SchedulerOutput(prev_sample=x_prev, pred_x0=x0)


class DDPMScheduler(_Strided):
    """DDPM ancestral sampling (the SDE), respaced to the visited timesteps as MDM does.

    Between visited steps t → s the effective β' = 1 − ᾱ_t/ᾱ_s; the posterior q(x_s | x_t, x̂0) has
    mean c0·x̂0 + c1·x_t and variance β'(1 − ᾱ_s)/(1 − ᾱ_t); the last step returns x̂0.
    """

    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        x_t: torch.Tensor,
        generator: Generators = None,
    ) -> SchedulerOutput:
        prev = self.prev_timestep(t)
        a_t, a_prev = self.abar(t), self.abar(prev)
        x0, _ = split_prediction(model_output, x_t, a_t, self.prediction_type)
        if prev < 0:
            return SchedulerOutput(prev_sample=x0, pred_x0=x0)
        beta = 1 - a_t / a_prev
        c0 = a_prev**0.5 * beta / (1 - a_t)
        c1 = (1 - beta) ** 0.5 * (1 - a_prev) / (1 - a_t)
        var = beta * (1 - a_prev) / (1 - a_t)
        x_prev = c0 * x0 + c1 * x_t + var**0.5 * _noise_like(x_t, generator)
        return SchedulerOutput(prev_sample=x_prev, pred_x0=x0)


class LCMScheduler(_Strided):
    """Latent-consistency multi-step sampling (MotionLCM): the model output is the consistency
    function's clean estimate; between steps it is re-noised to the next timestep.

    Timesteps come from the distillation grid t = k·(j+1) − 1 (k = T / `origin_steps`), taken
    evenly from the noisiest: 1 step → [999], 2 → [999, 499], 4 → [999, 759, 519, 279].
    """

    def __init__(self, schedule: NoiseSchedule, origin_steps: int = 50) -> None:
        super().__init__(schedule, "sample")
        if not 1 <= origin_steps <= schedule.num_train_timesteps:
            raise ValueError(f"origin_steps must be in 1..{schedule.num_train_timesteps}")
        self.origin_steps = origin_steps

    def grid(self) -> torch.Tensor:
        """The distillation grid, cleanest first: (origin_steps,) long."""
        k = self.schedule.num_train_timesteps // self.origin_steps
        return torch.arange(1, self.origin_steps + 1, dtype=torch.long) * k - 1

    def set_timesteps(self, num_inference_steps: int) -> None:
        if not 1 <= num_inference_steps <= self.origin_steps:
            raise ValueError(
                f"num_inference_steps must be in 1..{self.origin_steps}, got {num_inference_steps}"
            )
        grid = self.grid().flip(0)  # noisiest first
        skip = self.origin_steps // num_inference_steps
        self._set(grid[::skip][:num_inference_steps].clone())

    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        x_t: torch.Tensor,
        generator: Generators = None,
    ) -> SchedulerOutput:
        prev = self.prev_timestep(t)
        x0 = model_output
        if prev < 0:
            return SchedulerOutput(prev_sample=x0, pred_x0=x0)
        a_prev = self.abar(prev)
        x_prev = a_prev**0.5 * x0 + (1 - a_prev) ** 0.5 * _noise_like(x_t, generator)
        return SchedulerOutput(prev_sample=x_prev, pred_x0=x0)


SamplerName = Literal["ddpm", "ddim", "lcm"]
SAMPLERS = ("ddpm", "ddim", "lcm")


def make_scheduler(
    name: str,
    schedule: NoiseSchedule,
    prediction_type: PredictionType,
    *,
    eta: float = 0.0,
    origin_steps: int = 50,
) -> Scheduler:
    """A scheduler by name: 'ddpm' (SDE), 'ddim' (ODE, η), 'lcm' (consistency, x0 outputs)."""
    if name == "ddpm":
        return DDPMScheduler(schedule, prediction_type)
    if name == "ddim":
        return DDIMScheduler(schedule, prediction_type, eta)
    if name == "lcm":
        if prediction_type != "sample":
            raise ValueError("the lcm sampler takes consistency outputs (prediction_type 'sample')")
        return LCMScheduler(schedule, origin_steps)
    raise ValueError(f"unknown sampler {name!r}; valid: {', '.join(SAMPLERS)}")
