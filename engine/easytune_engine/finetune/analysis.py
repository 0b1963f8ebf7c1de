"""The gradient-vanishing observation behind EasyTune: how much of ∂R/∂x0 reaches each step.

Through the whole chain, a parameter used at step t reaches the reward only through
J_t = ∂x0/∂x_{t−1} = ∏_{s < t} ∂π/∂x_s (the "chain coefficient"). `chain_coefficients` runs one
guided sampling trajectory with the full graph and, in one backward pass per probe vector u,
measures ‖uᵀ J_t‖ for every step: for random unit u (mean over probes, a Frobenius-type estimate)
and for u = ∂R/∂x0 (the reward's own direction).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models.pipeline import MotionGenerator


@dataclass(frozen=True)
class ChainCoefficients:
    timesteps: list[int]  # t of each step, noisiest first
    random_probe: list[float]  # mean over probes of ‖uᵀ ∂x0/∂x_t‖ / ‖u‖, per step
    reward_probe: list[float]  # ‖∂R/∂x_t‖ / ‖∂R/∂x0‖, per step


def chain_coefficients(
    gen: MotionGenerator,
    reward,
    prompts: list[str],
    lengths: list[int],
    *,
    probes: int = 4,
    seed: int = 0,
    steps: int | None = None,
) -> ChainCoefficients:
    opts = gen.options(steps=steps)
    lens = torch.tensor(lengths)
    cond = gen.conditioning(prompts, lens, opts)
    noise = gen.generators(len(prompts), seed)
    sched = gen.scheduler(opts)
    scale = 1.0 if gen.backbone.sampling.sampler == "lcm" else opts.guidance
    from ..diffusion.sampling import classifier_free_guidance

    model = classifier_free_guidance(gen.backbone, scale)
    xs = []
    with torch.enable_grad():
        x = gen.initial_noise(lens, noise).requires_grad_(True)
        for t in sched.timesteps.tolist():
            xs.append(x)
            tt = torch.full((x.shape[0],), t, dtype=torch.long)
            x = sched.step(model(x, tt, cond), t, x, generator=noise).prev_sample
        x0 = x
        raw = gen.backbone.denormalize(gen.backbone.decode(x0, lens))
        r = reward.reward(reward.normalize(raw), 0, prompts, lens).sum()
        g0 = torch.autograd.grad(r, x0, retain_graph=True)[0]
        reward_grads = torch.autograd.grad(x0, xs, grad_outputs=g0, retain_graph=True)
        base = g0.norm().item()
        rand = torch.zeros(len(xs))
        g = torch.Generator().manual_seed(seed + 1)
        for _ in range(probes):
            u = torch.randn(x0.shape, generator=g)
            u = u / u.norm()
            grads = torch.autograd.grad(x0, xs, grad_outputs=u, retain_graph=True)
            rand += torch.tensor([gr.norm().item() for gr in grads])
    return ChainCoefficients(
        timesteps=sched.timesteps.tolist(),
        random_probe=(rand / probes).tolist(),
        reward_probe=[gr.norm().item() / max(base, 1e-12) for gr in reward_grads],
    )
