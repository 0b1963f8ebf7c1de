"""Diffusion core contract: the closed-form forward process and every sampler's step().

One test class (`TestSchedulerContract`) runs the shared contract over every scheduler and valid
prediction type; the sampler-specific maths (DDIM's update, DDPM's posterior, LCM's grid) follows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from easytune_engine.diffusion.schedulers import (
    DDIMScheduler,
    DDPMScheduler,
    LCMScheduler,
    PredictionType,
    Scheduler,
    SchedulerOutput,
    make_scheduler,
)
from easytune_engine.diffusion.schedules import NoiseSchedule, ddim_timesteps

F64 = torch.float64
SCHEDULE = NoiseSchedule("scaled_linear")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=gen(seed), dtype=F64)


def abar_at(schedule: NoiseSchedule, t: int) -> float:
    """ᾱ_t, with ᾱ = 1 at t = −1 (the clean sample)."""
    return 1.0 if t < 0 else schedule.alphas_cumprod()[t].item()


def oracle(prediction_type: str, x0: torch.Tensor, x_t: torch.Tensor, t: int) -> torch.Tensor:
    """What a perfect model outputs at (x_t, t): x0 itself, or the ε with x_t = √ᾱ x0 + √(1−ᾱ) ε."""
    if prediction_type == "sample":
        return x0.clone()
    abar_t = abar_at(SCHEDULE, t)
    return (x_t - abar_t**0.5 * x0) / (1.0 - abar_t) ** 0.5


def run_loop(
    sched: Scheduler,
    x_T: torch.Tensor,
    model: Callable[[torch.Tensor, int], torch.Tensor],
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The documented loop; returns the final x and every x visited (x_T first)."""
    x, visited = x_T, [x_T]
    for t in sched.timesteps.tolist():
        x = sched.step(model(x, t), t, x, generator=generator).prev_sample
        visited.append(x)
    return x, visited


# --------------------------------------------------------------------------- forward process


def published_alphas_cumprod(name: str, n: int = 1000) -> torch.Tensor:
    """ᾱ_t from the papers' definitions, written independently of `NoiseSchedule`."""
    if name == "cosine":
        # Nichol & Dhariwal 2021: ᾱ_t = f(t+1)/f(0), f(u) = cos²((u/T + s)/(1 + s)·π/2)
        s = 0.008

        def f(u: float) -> float:
            return math.cos((u / n + s) / (1 + s) * math.pi / 2) ** 2

        return torch.tensor([f(t + 1) / f(0) for t in range(n)], dtype=F64)
    # scaled_linear (Stable Diffusion / MLD): √β evenly spaced between √β_start and √β_end
    lo, hi = 0.00085**0.5, 0.012**0.5
    out, prod = [], 1.0
    for i in range(n):
        beta = (lo + (hi - lo) * i / (n - 1)) ** 2
        prod *= 1.0 - beta
        out.append(prod)
    return torch.tensor(out, dtype=F64)


@pytest.mark.parametrize("name", ["cosine", "scaled_linear"])
def test_alphas_cumprod_follow_the_published_schedule(name: str) -> None:
    """ᾱ is the paper's schedule, strictly decreasing and inside (0, 1]."""
    abar = NoiseSchedule(name).alphas_cumprod()
    ref = published_alphas_cumprod(name)
    assert abar.dtype == F64 and abar.shape == (1000,)
    # cosine's last β is clipped at 0.999 (ᾱ_999 = 0.001·ᾱ_998 instead of 0), so compare before it
    torch.testing.assert_close(abar[:-1], ref[:-1], rtol=1e-9, atol=1e-12)
    assert (abar[1:] < abar[:-1]).all()
    assert (abar > 0).all() and (abar <= 1).all()


