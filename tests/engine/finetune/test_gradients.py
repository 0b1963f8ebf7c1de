"""The gradient each fine-tuning method hands to the trainer, checked exactly on a tiny denoiser.

Every reference is built by hand (conftest: `eps_fn`, our own DDIM formulas on ᾱ) as a function
of θ alone: the inputs the method must treat as constants (sg(x_t), dropped model outputs, the
no-grad prefix) are frozen at their θ0 values, so its autograd gradient and its central finite
differences are exactly what the method's `update` must receive (see ../shared/docs/methods.md).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from easytune_engine.finetune.methods import MethodConfig, run_method
from easytune_engine.finetune.trainer import FinetuneConfig, Finetuner, PromptPool

LAM = 0.7  # reward_scale λ: loss = −λ·mean R


def xbar(ft, toy, steps: int, guidance: float = 1.0, pred: str = "epsilon") -> list:
    """The no-grad θ0 trajectory x_0..x_T (x̄_i = the input of step i), by hand."""
    ts = ft.timesteps(steps)
    xs = [toy.x_T]
    with torch.no_grad():
        for i, t in enumerate(ts):
            out = ft.guided_eps(toy.theta0, xs[-1], t, toy.cond, guidance)
            xs.append(ft.ddim_step(xs[-1], out, t, ft.prev_of(ts, i), pred)[1])
    return xs


def simulate_easytune(ft, toy, steps, window, reward, guidance, lr, chain):
    """EasyTune by hand: per trained step, ∂/∂θ of −λ R(x̂0(sg(x_t); θ)) (or of R(x_{t−1})) at
    the current θ; θ moves by SGD after each step (step variant) or only at the end (chain).
    Returns (per-step grads, θ at each step, x_t at each step, final θ)."""
    ts = ft.timesteps(steps)
    first = 0 if window == 0 else max(0, steps - window)
    theta = {n: v.clone() for n, v in toy.theta0.items()}
    shadow = {n: v.clone() for n, v in theta.items()}
    x, grads, thetas, xs = toy.x_T, [], [], []
    for i, t in enumerate(ts):
        tp = ft.prev_of(ts, i)
        thetas.append({n: v.clone() for n, v in theta.items()})
        xs.append(x)
        with torch.no_grad():
            x_next = ft.ddim_prev(x, ft.guided_eps(theta, x, t, toy.cond, guidance), t, tp)
        if i >= first:

            def loss(p, x=x, t=t, tp=tp):
                eps = ft.guided_eps(p, x, t, toy.cond, guidance)
                y = ft.x0_hat(x, eps, t) if reward == "x0" else ft.ddim_prev(x, eps, t, tp)
                return -LAM * ft.reward(y).mean()

            g = ft.autograd_of(loss, theta)
            grads.append(g)
            target = shadow if chain else theta
            for n in ft.NAMES:
                target[n] = target[n] - lr * g[n]
        x = x_next
    return grads, thetas, xs, (shadow if chain else theta)


@pytest.mark.parametrize(
    ("window", "reward", "guidance"),
    [(3, "x0", 1.0), (0, "x0", 1.0), (3, "noisy", 1.0), (3, "x0", 2.0)],
)
def test_easytune_step_direct_term_one_update_per_step(ft, toy, window, reward, guidance):
    """EasyTune-step: each trained step's gradient is ∂R(x̂0(sg(x_t); θ))/∂θ at the θ left by the
    previous update; one update per step of the window, none before; x_{t−1} is sampled with the
    step's θ and the next step runs with the updated θ; the model input never carries a graph."""
    T = 5
    tr = toy.make(T, guidance=guidance)
    seen_t = []
    tr.score = lambda x, t: (seen_t.append(t), ft.reward(x))[1]
    cfg = MethodConfig("easytune", window=window, reward=reward, reward_scale=LAM)
    res = run_method(tr, cfg)

    first = 0 if window == 0 else T - window
    ts = ft.timesteps(T)
    grads, thetas, xs, final = simulate_easytune(
        ft, toy, T, window, reward, guidance, toy.rec.lr, chain=False
    )
    rec, calls = toy.rec, toy.model.calls
    assert res.updates == len(rec.grads) == T - first
    assert res.trained_steps == tuple(range(first, T))
    assert rec.events == ["update"] * (T - first)
    assert rec.calls_at == list(range(first + 1, T + 1))  # right after its own step's forward
    assert len(calls) == T
    for i, c in enumerate(calls):
        assert c["grad_enabled"] == (i >= first)
        assert not c["x_requires_grad"]
        assert c["x"].shape[0] == (3 if guidance == 1.0 else 6)  # one (batched CFG) pass
        torch.testing.assert_close(c["x"][:3], xs[i], rtol=1e-12, atol=1e-14)
        ft.assert_close(c["theta"], thetas[i], rtol=1e-13)
    for k, g in enumerate(grads):
        ft.assert_close(rec.grads[k], g, rtol=1e-11)
    ft.assert_close(toy.model.snapshot(), final, rtol=1e-13)
    expect_t = (
        [0] * (T - first)
        if reward == "x0"
        else [max(ft.prev_of(ts, i), 0) for i in range(first, T)]
    )
    assert seen_t == expect_t
    # Non-vacuous: the last step's gradient at θ0 (a stale θ) is clearly different.
    stale, _, _, _ = simulate_easytune(ft, toy, T, window, reward, guidance, 0.0, chain=False)
    assert ft.rel_diff(stale[-1], grads[-1]) > 1e-3


