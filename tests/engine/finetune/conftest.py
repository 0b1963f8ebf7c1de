"""A tiny differentiable denoiser, a DDIM schedule, a reward and recording trainer callbacks.

Everything is float64 and small, so the gradient each fine-tuning method hands to `update` can be
checked exactly against an independent hand-built computation: `eps_fn` (the same map as the
module, written on explicit parameters), our own DDIM formulas on ᾱ from the noise schedule
(`ddim_coeffs`), and finite differences.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from easytune_engine.diffusion.sampling import Conditioning
from easytune_engine.diffusion.schedulers import DDIMScheduler
from easytune_engine.diffusion.schedules import NoiseSchedule
from easytune_engine.finetune.methods import Trajectory

F64 = torch.float64
SCHEDULE = NoiseSchedule("scaled_linear")
ABAR = SCHEDULE.alphas_cumprod().tolist()
B, DIM, TEXT_DIM = 3, 4, 3
NAMES = ("W", "b", "u", "V")
Params = dict[str, torch.Tensor]


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def eps_fn(p: Params, x: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    """ε = tanh(W x + b + (t/1000)·u + [use_text]·V^T c): depends on x_t, t, the text and θ."""
    text = cond.text * cond.text_mask().to(x.dtype)[:, None]
    h = x @ p["W"].T + p["b"] + (t.to(x.dtype) / 1000.0)[:, None] * p["u"] + text @ p["V"]
    return torch.tanh(h)


def guided_eps(p: Params, x: torch.Tensor, t: int, cond: Conditioning, w: float) -> torch.Tensor:
    """Classifier-free guidance by hand: u + w (c − u)."""
    tt = torch.full((x.shape[0],), t, dtype=torch.long)
    c = eps_fn(p, x, tt, cond)
    if w == 1.0:
        return c
    return eps_fn(p, x, tt, cond.unconditional()) + w * (c - eps_fn(p, x, tt, cond.unconditional()))


class TinyDenoiser(nn.Module):
    """The denoiser call (x_t, t, cond) -> ε; records every call (input, θ, grad mode)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.W = nn.Parameter(0.6 * randn(DIM, DIM, seed=seed + 1))
        self.b = nn.Parameter(0.3 * randn(DIM, seed=seed + 2))
        self.u = nn.Parameter(0.5 * randn(DIM, seed=seed + 3))
        self.V = nn.Parameter(0.5 * randn(TEXT_DIM, DIM, seed=seed + 4))
        self.calls: list[dict] = []

    def params(self) -> Params:
        return {n: getattr(self, n) for n in NAMES}

    def snapshot(self) -> Params:
        return {n: getattr(self, n).detach().clone() for n in NAMES}

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        self.calls.append(
            {
                "x": x_t.detach().clone(),
                "t": int(t[0]),
                "theta": self.snapshot(),
                "grad_enabled": torch.is_grad_enabled(),
                "x_requires_grad": x_t.requires_grad,
            }
        )
        return eps_fn(self.params(), x_t, t, cond)


def ddim_coeffs(t: int, t_prev: int) -> tuple[float, float, float, float]:
    """(√ᾱ_t, √(1−ᾱ_t), √ᾱ_prev, √(1−ᾱ_prev)) from the schedule, ᾱ_{-1} = 1."""
    a_t = ABAR[t]
    a_p = 1.0 if t_prev < 0 else ABAR[t_prev]
    return a_t**0.5, (1 - a_t) ** 0.5, a_p**0.5, (1 - a_p) ** 0.5


def x0_hat(x: torch.Tensor, eps: torch.Tensor, t: int) -> torch.Tensor:
    """x̂0 = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t."""
    a, s, _, _ = ddim_coeffs(t, -1)
    return (x - s * eps) / a


def ddim_prev(x: torch.Tensor, eps: torch.Tensor, t: int, t_prev: int) -> torch.Tensor:
    """Deterministic DDIM: x_{t−1} = √ᾱ_prev x̂0 + √(1−ᾱ_prev) ε."""
    _, _, ap, sp = ddim_coeffs(t, t_prev)
    return ap * x0_hat(x, eps, t) + sp * eps


