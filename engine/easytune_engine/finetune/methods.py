"""Reward fine-tuning methods as small strategies over one sampling trajectory.

Every method gets the same `Trajectory` (backbone + guidance + scheduler + reward + the trainer's
update functions) and differs only in where gradients flow (see ../shared/docs/methods.md):

| method         | trained steps                    | graph via x_t | reward on          | updates |
| -------------- | -------------------------------- | ------------- | ------------------ | ------- |
| easytune       | last `window` steps (0 = all)    | no: sg(x_t)   | each step's x̂0     | 1/step  |
| easytune-chain | same                             | no            | same               | 1/step* |
| draft          | last K steps                     | yes           | final x0           | 1       |
| alignprop      | each step kept with p (≥ 1)      | linear + kept | final x0           | 1       |
| drtune         | k equally spaced (random offset) | linear path   | x̂0 at a late stop  | 1       |
For x0-predicting and consistency models x̂0 *is* the model output, so AlignProp always keeps the
last step and DRTune always trains its scored step (otherwise no gradient could reach θ).
| refl           | one random late step             | no            | that step's x̂0     | 1       |
(* on a copy θ′ while sampling keeps θ; θ ← θ′ at the end of the trajectory)

Notation: a step is x_{t−1} = π_θ(x_t) = scheduler.step(ε̂_θ(x_t), t, x_t); "sg" stops gradients.
Rewards are R(decode(x̂0), 0, c) ("x0"), or the noise-aware R(decode(x_{t−1}), t−1, c) ("noisy",
feature-space backbones only: a latent x_{t−1} has no noise-aware reward).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from ..diffusion.sampling import Conditioning, classifier_free_guidance
from ..diffusion.schedulers import Scheduler, SchedulerOutput, split_prediction

MethodName = Literal["easytune", "easytune-chain", "draft", "alignprop", "drtune", "refl"]
METHODS = ("easytune", "easytune-chain", "draft", "alignprop", "drtune", "refl")


@dataclass(frozen=True)
class MethodConfig:
    name: str = "easytune"
    window: int = 10  # easytune: train the last `window` steps (0 = every step)
    k: int = 10  # draft: last K steps (K = T is full DRaFT); drtune: number of trained steps
    keep_prob: float = 0.1  # alignprop: chance each step keeps its model gradient
    late_range: int = 10  # refl / drtune: the scored step is drawn among the last `late_range`
    reward: str = "x0"  # "x0": R(x̂0, 0, c); "noisy": R(x_{t-1}, t-1, c)
    reward_scale: float = 1.0  # λ in loss = −λ·R
    # β in loss = −λ·R + β·mean((x̂0_θ − x̂0_base)²): each trained step's x̂0 is pulled toward
    # the frozen base model's x̂0 from the same sg(x_t) (easytune methods only; 0 = off)
    anchor_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in METHODS:
            raise ValueError(f"unknown method {self.name!r}; valid: {', '.join(METHODS)}")
        if self.reward not in ("x0", "noisy"):
            raise ValueError(f"unknown reward {self.reward!r}; valid: x0, noisy")
        if self.window < 0 or self.k < 1 or self.late_range < 1:
            raise ValueError("window must be >= 0, k and late_range >= 1")
        if not 0.0 < self.keep_prob <= 1.0:
            raise ValueError(f"keep_prob must be in (0, 1], got {self.keep_prob}")
        if not self.anchor_weight >= 0.0:  # also refuses NaN
            raise ValueError(f"anchor_weight must be >= 0, got {self.anchor_weight}")
        if self.anchor_weight > 0 and self.name not in ("easytune", "easytune-chain"):
            raise ValueError(
                f"anchor_weight applies to the step-aware methods (easytune, easytune-chain), "
                f"not {self.name!r}"
            )


@dataclass
class Trajectory:
    """Everything one trajectory needs; the trainer builds it."""

    model: torch.nn.Module  # the backbone (its denoiser is what gets trained)
    scheduler: Scheduler  # timesteps already set
    cond: Conditioning
    x_T: torch.Tensor
    guidance: float  # CFG scale (1.0 for guidance-embedded models)
    score: Callable[[torch.Tensor, int], torch.Tensor]  # (sample in model space, t) -> (B,) reward
    update: Callable[[torch.Tensor], None]  # backward + clip + optimizer step on θ
    shadow_update: Callable[[torch.Tensor], None]  # same, applied to the copy θ′ (chain)
    commit_shadow: Callable[[], None]  # θ ← θ′
    generator: torch.Generator  # the method's own random choices
    noise: list[torch.Generator] | None = None  # per-row sampler noise
    reference: torch.nn.Module | None = None  # the frozen base backbone (anchor_weight > 0)


@dataclass(frozen=True)
class TrajectoryResult:
    reward: float  # mean reward the method optimised (last scored)
    updates: int  # optimizer steps taken
    trained_steps: tuple[int, ...]  # step indices that received model gradients


def _model_out(tr: Trajectory, x_in: torch.Tensor, t: int) -> torch.Tensor:
    """The guided model output at step t (ε̂ or x̂0, as the backbone predicts)."""
    tt = torch.full((x_in.shape[0],), t, dtype=torch.long, device=x_in.device)
    return classifier_free_guidance(tr.model, tr.guidance)(x_in, tt, tr.cond)


def _step(tr: Trajectory, x_in: torch.Tensor, t: int, x_path: torch.Tensor | None = None):
    """One guided step; the scheduler's linear path runs through `x_path` (default: x_in)."""
    out = _model_out(tr, x_in, t)
    path = x_in if x_path is None else x_path
    return out, tr.scheduler.step(out, t, path, generator=tr.noise)