def test_easytune_step_direct_term_matches_finite_differences(ft, toy):
    """The hand-built direct term itself agrees with central finite differences of
    θ ↦ −λ R(x̂0(x_t; θ)) with x_t held fixed (first trained step, θ = θ0)."""
    T = 5
    tr = toy.make(T)
    run_method(tr, MethodConfig("easytune", window=2, reward_scale=LAM))
    x3, t3 = xbar(ft, toy, T)[3], ft.timesteps(T)[3]

    def f(p):
        return -LAM * ft.reward(ft.x0_hat(x3, ft.guided_eps(p, x3, t3, toy.cond, 1.0), t3)).mean()

    ft.assert_close(toy.rec.grads[0], ft.finite_diff(f, toy.theta0), rtol=1e-6)


def test_easytune_chain_gradients_at_theta_committed_once(ft, toy):
    """EasyTune-chain: every per-step gradient is taken at the trajectory's starting θ, sampling
    runs with θ throughout, and θ becomes θ + Σ(−lr·g) only at commit_shadow, called once at the
    end."""
    T, window = 5, 3
    tr = toy.make(T)
    res = run_method(tr, MethodConfig("easytune-chain", window=window, reward_scale=LAM))
    grads, _, xs, final = simulate_easytune(ft, toy, T, window, "x0", 1.0, toy.rec.lr, chain=True)
    rec = toy.rec
    assert res.updates == window
    assert rec.events == ["shadow_update"] * window + ["commit_shadow"]
    for c, x in zip(toy.model.calls, xs, strict=True):
        ft.assert_close(c["theta"], toy.theta0, rtol=0.0)
        torch.testing.assert_close(c["x"], x, rtol=1e-12, atol=1e-14)
    for k, g in enumerate(grads):
        ft.assert_close(rec.theta_at[k], toy.theta0, rtol=0.0)
        ft.assert_close(rec.grads[k], g, rtol=1e-11)
    expect = {n: toy.theta0[n] - rec.lr * sum(g[n] for g in grads) for n in ft.NAMES}
    ft.assert_close(toy.model.snapshot(), expect, rtol=1e-13)
    ft.assert_close(final, expect, rtol=1e-13)
    assert ft.rel_diff(grads[0], grads[-1]) > 1e-2  # the steps' gradients really differ


# -- the real Finetuner's chain bookkeeping (θ′, swap, commit) ------------------------------------


class _Backbone(nn.Module):
    """What Finetuner.__init__ reads off a backbone: a feature-space model with a schedule."""

    space = "features"

    def __init__(self, ft) -> None:
        super().__init__()
        self.denoiser = ft.TinyDenoiser()
        self.schedule = ft.SCHEDULE


class _Reward(nn.Module):
    def __init__(self, ft) -> None:
        super().__init__()
        self.config = SimpleNamespace(noise_schedule=lambda: ft.SCHEDULE)


def _tuner(ft, steps: int) -> tuple[Finetuner, nn.Module]:
    backbone = _Backbone(ft)
    gen = SimpleNamespace(
        backbone=backbone, options=lambda s, g: SimpleNamespace(steps=steps, guidance=1.0)
    )
    cfg = FinetuneConfig(
        method=MethodConfig("easytune-chain", window=3), trajectories=2, lr=0.05, warmup=2
    )
    return Finetuner(gen, _Reward(ft), cfg, PromptPool(("a",), (20,))), backbone.denoiser


