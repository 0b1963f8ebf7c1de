"""The sampling loop, classifier-free guidance and Conditioning, with a tiny linear denoiser."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
import torch
from torch import nn

from easytune_engine.diffusion.sampling import (
    Conditioning,
    StepInfo,
    classifier_free_guidance,
    sample_loop,
)
from easytune_engine.diffusion.schedulers import (
    DDIMScheduler,
    DDPMScheduler,
    Scheduler,
)
from easytune_engine.diffusion.schedules import NoiseSchedule

F64 = torch.float64
SCHEDULE = NoiseSchedule("scaled_linear")
DIM, TEXT_DIM = 4, 3


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


class ToyDenoiser(nn.Module):
    """Row-independent, differentiable, and sensitive to x_t, t, the text and its mask."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.x = nn.Linear(DIM, DIM, dtype=F64)
        self.text = nn.Linear(TEXT_DIM, DIM, dtype=F64)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        text = self.text(cond.text) * cond.text_mask().to(F64)[:, None]
        return self.x(x_t) + text + 1e-3 * t.to(F64)[:, None]


def make_cond(batch: int = 3, seed: int = 0) -> Conditioning:
    return Conditioning(text=randn(batch, TEXT_DIM, seed=seed), lengths=torch.arange(batch) + 20)


def ddim(n: int, prediction_type: str = "sample", eta: float = 0.0) -> DDIMScheduler:
    sched = DDIMScheduler(SCHEDULE, prediction_type, eta=eta)  # type: ignore[arg-type]
    sched.set_timesteps(n)
    return sched


# --------------------------------------------------------------------------- Conditioning


def test_repeat2_stacks_cond_then_uncond() -> None:
    """repeat2 is [cond; uncond]: text/lengths/guidance twice, use_text True... then False..."""
    cond = Conditioning(
        text=randn(3, TEXT_DIM, seed=1),
        lengths=torch.tensor([20, 30, 40]),
        guidance=torch.tensor([1.0, 2.0, 3.0]),
    )
    both = cond.repeat2()
    assert len(both) == 6
    assert torch.equal(both.text, torch.cat([cond.text, cond.text]))
    assert both.lengths.tolist() == [20, 30, 40, 20, 30, 40]
    assert both.use_text is not None
    assert both.use_text.dtype == torch.bool
    assert both.use_text.tolist() == [True, True, True, False, False, False]
    assert both.guidance is not None and both.guidance.tolist() == [1.0, 2.0, 3.0] * 2


def test_repeat2_keeps_rows_that_were_already_unconditional() -> None:
    """A row dropped from the conditional half stays unconditional; the second half is all off."""
    cond = Conditioning(
        text=randn(2, TEXT_DIM, seed=2),
        lengths=torch.tensor([5, 6]),
        use_text=torch.tensor([True, False]),
    )
    both = cond.repeat2()
    assert both.text_mask().tolist() == [True, False, False, False]
    assert both.guidance is None
    assert cond.unconditional().text_mask().tolist() == [False, False]
    assert torch.equal(cond.unconditional().text, cond.text)


# --------------------------------------------------------------------------- guidance


def test_guidance_scale_one_is_exactly_the_conditional_model() -> None:
    """Scale 1 adds nothing: outputs are bit-identical to calling the model with cond."""
    model = ToyDenoiser()
    x, t, cond = randn(3, DIM, seed=3), torch.tensor([999, 500, 0]), make_cond()
    guided = classifier_free_guidance(model, 1.0)
    assert torch.equal(guided(x, t, cond), model(x, t, cond))


@pytest.mark.parametrize("scale", [0.0, 2.5, 7.5])
def test_guidance_is_uncond_plus_scale_times_difference(scale: float) -> None:
    """out = u + s(c − u), with c and u from separate conditional/unconditional calls."""
    model = ToyDenoiser()
    x, t, cond = randn(3, DIM, seed=4), torch.tensor([980, 500, 20]), make_cond()
    c, u = model(x, t, cond), model(x, t, cond.unconditional())
    assert not torch.allclose(c, u)  # the toy model does listen to the text
    got = classifier_free_guidance(model, scale)(x, t, cond)
    torch.testing.assert_close(got, u + scale * (c - u), rtol=1e-12, atol=1e-12)


def test_negative_guidance_scale_raises() -> None:
    """A negative scale is rejected up front."""
    with pytest.raises(ValueError, match=r"guidance scale must be >= 0, got -1\.0"):
        classifier_free_guidance(ToyDenoiser(), -1.0)


# --------------------------------------------------------------------------- sample_loop