def _reference_x0(tr: Trajectory, x_in: torch.Tensor, t: int) -> torch.Tensor:
    """The frozen base model's guided x̂0 at step t from the same input (no graph)."""
    if tr.reference is None:
        raise ValueError("anchor_weight > 0 needs the trajectory's reference (base) model")
    tt = torch.full((x_in.shape[0],), t, dtype=torch.long, device=x_in.device)
    # Without grad, torch's transformer layers take their fused "fast path", whose rounding
    # differs from the path the trained copy runs: at θ = base the anchor would then see a
    # difference of ~1e-7 that AdamW blows up to lr-sized steps. Both run the same path here.
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad():
            out = classifier_free_guidance(tr.reference, tr.guidance)(x_in, tt, tr.cond)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    kind = getattr(tr.scheduler, "prediction_type", "epsilon")
    abar = tr.scheduler.abar(t) if kind == "epsilon" else 1.0  # x0-prediction: abar unused
    return split_prediction(out, x_in, abar, kind)[0]


def _x0_output(tr: Trajectory) -> bool:
    """Whether x̂0 is the model output itself (x0-prediction or consistency models), so a
    detached model output leaves no linear path from x_t to the score."""
    return getattr(tr.scheduler, "prediction_type", "epsilon") == "sample"


def _no_grad_step(tr: Trajectory, x: torch.Tensor, t: int) -> SchedulerOutput:
    with torch.no_grad():
        return _step(tr, x, t)[1]


def _step_reward(tr: Trajectory, cfg: MethodConfig, st: SchedulerOutput, t_prev: int):
    if cfg.reward == "x0":
        return tr.score(st.pred_x0, 0)
    return tr.score(st.prev_sample, max(t_prev, 0))


def _prev_t(ts: list[int], i: int) -> int:
    return ts[i + 1] if i + 1 < len(ts) else -1


def easytune(tr: Trajectory, cfg: MethodConfig, chain: bool = False) -> TrajectoryResult:
    """Per step: x_in = sg(x_t), grad on, reward the step's output, update θ right there."""
    ts = tr.scheduler.timesteps.tolist()
    first = 0 if cfg.window == 0 else max(0, len(ts) - cfg.window)
    x, updates, last = tr.x_T, 0, 0.0
    for i, t in enumerate(ts):
        if i < first:
            x = _no_grad_step(tr, x, t).prev_sample
            continue
        x_in = x.detach()
        with torch.enable_grad():
            _, st = _step(tr, x_in, t)
            r = _step_reward(tr, cfg, st, _prev_t(ts, i))
            loss = -cfg.reward_scale * r.mean()
            if cfg.anchor_weight > 0:
                drift = (st.pred_x0 - _reference_x0(tr, x_in, t)).pow(2).mean()
                loss = loss + cfg.anchor_weight * drift
            (tr.shadow_update if chain else tr.update)(loss)
        updates += 1
        last = float(r.detach().mean())
        x = st.prev_sample.detach()  # the graph of this step is freed here
    if chain:
        tr.commit_shadow()
    return TrajectoryResult(last, updates, tuple(range(first, len(ts))))