def test_finetuner_chain_equals_adamw_on_gradients_taken_at_theta(ft, toy):
    """Finetuner.shadow_update/commit_shadow over two easytune-chain trajectories: sampling and
    every gradient use θ (the copy θ′ is swapped in only for the optimizer step, and swapped back
    bit-exact), and the committed θ equals plain Finetuner.update (AdamW, clipping, lr schedule)
    fed the same gradients, each trajectory's taken at its starting θ."""
    T = 5
    tuner, model = _tuner(ft, T)
    ref, ref_model = _tuner(ft, T)
    ft.assert_close(model.snapshot(), ref_model.snapshot(), rtol=0.0)
    for _ in range(2):
        theta = model.snapshot()
        model.calls.clear()
        sub = SimpleNamespace(x_T=toy.x_T, cond=toy.cond, theta0=theta)
        grads, _, _, _ = simulate_easytune(ft, sub, T, 3, "x0", 1.0, 0.0, chain=True)
        tr = toy.make(T)
        tr.model = model
        tr.update, tr.shadow_update, tr.commit_shadow = (
            tuner.update,
            tuner.shadow_update,
            tuner.commit_shadow,
        )
        seen = []
        inner = tuner.shadow_update

        def spy(loss, inner=inner, seen=seen):
            inner(loss)
            seen.append(model.snapshot())  # θ restored right after each optimizer step

        tr.shadow_update = spy
        run_method(tr, MethodConfig("easytune-chain", window=3, reward_scale=LAM))
        for c in model.calls:
            ft.assert_close(c["theta"], theta, rtol=0.0)
        for s in seen:
            ft.assert_close(s, theta, rtol=0.0)
        assert tuner._shadow is None
        for g in grads:
            ps = ref_model.params()
            ref.update(sum((g[n] * ps[n]).sum() for n in ft.NAMES))  # ∂/∂θ = g exactly
        assert ft.rel_diff(model.snapshot(), theta) > 1e-3
        ft.assert_close(model.snapshot(), ref_model.snapshot(), rtol=1e-12)
    assert tuner.updates == ref.updates == 6


# -- DRaFT-K ---------------------------------------------------------------------------------------


def draft_reference(ft, toy, T: int, K: int, guidance: float = 1.0):
    """θ ↦ −λ R(x_0) where the first T−K steps are the fixed θ0 trajectory and the last K steps
    (full chain, ∂ε/∂x_t included) use θ."""
    ts = ft.timesteps(T)
    x_start = xbar(ft, toy, T, guidance)[T - K]

    def f(p):
        x = x_start
        for i in range(T - K, T):
            x = ft.ddim_prev(
                x, ft.guided_eps(p, x, ts[i], toy.cond, guidance), ts[i], ft.prev_of(ts, i)
            )
        return -LAM * ft.reward(x).mean()

    return f


@pytest.mark.parametrize(("K", "guidance"), [(5, 1.0), (2, 1.0), (3, 2.0)])
def test_draft_gradient_is_the_k_step_chain(ft, toy, K, guidance):
    """DRaFT-K: one update whose gradient equals the gradient of the reward of the final sample
    through the last K steps (central finite differences, float64, 1e-6 relative; autograd on
    our own unrolled chain, 1e-11); the first T−K steps are sampled without a graph."""
    T = 5
    res = run_method(toy.make(T, guidance=guidance), MethodConfig("draft", k=K, reward_scale=LAM))
    rec, calls = toy.rec, toy.model.calls
    assert res.updates == len(rec.grads) == 1
    assert res.trained_steps == tuple(range(T - K, T))
    assert [c["grad_enabled"] for c in calls] == [i >= T - K for i in range(T)]
    assert [c["x_requires_grad"] for c in calls] == [i > T - K for i in range(T)]
    f = draft_reference(ft, toy, T, K, guidance)
    ft.assert_close(rec.grads[0], ft.finite_diff(f, toy.theta0), rtol=1e-6)
    ft.assert_close(rec.grads[0], ft.autograd_of(f, toy.theta0), rtol=1e-11)


# -- DRTune ----------------------------------------------------------------------------------------


def drtune_draws(seed: int, n: int, k: int, late_range: int) -> tuple[set[int], int]:
    g = torch.Generator().manual_seed(seed)
    stride = n // min(k, n)
    offset = int(torch.randint(stride, (1,), generator=g))
    stop = n - 1 - int(torch.randint(min(late_range, n), (1,), generator=g))
    return {offset + stride * j for j in range(min(k, n))}, stop