@pytest.mark.parametrize("name", ["cosine", "scaled_linear"])
def test_add_noise_is_the_closed_form_marginal(name: str) -> None:
    """x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε, with a per-row t broadcast over the trailing dims."""
    schedule = NoiseSchedule(name)
    x0, eps = randn(4, 3, 5, seed=0), randn(4, 3, 5, seed=1)
    t = torch.tensor([0, 17, 500, 999])
    abar = published_alphas_cumprod(name)
    if name == "cosine":
        abar[-1] = abar[-2] * 0.001  # the last β is clipped at 0.999
    expected = torch.stack(
        [abar[ti].sqrt() * x0[i] + (1 - abar[ti]).sqrt() * eps[i] for i, ti in enumerate(t)]
    )
    torch.testing.assert_close(schedule.add_noise(x0, t, eps), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["cosine", "scaled_linear"])
def test_iterated_one_step_transitions_match_add_noise_statistics(name: str) -> None:
    """Chaining q(x_t|x_{t−1}) = N(√(1−β_t) x_{t−1}, β_t I) from x0 has add_noise's marginal."""
    schedule = NoiseSchedule(name)
    n, g = 6000, gen(1234)
    x0 = torch.tensor([[-1.5, 0.0, 2.0]], dtype=F64)
    x = x0.expand(n, 3).clone()
    betas = schedule.betas()
    checkpoints = {0, 99, 499, 900, 999}
    for t in range(schedule.num_train_timesteps):
        b = betas[t].item()
        x = (1 - b) ** 0.5 * x + b**0.5 * torch.randn(x.shape, generator=g, dtype=F64)
        if t not in checkpoints:
            continue
        tt = torch.full((1,), t)
        mean = schedule.add_noise(x0, tt, torch.zeros_like(x0))[0]  # √ᾱ x0
        var = schedule.add_noise(torch.zeros_like(x0), tt, torch.ones_like(x0))[0] ** 2  # 1−ᾱ
        # 6 standard errors of the sample mean / variance (fixed seed, so this is deterministic)
        assert (x.mean(0) - mean).abs().max() < 6 * (var / n).sqrt().max(), t
        assert (x.var(0) - var).abs().max() < 6 * (var * (2 / n) ** 0.5).max(), t


# --------------------------------------------------------------------------- shared contract


@dataclass(frozen=True)
class Case:
    """One scheduler configuration the shared contract runs on."""

    id: str
    make: Callable[[], Scheduler]
    prediction_type: PredictionType
    deterministic: bool  # the step draws no noise
    uses_x_t: bool  # prev_sample depends on x_t at a non-final step (LCM re-noises x̂0 only)
    max_steps: int


def _case(kind: str, prediction_type: PredictionType) -> Case:
    if kind == "ddpm":
        return Case(
            f"ddpm-{prediction_type}",
            lambda: DDPMScheduler(SCHEDULE, prediction_type),
            prediction_type,
            deterministic=False,
            uses_x_t=True,
            max_steps=1000,
        )
    if kind == "lcm":
        return Case("lcm-sample", lambda: LCMScheduler(SCHEDULE), "sample", False, False, 50)
    eta = 0.0 if kind == "ddim0" else 1.0
    return Case(
        f"{kind}-{prediction_type}",
        lambda: DDIMScheduler(SCHEDULE, prediction_type, eta=eta),
        prediction_type,
        deterministic=eta == 0.0,
        uses_x_t=True,
        max_steps=1000,
    )


CASES = [_case(kind, p) for kind in ("ddpm", "ddim0", "ddim1") for p in ("sample", "epsilon")] + [
    _case("lcm", "sample")
]


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


