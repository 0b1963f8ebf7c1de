"""Noise schedules: monotone ᾱ, the closed-form forward process, DDIM step placement."""

from __future__ import annotations

import pytest
import torch

from easytune_engine.diffusion.schedules import NoiseSchedule, ddim_timesteps


@pytest.mark.parametrize("name", ["cosine", "scaled_linear", "linear"])
def test_alphas_cumprod_decrease_from_one_to_near_zero(name: str) -> None:
    abar = NoiseSchedule(name).alphas_cumprod()
    assert abar.shape == (1000,)
    assert (abar[1:] < abar[:-1]).all()
    assert 0.98 < abar[0] <= 1.0
    assert abar[-1] < 0.01


def test_forward_process_matches_its_closed_form_statistics() -> None:
    sched = NoiseSchedule("scaled_linear")
    x0 = torch.full((20000, 1), 2.0)
    t = torch.full((20000,), 500, dtype=torch.long)
    xt = sched.add_noise(x0, t, torch.randn_like(x0, generator=None))
    abar = sched.alphas_cumprod()[500].item()
    assert xt.mean().item() == pytest.approx(2.0 * abar**0.5, abs=0.03)
    assert xt.std().item() == pytest.approx((1 - abar) ** 0.5, abs=0.02)


def test_ddim_timesteps_for_50_steps() -> None:
    steps = ddim_timesteps(50)
    assert steps.shape == (50,)
    assert steps[0] == 980 and steps[-1] == 0
    assert steps[24] == 500  # step 25 of 50
    with pytest.raises(ValueError, match=r"num_inference_steps must be in 1\.\.1000"):
        ddim_timesteps(0)


def test_unknown_schedule_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid: cosine, scaled_linear, linear"):
        NoiseSchedule("quadratic")  # type: ignore[arg-type]