def drtune_reference(ft, toy, T, trained, stop, keep_jacobian=False):
    """θ ↦ −λ R(x̂0 at `stop`): ε_i = ε_θ(x̄_i) on trained steps, the constant ε_θ0(x̄_i) on the
    others, and x_{t−1} = a_t x_t + b_t ε_i keeps the linear path through x_t. With
    keep_jacobian the model input is the live x_t instead (the wrong, DRaFT-like gradient)."""
    ts, xs = ft.timesteps(T), xbar(ft, toy, T)

    def f(p):
        x = toy.x_T
        for i in range(stop + 1):
            x_in = x if keep_jacobian else xs[i]
            eps = ft.guided_eps(p if i in trained else toy.theta0, x_in, ts[i], toy.cond, 1.0)
            if i == stop:
                return -LAM * ft.reward(ft.x0_hat(x, eps, ts[i])).mean()
            x = ft.ddim_prev(x, eps, ts[i], ft.prev_of(ts, i))
        raise AssertionError

    return f


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_drtune_linear_path_without_denoiser_jacobian(ft, toy, seed):
    """DRTune: the trained set (k equally spaced, random offset) and the stop step follow
    tr.generator; the gradient keeps the linear sampler path x_t → x_{t−1} but not ∂ε/∂x_t
    (matches the hand-built surrogate; clearly differs from the one keeping ∂ε/∂x_t)."""
    T, k, late = 6, 2, 3
    trained, stop = drtune_draws(seed, T, k, late)
    res = run_method(
        toy.make(T, seed=seed), MethodConfig("drtune", k=k, late_range=late, reward_scale=LAM)
    )
    rec, calls = toy.rec, toy.model.calls
    assert res.updates == len(rec.grads) == 1
    assert res.trained_steps == tuple(sorted(i for i in trained if i <= stop))
    assert len(calls) == stop + 1
    assert [c["grad_enabled"] for c in calls] == [i in trained for i in range(stop + 1)]
    assert not any(c["x_requires_grad"] for c in calls)
    f = drtune_reference(ft, toy, T, trained, stop)
    ft.assert_close(rec.grads[0], ft.autograd_of(f, toy.theta0), rtol=1e-11)
    ft.assert_close(rec.grads[0], ft.finite_diff(f, toy.theta0), rtol=1e-6)
    wrong = drtune_reference(ft, toy, T, trained, stop, keep_jacobian=True)
    if min(trained) < stop:
        assert ft.rel_diff(rec.grads[0], ft.autograd_of(wrong, toy.theta0)) > 1e-3


def test_drtune_draws_and_x0_models_train_the_scored_step(ft, toy):
    """Over many seeds the stop step lies in [T − late_range, T − 1] (every value drawn); with an
    x0-predicting scheduler the scored step is always among the trained ones."""
    T, k, late = 6, 2, 3
    stops = set()
    for seed in range(24):
        for pred in ("epsilon", "sample"):
            trained, stop = drtune_draws(seed, T, k, late)
            if pred == "sample":
                trained.add(stop)
            tr = toy.make(T, seed=seed, prediction_type=pred)
            res = run_method(tr, MethodConfig("drtune", k=k, late_range=late))
            assert res.trained_steps == tuple(sorted(i for i in trained if i <= stop))
            assert T - late <= stop <= T - 1
            if pred == "sample":
                assert stop in res.trained_steps
            stops.add(stop)
    assert stops == set(range(T - late, T))


def test_drtune_always_trains_a_step_before_the_stop(ft, toy):
    """DRTune with late_range ≥ T (stop anywhere) still takes one update with a gradient."""
    res = run_method(toy.make(10, seed=0), MethodConfig("drtune", k=2, late_range=10))
    assert res.updates == 1 and len(res.trained_steps) >= 1
    assert len(toy.rec.grads) == 1


# -- AlignProp -------------------------------------------------------------------------------------


def alignprop_keep(seed: int, n: int, p: float, x0_output: bool) -> tuple[list[bool], bool]:
    """The kept steps as alignprop draws them from tr.generator; also whether one was forced."""
    g = torch.Generator().manual_seed(seed)
    keep = (torch.rand(n, generator=g) < p).tolist()
    forced = not any(keep)
    if forced:
        keep[int(torch.randint(n, (1,), generator=g))] = True
    if x0_output:
        keep[-1] = True
    return keep, forced


def alignprop_reference(ft, toy, T, keep, pred, linear_path=True):
    """θ ↦ −λ R(x_0): kept steps use ε_θ(x_t) with the full graph, dropped steps the constant
    output of θ0 at x̄_t while x_{t−1} stays linear in x_t (or constant: linear_path=False)."""
    ts, xs = ft.timesteps(T), xbar(ft, toy, T, pred=pred)

    def f(p):
        x = toy.x_T
        for i, t in enumerate(ts):
            tp = ft.prev_of(ts, i)
            if keep[i]:
                x = ft.ddim_step(x, ft.guided_eps(p, x, t, toy.cond, 1.0), t, tp, pred)[1]
            elif linear_path:
                out = ft.guided_eps(toy.theta0, xs[i], t, toy.cond, 1.0)
                x = ft.ddim_step(x, out, t, tp, pred)[1]
            else:
                x = xs[i + 1]
        return -LAM * ft.reward(x).mean()

    return f