class TestSchedulerContract:
    """What every sampler promises the generation pipeline and the fine-tuner."""

    @pytest.mark.parametrize("n", [1, 3, 4, 7, 10, 50])
    def test_set_timesteps_gives_n_decreasing_timesteps_in_range(self, case: Case, n: int) -> None:
        """n long timesteps, noisiest first, strictly decreasing, inside 0 .. T−1."""
        sched = case.make()
        sched.set_timesteps(n)
        ts = sched.timesteps
        assert ts.dtype == torch.long and ts.shape == (n,)
        assert (ts[1:] < ts[:-1]).all()
        assert ts.min() >= 0 and ts.max() <= SCHEDULE.num_train_timesteps - 1

    def test_step_output_has_x_t_shape(self, case: Case) -> None:
        """step() returns a SchedulerOutput whose tensors have x_t's shape, at every step."""
        sched = case.make()
        sched.set_timesteps(4)
        x = randn(2, 6, 3, seed=0)
        for t in sched.timesteps.tolist():
            out = sched.step(randn(2, 6, 3, seed=t), t, x, generator=gen(t))
            assert isinstance(out, SchedulerOutput)
            assert out.prev_sample.shape == x.shape and out.pred_x0.shape == x.shape
            x = out.prev_sample

    @pytest.mark.parametrize("t_index", [0, 2])
    def test_oracle_output_predicts_x0_exactly(self, case: Case, t_index: int) -> None:
        """Given the true x0 (or the true ε of x_t), pred_x0 is x0."""
        sched = case.make()
        sched.set_timesteps(5)
        t = int(sched.timesteps[t_index])
        x0, eps = randn(3, 4, seed=1), randn(3, 4, seed=2)
        x_t = SCHEDULE.add_noise(x0, torch.full((3,), t), eps)
        out = sched.step(oracle(case.prediction_type, x0, x_t, t), t, x_t, generator=gen(0))
        torch.testing.assert_close(out.pred_x0, x0, rtol=1e-9, atol=1e-9)

    @pytest.mark.parametrize("n", [1, 4, 10])
    def test_oracle_loop_ends_at_x0(self, case: Case, n: int) -> None:
        """The whole loop with a perfect model returns x0 (the last step lands on t = −1)."""
        sched = case.make()
        sched.set_timesteps(n)
        x0 = randn(3, 4, seed=3)
        x_T = randn(3, 4, seed=4)
        final, _ = run_loop(
            sched, x_T, lambda x, t: oracle(case.prediction_type, x0, x, t), generator=gen(5)
        )
        torch.testing.assert_close(final, x0, rtol=1e-9, atol=1e-9)

    def test_step_is_differentiable(self, case: Case) -> None:
        """No no_grad inside step(): gradients reach model_output (and x_t where it is used)."""
        sched = case.make()
        sched.set_timesteps(4)
        t = int(sched.timesteps[0])
        out_in = randn(2, 3, seed=6).requires_grad_()
        x_t = randn(2, 3, seed=7).requires_grad_()
        out = sched.step(out_in, t, x_t, generator=gen(0))
        assert out.prev_sample.requires_grad and out.pred_x0.requires_grad
        g_out, g_x = torch.autograd.grad(
            out.prev_sample.square().sum() + out.pred_x0.sum(), [out_in, x_t], allow_unused=True
        )
        assert g_out is not None and g_out.abs().min() > 0
        if case.uses_x_t:
            assert g_x is not None and g_x.abs().min() > 0

    def test_step_at_unknown_timestep_names_the_valid_ones(self, case: Case) -> None:
        """A t outside the schedule is a ValueError listing the schedule's timesteps."""
        sched = case.make()
        x = randn(1, 2, seed=0)
        with pytest.raises(ValueError, match=r"call set_timesteps first.*valid: \[\]"):
            sched.step(x, 999, x)
        sched.set_timesteps(2)
        valid = sched.timesteps.tolist()
        with pytest.raises(ValueError, match=rf"t = 1 .*valid: \[{valid[0]}, {valid[1]}\]"):
            sched.step(x, 1, x)

    @pytest.mark.parametrize("which", ["zero", "negative", "above_max"])
    def test_invalid_step_count_names_the_valid_range(self, case: Case, which: str) -> None:
        """set_timesteps outside 1..max raises ValueError with the allowed range."""
        n = {"zero": 0, "negative": -1, "above_max": case.max_steps + 1}[which]
        sched = case.make()
        with pytest.raises(ValueError, match=rf"must be in 1\.\.{case.max_steps}, got {n}"):
            sched.set_timesteps(n)

    def test_deterministic_steps_ignore_the_generator(self, case: Case) -> None:
        """Noise-free samplers give one answer; noisy ones follow (and reproduce from) the seed."""
        sched = case.make()
        sched.set_timesteps(4)
        t = int(sched.timesteps[0])
        out_in, x_t = randn(2, 5, seed=8), randn(2, 5, seed=9)
        a = sched.step(out_in, t, x_t, generator=gen(1)).prev_sample
        b = sched.step(out_in, t, x_t, generator=gen(2)).prev_sample
        again = sched.step(out_in, t, x_t, generator=gen(1)).prev_sample
        assert torch.equal(a, again)
        assert torch.equal(a, b) == case.deterministic

    def test_no_generator_draws_from_the_global_rng(self, case: Case) -> None:
        """generator=None still samples (fresh noise per call), reproducible via manual_seed."""
        sched = case.make()
        sched.set_timesteps(4)
        t = int(sched.timesteps[0])
        out_in, x_t = randn(2, 5, seed=8), randn(2, 5, seed=9)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            a = sched.step(out_in, t, x_t).prev_sample
            b = sched.step(out_in, t, x_t).prev_sample
            torch.manual_seed(0)
            again = sched.step(out_in, t, x_t).prev_sample
        assert torch.equal(a, again)
        assert torch.equal(a, b) == case.deterministic