def test_sample_loop_calls_the_hook_once_per_step_with_the_step_it_took() -> None:
    """The hook sees index i, timestep t, the x_t the model got, and the step's outputs."""
    model, sched, cond = ToyDenoiser(), ddim(5), make_cond()
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def recording(x_t: torch.Tensor, t: torch.Tensor, c: Conditioning) -> torch.Tensor:
        seen.append((x_t, t))
        return model(x_t, t, c)

    infos: list[StepInfo] = []
    x_T = randn(3, DIM, seed=5)
    out = sample_loop(recording, sched, x_T, cond, hook=infos.append)
    ts = sched.timesteps.tolist()
    assert [i.index for i in infos] == list(range(5))
    assert [i.t for i in infos] == ts
    assert infos[0].x_t is x_T
    for info, (x_in, t_in), t in zip(infos, seen, ts, strict=True):
        assert info.x_t is x_in
        assert t_in.dtype == torch.long and t_in.tolist() == [t] * 3
        step = sched.step(info.model_output, t, info.x_t)
        assert torch.equal(step.prev_sample, info.prev_sample)
        assert torch.equal(step.pred_x0, info.pred_x0)
    for before, after in itertools.pairwise(infos):
        assert after.x_t is before.prev_sample  # a hook returning None changes nothing
    assert out is infos[-1].prev_sample


def test_a_tensor_returned_by_the_hook_replaces_the_next_x() -> None:
    """Whatever the hook returns is the x_t of the next step (and the loop's result at the end)."""
    model, sched, cond = ToyDenoiser(), ddim(3), make_cond()
    replacements = [randn(3, DIM, seed=40 + i) for i in range(3)]
    infos: list[StepInfo] = []

    def hook(info: StepInfo) -> torch.Tensor:
        infos.append(info)
        return replacements[info.index]

    out = sample_loop(model, sched, randn(3, DIM, seed=6), cond, hook=hook)
    assert infos[1].x_t is replacements[0] and infos[2].x_t is replacements[1]
    assert out is replacements[2]


def test_detaching_hook_cuts_the_graph_between_steps() -> None:
    """Returning prev_sample.detach() leaves no gradient path from the output to step 0."""
    model, cond = ToyDenoiser(), make_cond()
    first_gain = nn.Parameter(torch.tensor(1.0, dtype=F64))  # used by step 0 only
    sched = ddim(4)
    t0 = int(sched.timesteps[0])

    def denoise(x_t: torch.Tensor, t: torch.Tensor, c: Conditioning) -> torch.Tensor:
        out = model(x_t, t, c)
        return out * first_gain if int(t[0]) == t0 else out

    def detach_but_last(info: StepInfo) -> torch.Tensor | None:
        return None if info.index == len(sched.timesteps) - 1 else info.prev_sample.detach()

    for hook, connected in ((None, True), (detach_but_last, False)):
        x_T = randn(3, DIM, seed=7).requires_grad_()
        out = sample_loop(denoise, sched, x_T, cond, hook=hook)
        g_x, g_gain, g_w = torch.autograd.grad(
            out.sum(), [x_T, first_gain, model.x.weight], allow_unused=True
        )
        assert g_w is not None and g_w.abs().sum() > 0  # the last step still trains the model
        assert (g_x is not None) == connected and (g_gain is not None) == connected
        if connected:
            assert g_x is not None and g_x.abs().sum() > 0


def test_sample_loop_without_timesteps_raises() -> None:
    """Forgetting set_timesteps is a clear ValueError, not a silent no-op returning x_T."""
    sched = DDIMScheduler(SCHEDULE, "sample")
    with pytest.raises(ValueError, match=r"set_timesteps\(n\) first"):
        sample_loop(ToyDenoiser(), sched, randn(3, DIM, seed=8), make_cond())


def test_sample_loop_with_guidance_runs_the_guided_model() -> None:
    """The loop's first model output is the guided one, u + s(c − u), at x_T and t_0."""
    model, sched, cond = ToyDenoiser(), ddim(2), make_cond()
    x_T = randn(3, DIM, seed=9)
    infos: list[StepInfo] = []
    sample_loop(classifier_free_guidance(model, 3.0), sched, x_T, cond, hook=infos.append)
    t = torch.full((3,), int(sched.timesteps[0]))
    c, u = model(x_T, t, cond), model(x_T, t, cond.unconditional())
    torch.testing.assert_close(infos[0].model_output, u + 3.0 * (c - u), rtol=1e-12, atol=1e-12)


def _ddpm() -> Scheduler:
    return DDPMScheduler(SCHEDULE, "epsilon")


def _ddim_eta1() -> Scheduler:
    return DDIMScheduler(SCHEDULE, "sample", eta=1.0)


@pytest.mark.parametrize("make", [_ddpm, _ddim_eta1], ids=["ddpm", "ddim-eta1"])
def test_sample_loop_per_row_generators_are_batch_independent(
    make: Callable[[], Scheduler],
) -> None:
    """With one generator per row, each sample is the one that row gets when sampled alone."""
    sched = make()
    sched.set_timesteps(5)
    model, cond = ToyDenoiser(), make_cond()
    x_T = randn(3, DIM, seed=10)
    seeds = [3, 4, 5]
    batch = sample_loop(
        model, sched, x_T, cond, generator=[torch.Generator().manual_seed(s) for s in seeds]
    )
    for b, s in enumerate(seeds):
        row = Conditioning(text=cond.text[b : b + 1], lengths=cond.lengths[b : b + 1])
        alone = sample_loop(
            model, sched, x_T[b : b + 1], row, generator=[torch.Generator().manual_seed(s)]
        )
        torch.testing.assert_close(batch[b : b + 1], alone, rtol=1e-10, atol=1e-10)