@pytest.mark.parametrize(
    ("seed", "p", "pred"), [(0, 0.5, "epsilon"), (3, 0.5, "epsilon"), (1, 0.3, "sample")]
)
def test_alignprop_dropped_steps_keep_the_linear_path(ft, toy, seed, p, pred):
    """AlignProp: the gradient equals the hand-built one where dropped steps use the detached
    model output but x_t stays in the graph (and differs from cutting the path there)."""
    T = 5
    keep, _ = alignprop_keep(seed, T, p, pred == "sample")
    tr = toy.make(T, seed=seed, prediction_type=pred)
    res = run_method(tr, MethodConfig("alignprop", keep_prob=p, reward_scale=LAM))
    rec = toy.rec
    assert res.updates == len(rec.grads) == 1
    assert res.trained_steps == tuple(i for i in range(T) if keep[i])
    assert [c["grad_enabled"] for c in toy.model.calls] == keep
    f = alignprop_reference(ft, toy, T, keep, pred)
    ft.assert_close(rec.grads[0], ft.autograd_of(f, toy.theta0), rtol=1e-11)
    ft.assert_close(rec.grads[0], ft.finite_diff(f, toy.theta0), rtol=1e-6)
    first_kept = keep.index(True)
    if not all(keep[first_kept:]):  # a dropped step after a kept one: the linear path matters
        cut = alignprop_reference(ft, toy, T, keep, pred, linear_path=False)
        assert ft.rel_diff(rec.grads[0], ft.autograd_of(cut, toy.theta0)) > 1e-3


def test_alignprop_kept_set_follows_the_generator(ft, toy):
    """Each step is kept with p using tr.generator, at least one (a forced draw when none is);
    with an x0-predicting scheduler the last step is always kept."""
    T, p = 5, 0.1
    forced_seen = 0
    for seed in range(30):
        for pred in ("epsilon", "sample"):
            keep, forced = alignprop_keep(seed, T, p, pred == "sample")
            forced_seen += forced
            tr = toy.make(T, seed=seed, prediction_type=pred)
            res = run_method(tr, MethodConfig("alignprop", keep_prob=p))
            assert res.trained_steps == tuple(i for i in range(T) if keep[i])
            assert len(res.trained_steps) >= 1
            if pred == "sample":
                assert res.trained_steps[-1] == T - 1
    assert forced_seen > 0


# -- ReFL ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_refl_one_update_direct_term_at_a_late_step(ft, toy, seed):
    """ReFL: one update at step s drawn from tr.generator in [T − late_range, T − 1]; its gradient
    is the direct term ∂R(x̂0(sg(x_s); θ))/∂θ; sampling stops after that step."""
    T, late = 6, 3
    g = torch.Generator().manual_seed(seed)
    s = T - 1 - int(torch.randint(late, (1,), generator=g))
    res = run_method(
        toy.make(T, seed=seed), MethodConfig("refl", late_range=late, reward_scale=LAM)
    )
    rec, calls = toy.rec, toy.model.calls
    assert res.updates == len(rec.grads) == 1
    assert res.trained_steps == (s,)
    assert [c["grad_enabled"] for c in calls] == [i == s for i in range(s + 1)]
    assert not any(c["x_requires_grad"] for c in calls)
    x_s, t_s = xbar(ft, toy, T)[s], ft.timesteps(T)[s]

    def f(p):
        return (
            -LAM * ft.reward(ft.x0_hat(x_s, ft.guided_eps(p, x_s, t_s, toy.cond, 1.0), t_s)).mean()
        )

    ft.assert_close(rec.grads[0], ft.autograd_of(f, toy.theta0), rtol=1e-11)
    ft.assert_close(rec.grads[0], ft.finite_diff(f, toy.theta0), rtol=1e-6)


@pytest.mark.parametrize(("late", "lo"), [(3, 3), (10, 0)])
def test_refl_step_range(ft, toy, late, lo):
    """ReFL's step covers exactly [max(0, T − late_range), T − 1] over many seeds."""
    T, seen = 6, set()
    for seed in range(40):
        res = run_method(toy.make(T, seed=seed), MethodConfig("refl", late_range=late))
        seen.update(res.trained_steps)
    assert seen == set(range(lo, T))