# --------------------------------------------------------------------------- make_scheduler


@pytest.mark.parametrize(
    ("name", "prediction_type", "cls"),
    [
        ("ddpm", "epsilon", DDPMScheduler),
        ("ddim", "sample", DDIMScheduler),
        ("lcm", "sample", LCMScheduler),
    ],
)
def test_make_scheduler_builds_the_named_sampler(
    name: str, prediction_type: PredictionType, cls: type
) -> None:
    """Each documented name builds that sampler with the asked-for prediction type."""
    sched = make_scheduler(name, SCHEDULE, prediction_type, eta=0.5, origin_steps=25)
    assert type(sched) is cls
    assert sched.prediction_type == prediction_type  # type: ignore[attr-defined]
    if cls is DDIMScheduler:
        assert sched.eta == 0.5  # type: ignore[attr-defined]
    if cls is LCMScheduler:
        assert sched.origin_steps == 25  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "euler"}, r"unknown sampler 'euler'; valid: ddpm, ddim, lcm"),
        ({"name": "ddim", "prediction_type": "v"}, r"'v'; valid: sample, epsilon"),
        ({"name": "ddpm", "prediction_type": "v"}, r"'v'; valid: sample, epsilon"),
        ({"name": "lcm", "prediction_type": "epsilon"}, r"prediction_type 'sample'"),
        ({"name": "ddim", "eta": -0.1}, r"eta must be in \[0, 1\], got -0\.1"),
        ({"name": "ddim", "eta": 1.5}, r"eta must be in \[0, 1\], got 1\.5"),
        ({"name": "lcm", "prediction_type": "sample", "origin_steps": 0}, r"in 1\.\.1000"),
    ],
)
def test_make_scheduler_rejects_bad_arguments_naming_valid_values(
    kwargs: dict[str, object], message: str
) -> None:
    """Unknown names, prediction types, eta or origin_steps raise ValueError naming valid values."""
    args: dict[str, object] = {"prediction_type": "epsilon", **kwargs}
    name, prediction_type = args.pop("name"), args.pop("prediction_type")
    with pytest.raises(ValueError, match=message):
        make_scheduler(name, SCHEDULE, prediction_type, **args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- DDIM


def ddim_reference(
    model_output: torch.Tensor,
    x_t: torch.Tensor,
    abar_t: float,
    abar_prev: float,
    eta: float,
    prediction_type: str,
    z: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Song et al. 2021, eq. (12) and (16), written out directly: (x_{t−1}, x̂0)."""
    if prediction_type == "epsilon":
        eps = model_output
        x0 = (x_t - math.sqrt(1 - abar_t) * eps) / math.sqrt(abar_t)
    else:
        x0 = model_output
        eps = (x_t - math.sqrt(abar_t) * x0) / math.sqrt(1 - abar_t)
    sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar_t)) * math.sqrt(1 - abar_t / abar_prev)
    x_prev = math.sqrt(abar_prev) * x0 + math.sqrt(1 - abar_prev - sigma**2) * eps + sigma * z
    return x_prev, x0


@pytest.mark.parametrize("prediction_type", ["sample", "epsilon"])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_step_matches_the_paper(prediction_type: PredictionType, eta: float) -> None:
    """Every step of a 10-step DDIM schedule is the paper's update on random tensors."""
    sched = DDIMScheduler(SCHEDULE, prediction_type, eta=eta)
    sched.set_timesteps(10)
    ts = sched.timesteps.tolist()
    for i, t in enumerate(ts):
        prev = ts[i + 1] if i + 1 < len(ts) else -1
        out_in, x_t = randn(3, 4, seed=10 + i), randn(3, 4, seed=50 + i)
        z = randn(3, 4, seed=100 + i)  # what the step draws from gen(100 + i)
        got = sched.step(out_in, t, x_t, generator=gen(100 + i))
        want_prev, want_x0 = ddim_reference(
            out_in, x_t, abar_at(SCHEDULE, t), abar_at(SCHEDULE, prev), eta, prediction_type, z
        )
        torch.testing.assert_close(got.pred_x0, want_x0, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(got.prev_sample, want_prev, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("prediction_type", ["sample", "epsilon"])
def test_ddim_eta0_with_an_oracle_stays_on_the_same_noise_path(
    prediction_type: PredictionType,
) -> None:
    """Deterministic DDIM with a perfect model visits add_noise(x0, s, ε) with one fixed ε."""
    sched = DDIMScheduler(SCHEDULE, prediction_type, eta=0.0)
    sched.set_timesteps(8)
    x0, eps = randn(2, 5, seed=11), randn(2, 5, seed=12)
    ts = sched.timesteps.tolist()
    x_T = SCHEDULE.add_noise(x0, torch.full((2,), ts[0]), eps)
    final, visited = run_loop(sched, x_T, lambda x, t: oracle(prediction_type, x0, x, t))
    for s, x in zip(ts, visited[:-1], strict=True):
        torch.testing.assert_close(x, SCHEDULE.add_noise(x0, torch.full((2,), s), eps))
    torch.testing.assert_close(final, x0, rtol=1e-10, atol=1e-10)


def test_ddim_eta0_is_deterministic_and_eta1_follows_the_generator() -> None:
    """η = 0 never draws noise; η > 0 differs by seed and reproduces from a fixed seed."""
    out_in, x_t = randn(4, 6, seed=13), randn(4, 6, seed=14)
    det = DDIMScheduler(SCHEDULE, "epsilon", eta=0.0)
    det.set_timesteps(10)
    t = int(det.timesteps[1])
    ref = det.step(out_in, t, x_t).prev_sample
    for g in (gen(0), gen(1), [gen(i) for i in range(4)]):
        assert torch.equal(det.step(out_in, t, x_t, generator=g).prev_sample, ref)

    sto = DDIMScheduler(SCHEDULE, "epsilon", eta=1.0)
    sto.set_timesteps(10)
    a = sto.step(out_in, t, x_t, generator=gen(0)).prev_sample
    b = sto.step(out_in, t, x_t, generator=gen(1)).prev_sample
    assert not torch.allclose(a, b)
    assert torch.equal(a, sto.step(out_in, t, x_t, generator=gen(0)).prev_sample)
    assert not torch.allclose(a, ref)


@pytest.mark.parametrize("kind", ["ddim", "ddpm", "lcm"])
def test_per_row_generators_make_rows_independent_of_the_batch(kind: str) -> None:
    """Row b's noise comes from generator b only: alone, or with batch-mates in any order."""
    prediction_type: PredictionType = "sample"
    sched = make_scheduler(kind, SCHEDULE, prediction_type, eta=1.0)
    sched.set_timesteps(4)
    t = int(sched.timesteps[0])
    out_in, x_t = randn(3, 2, 5, seed=15), randn(3, 2, 5, seed=16)
    batch = sched.step(out_in, t, x_t, generator=[gen(10 + b) for b in range(3)]).prev_sample
    for b in range(3):
        alone = sched.step(out_in[b : b + 1], t, x_t[b : b + 1], generator=[gen(10 + b)])
        assert torch.equal(batch[b : b + 1], alone.prev_sample)
    flipped = sched.step(
        out_in.flip(0), t, x_t.flip(0), generator=[gen(10 + b) for b in (2, 1, 0)]
    ).prev_sample
    assert torch.equal(flipped, batch.flip(0))
    assert not torch.allclose(batch[0], batch[1])  # the rows really got different noise
    with pytest.raises(ValueError, match="2 generators for a batch of 3"):
        sched.step(out_in, t, x_t, generator=[gen(0), gen(1)])


# --------------------------------------------------------------------------- DDPM


def gaussian_posterior(
    x0: torch.Tensor, x_t: torch.Tensor, abar_s: float, abar_t: float
) -> tuple[torch.Tensor, float]:
    """q(x_s | x_t, x0) by conditioning the joint Gaussian of the forward process (s < t).

    x_s = √ᾱ_s x0 + √(1−ᾱ_s) e1 and x_t = √(ᾱ_t/ᾱ_s) x_s + √(1−ᾱ_t/ᾱ_s) e2, so
    Cov(x_s, x_t) = √(ᾱ_t/ᾱ_s)(1−ᾱ_s) and Var(x_t) = 1−ᾱ_t.
    """
    cov = math.sqrt(abar_t / abar_s) * (1 - abar_s)
    mean = math.sqrt(abar_s) * x0 + cov / (1 - abar_t) * (x_t - math.sqrt(abar_t) * x0)
    return mean, (1 - abar_s) - cov**2 / (1 - abar_t)


def ddpm_posterior_textbook(
    schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor, t: int
) -> tuple[torch.Tensor, float]:
    """Ho et al. 2020, eq. (7): μ̃_t(x_t, x0) and β̃_t for a one-step (t → t−1) transition."""
    beta = schedule.betas()[t].item()
    a_t, a_prev = abar_at(schedule, t), abar_at(schedule, t - 1)
    mean = (
        math.sqrt(a_prev) * beta / (1 - a_t) * x0
        + math.sqrt(1 - beta) * (1 - a_prev) / (1 - a_t) * x_t
    )
    return mean, beta * (1 - a_prev) / (1 - a_t)


@pytest.mark.parametrize("prediction_type", ["sample", "epsilon"])
@pytest.mark.parametrize("t", [1, 250, 999])
def test_ddpm_one_step_is_the_textbook_posterior(prediction_type: PredictionType, t: int) -> None:
    """With 1000 steps, x_{t−1} = μ̃_t(x_t, x̂0) + √β̃_t z, z the generator's draw."""
    sched = DDPMScheduler(SCHEDULE, prediction_type)
    sched.set_timesteps(1000)
    x0, x_t = randn(3, 4, seed=17), randn(3, 4, seed=18)
    out = sched.step(oracle(prediction_type, x0, x_t, t), t, x_t, generator=gen(7))
    mean, var = ddpm_posterior_textbook(SCHEDULE, x0, x_t, t)
    z = randn(3, 4, seed=7)
    torch.testing.assert_close(out.prev_sample, mean + math.sqrt(var) * z, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out.pred_x0, x0, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("n", [1000, 50])
def test_ddpm_step_has_the_posterior_mean_and_variance(n: int) -> None:
    """Over many draws, x_s has q(x_s | x_t, x0)'s mean and variance (also when respaced)."""
    sched = DDPMScheduler(SCHEDULE, "sample")
    sched.set_timesteps(n)
    ts = sched.timesteps.tolist()
    t, s = ts[len(ts) // 2], ts[len(ts) // 2 + 1]
    rows = 40000
    x0 = torch.tensor([[0.7, -1.2]], dtype=F64).expand(rows, 2)
    x_t = torch.tensor([[-0.3, 0.9]], dtype=F64).expand(rows, 2)
    out = sched.step(x0, t, x_t, generator=gen(99)).prev_sample
    mean, var = gaussian_posterior(x0[:1], x_t[:1], abar_at(SCHEDULE, s), abar_at(SCHEDULE, t))
    assert (out.mean(0) - mean[0]).abs().max() < 6 * math.sqrt(var / rows)
    assert (out.var(0) - var).abs().max() < 6 * var * math.sqrt(2 / rows)


@pytest.mark.parametrize("prediction_type", ["sample", "epsilon"])
def test_ddim_eta1_is_the_ddpm_posterior(prediction_type: PredictionType) -> None:
    """DDIM with η = 1 takes the same (respaced) ancestral step as DDPM for the same seed."""
    ddim, ddpm = (
        DDIMScheduler(SCHEDULE, prediction_type, eta=1.0),
        DDPMScheduler(SCHEDULE, prediction_type),
    )
    for sched in (ddim, ddpm):
        sched.set_timesteps(20)
    out_in, x_t = randn(3, 4, seed=21), randn(3, 4, seed=22)
    for t in ddim.timesteps.tolist():
        a = ddim.step(out_in, t, x_t, generator=gen(t)).prev_sample
        b = ddpm.step(out_in, t, x_t, generator=gen(t)).prev_sample
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- timestep placement


def test_ddim_50_steps_put_step_25_at_t_500() -> None:
    """The 50-step schedule is 980, 960, ..., 0 and its 25th step (1-based) is t = 500."""
    ts = ddim_timesteps(50)
    assert ts[24] == 500
    assert ts.tolist() == list(range(980, -1, -20))
    sched = DDIMScheduler(SCHEDULE)
    sched.set_timesteps(50)
    assert torch.equal(sched.timesteps, ts)


@pytest.mark.parametrize(
    ("n", "expected"),
    [(1, [999]), (2, [999, 499]), (4, [999, 759, 519, 279])],
)
def test_lcm_timesteps(n: int, expected: list[int]) -> None:
    """MotionLCM's documented step placement on the 50-point distillation grid."""
    sched = LCMScheduler(SCHEDULE)
    sched.set_timesteps(n)
    assert sched.timesteps.tolist() == expected
    assert sched.grid()[:3].tolist() == [19, 39, 59]


def test_lcm_step_renoises_x0_to_the_next_timestep() -> None:
    """Between steps LCM returns √ᾱ_s x̂0 + √(1−ᾱ_s) z at the next timestep s; the last gives x̂0."""
    sched = LCMScheduler(SCHEDULE)
    sched.set_timesteps(2)
    x0, x_t = randn(2, 3, seed=19), randn(2, 3, seed=20)
    out = sched.step(x0, 999, x_t, generator=gen(3))
    a = abar_at(SCHEDULE, 499)
    torch.testing.assert_close(out.prev_sample, a**0.5 * x0 + (1 - a) ** 0.5 * randn(2, 3, seed=3))
    last = sched.step(x0, 499, out.prev_sample, generator=gen(4))
    assert torch.equal(last.prev_sample, x0) and torch.equal(last.pred_x0, x0)