def ddim_step(
    x: torch.Tensor, out: torch.Tensor, t: int, t_prev: int, prediction_type: str = "epsilon"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x̂0, x_{t−1}) for an ε- or x0-predicting model output, η = 0."""
    a, s, ap, sp = ddim_coeffs(t, t_prev)
    if prediction_type == "epsilon":
        x0, eps = (x - s * out) / a, out
    else:
        x0, eps = out, (x - a * out) / s
    return x0, ap * x0 + sp * eps


def timesteps(n: int) -> list[int]:
    s = DDIMScheduler(SCHEDULE, "epsilon")
    s.set_timesteps(n)
    return s.timesteps.tolist()


def prev_of(ts: list[int], i: int) -> int:
    return ts[i + 1] if i + 1 < len(ts) else -1


TARGET = randn(B, DIM, seed=99) * 0.5


def reward(x: torch.Tensor) -> torch.Tensor:
    """r(x) = −mean_d (x − target)², one value per row."""
    return -((x - TARGET) ** 2).mean(dim=1)


@dataclass
class Recorder:
    """The trainer's callbacks: exact grads w.r.t. θ (autograd.grad), then plain SGD with `lr`.

    `update` steps θ; `shadow_update` steps a copy θ′ (gradient taken at the current θ) and
    `commit_shadow` sets θ ← θ′. `events` keeps the order of calls.
    """

    model: TinyDenoiser
    lr: float = 0.5
    grads: list[Params] = field(default_factory=list)
    theta_at: list[Params] = field(default_factory=list)  # θ when each gradient was taken
    losses: list[float] = field(default_factory=list)
    calls_at: list[int] = field(default_factory=list)  # model calls made before each update
    events: list[str] = field(default_factory=list)
    shadow: Params | None = None

    def _grad(self, loss: torch.Tensor) -> Params:
        ps = self.model.params()
        g = torch.autograd.grad(loss, list(ps.values()))
        grads = {n: gi.detach().clone() for n, gi in zip(NAMES, g, strict=True)}
        self.grads.append(grads)
        self.theta_at.append(self.model.snapshot())
        self.losses.append(float(loss.detach()))
        self.calls_at.append(len(self.model.calls))
        return grads

    def update(self, loss: torch.Tensor) -> None:
        g = self._grad(loss)
        with torch.no_grad():
            for n, p in self.model.params().items():
                p -= self.lr * g[n]
        self.events.append("update")

    def shadow_update(self, loss: torch.Tensor) -> None:
        if self.shadow is None:
            self.shadow = self.model.snapshot()
        g = self._grad(loss)
        for n in NAMES:
            self.shadow[n] -= self.lr * g[n]
        self.events.append("shadow_update")

    def commit_shadow(self) -> None:
        if self.shadow is not None:
            with torch.no_grad():
                for n, p in self.model.params().items():
                    p.copy_(self.shadow[n])
            self.shadow = None
        self.events.append("commit_shadow")


def make_cond(seed: int = 5) -> Conditioning:
    return Conditioning(
        text=randn(B, TEXT_DIM, seed=seed), lengths=torch.full((B,), 20, dtype=torch.long)
    )


@dataclass
class Setup:
    model: TinyDenoiser
    rec: Recorder
    cond: Conditioning
    x_T: torch.Tensor
    theta0: Params
    make: Callable[..., Trajectory]


@pytest.fixture
def toy() -> Iterator[Setup]:
    """A fresh model + recorder; `toy.make(T, guidance=1.0, seed=0, prediction_type=...)`
    builds the Trajectory (DDIM η = 0, scaled-linear schedule, generator seeded with `seed`)."""
    model = TinyDenoiser()
    rec = Recorder(model)
    cond = make_cond()
    x_T = randn(B, DIM, seed=7)

    def make(
        steps: int, guidance: float = 1.0, seed: int = 0, prediction_type: str = "epsilon"
    ) -> Trajectory:
        sched = DDIMScheduler(SCHEDULE, prediction_type)
        sched.set_timesteps(steps)
        return Trajectory(
            model=model,
            scheduler=sched,
            cond=cond,
            x_T=x_T,
            guidance=guidance,
            score=lambda x, t: reward(x),
            update=rec.update,
            shadow_update=rec.shadow_update,
            commit_shadow=rec.commit_shadow,
            generator=torch.Generator().manual_seed(seed),
        )

    yield Setup(model, rec, cond, x_T, model.snapshot(), make)


def flat(p: Params) -> torch.Tensor:
    return torch.cat([p[n].reshape(-1) for n in NAMES])


def unflat(v: torch.Tensor, like: Params) -> Params:
    out, i = {}, 0
    for n in NAMES:
        k = like[n].numel()
        out[n] = v[i : i + k].reshape(like[n].shape)
        i += k
    return out


def autograd_of(f: Callable[[Params], torch.Tensor], theta: Params) -> Params:
    """∂f/∂θ at θ (f: Params -> scalar), by autograd on our own formulas."""
    ps = {n: v.detach().clone().requires_grad_(True) for n, v in theta.items()}
    g = torch.autograd.grad(f(ps), [ps[n] for n in NAMES])
    return dict(zip(NAMES, g, strict=True))


def finite_diff(f: Callable[[Params], torch.Tensor], theta: Params, h: float = 1e-6) -> Params:
    """Central finite differences of f at θ, float64, one coordinate at a time."""
    v = flat(theta)
    g = torch.empty_like(v)
    with torch.no_grad():
        for j in range(v.numel()):
            e = torch.zeros_like(v)
            e[j] = h
            g[j] = (f(unflat(v + e, theta)) - f(unflat(v - e, theta))) / (2 * h)
    return unflat(g, theta)


def assert_close(a: Params, b: Params, rtol: float, atol: float = 0.0) -> None:
    fa, fb = flat(a), flat(b)
    err = (fa - fb).abs().max().item()
    scale = fb.abs().max().item()
    assert err <= atol + rtol * scale, f"max |Δ| = {err:.3e} vs scale {scale:.3e}"


_THIS = sys.modules[__name__]


@pytest.fixture(scope="session")
def ft():
    """This module, so tests reach the shared helpers without importing a `conftest` by name."""
    return _THIS


def rel_diff(a: Params, b: Params) -> float:
    fa, fb = flat(a), flat(b)
    return ((fa - fb).norm() / fb.norm()).item()