def draft(tr: Trajectory, cfg: MethodConfig) -> TrajectoryResult:
    """No-grad sampling, then the last K steps with the full graph; reward on the final x0."""
    ts = tr.scheduler.timesteps.tolist()
    first = max(0, len(ts) - cfg.k)
    x = tr.x_T
    with torch.enable_grad():
        for i, t in enumerate(ts):
            if i < first:
                x = _no_grad_step(tr, x, t).prev_sample
            else:
                x = _step(tr, x, t)[1].prev_sample
        r = tr.score(x, 0)
        tr.update(-cfg.reward_scale * r.mean())
    return TrajectoryResult(float(r.detach().mean()), 1, tuple(range(first, len(ts))))


def alignprop(tr: Trajectory, cfg: MethodConfig) -> TrajectoryResult:
    """Each step keeps its model gradient with p (at least one); dropped steps still pass the
    linear sampler path (their model output is detached, x_t is not); reward on the final x0."""
    ts = tr.scheduler.timesteps.tolist()
    keep = torch.rand(len(ts), generator=tr.generator) < cfg.keep_prob
    if not keep.any():
        keep[int(torch.randint(len(ts), (1,), generator=tr.generator))] = True
    if _x0_output(tr):  # the final sample is the last model output itself: no linear path
        keep[-1] = True
    x = tr.x_T
    with torch.enable_grad():
        for i, t in enumerate(ts):
            if keep[i]:
                x = _step(tr, x, t)[1].prev_sample
            else:
                with torch.no_grad():
                    out = _model_out(tr, x, t)
                x = tr.scheduler.step(out, t, x, generator=tr.noise).prev_sample
        r = tr.score(x, 0)
        tr.update(-cfg.reward_scale * r.mean())
    kept = tuple(int(i) for i in torch.nonzero(keep).flatten())
    return TrajectoryResult(float(r.detach().mean()), 1, kept)


def drtune(tr: Trajectory, cfg: MethodConfig) -> TrajectoryResult:
    """Denoiser input sg(x_t) at every step; k equally spaced steps (random offset) get model
    gradients; the linear path through x_t is kept; reward on x̂0 at a random late stop step."""
    ts = tr.scheduler.timesteps.tolist()
    n = len(ts)
    k = min(cfg.k, n)
    stride = n // k
    offset = int(torch.randint(stride, (1,), generator=tr.generator))
    trained = {offset + stride * j for j in range(k)}
    stop = n - 1 - int(torch.randint(min(cfg.late_range, n), (1,), generator=tr.generator))
    if _x0_output(tr) or min(trained) > stop:  # x̂0 must depend on θ through some step
        trained.add(stop)
    x = tr.x_T
    with torch.enable_grad():
        for i, t in enumerate(ts[: stop + 1]):
            x_in = x.detach()
            if i in trained:
                _, st = _step(tr, x_in, t, x_path=x)
            else:
                with torch.no_grad():
                    out = _model_out(tr, x_in, t)
                st = tr.scheduler.step(out, t, x, generator=tr.noise)
            if i == stop:
                r = tr.score(st.pred_x0, 0)
                break
            x = st.prev_sample
        tr.update(-cfg.reward_scale * r.mean())
    return TrajectoryResult(
        float(r.detach().mean()), 1, tuple(sorted(i for i in trained if i <= stop))
    )


def refl(tr: Trajectory, cfg: MethodConfig) -> TrajectoryResult:
    """No-grad sampling to a random late step, one differentiable step from sg(x_t), reward x̂0."""
    ts = tr.scheduler.timesteps.tolist()
    n = len(ts)
    s = n - 1 - int(torch.randint(min(cfg.late_range, n), (1,), generator=tr.generator))
    x = tr.x_T
    for t in ts[:s]:
        x = _no_grad_step(tr, x, t).prev_sample
    with torch.enable_grad():
        _, st = _step(tr, x.detach(), ts[s])
        r = tr.score(st.pred_x0, 0)
        tr.update(-cfg.reward_scale * r.mean())
    return TrajectoryResult(float(r.detach().mean()), 1, (s,))


def run_method(tr: Trajectory, cfg: MethodConfig) -> TrajectoryResult:
    """Dispatch by name; every method has the same signature and result."""
    if cfg.name == "easytune":
        return easytune(tr, cfg)
    if cfg.name == "easytune-chain":
        return easytune(tr, cfg, chain=True)
    return {"draft": draft, "alignprop": alignprop, "drtune": drtune, "refl": refl}[cfg.name](
        tr, cfg
    )
