"""SavedTensorMeter: exact bytes autograd saves for backward, and how each method's peak scales."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from easytune_engine.diffusion.sampling import Conditioning
from easytune_engine.diffusion.schedulers import DDIMScheduler
from easytune_engine.diffusion.schedules import NoiseSchedule
from easytune_engine.finetune.memory import SavedTensorMeter
from easytune_engine.finetune.methods import MethodConfig, Trajectory, run_method

N = 1000  # float32 elements: 4000 bytes per saved tensor


def vec(seed: int, requires_grad: bool = True) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, generator=g).requires_grad_(requires_grad)


def test_mul_saves_both_operands_when_both_require_grad():
    """y = (x·w).sum(): mul saves x (for ∂/∂w) and w (for ∂/∂x), sum saves no tensor: 8000 B."""
    x, w = vec(0), vec(1)
    meter = SavedTensorMeter()
    with meter:
        y = (x * w).sum()
    assert meter.live_bytes == meter.peak_bytes == 2 * 4 * N
    del y


def test_mul_saves_only_what_backward_needs():
    """With only x requiring grad, mul saves w alone (4000 B); x is not saved."""
    x, w = vec(0), vec(1, requires_grad=False)
    meter = SavedTensorMeter()
    with meter:
        y = (x * w).sum()
    assert meter.live_bytes == 4 * N
    del y


def test_excluded_tensors_are_not_counted():
    """Tensors in `exclude` (parameters) are never counted, their views neither."""
    x, w = vec(0), vec(1)
    meter = SavedTensorMeter(exclude=[w])
    with meter:
        y = (x * w).sum()
        z = (x[:10] * w[:10]).sum()
    assert meter.peak_bytes == 4 * N  # x only, once
    del y, z


def test_each_storage_counted_once_at_full_size():
    """A storage saved several times (x·x, two views of w) counts once, at its storage bytes."""
    x, w = vec(0), vec(1, requires_grad=False)
    meter = SavedTensorMeter()
    with meter:
        a = (x * x).sum()  # saves x twice
        b = (x[:500] * w[:500]).sum()  # saves a view of w: the whole 4000-byte storage
        c = (x[500:] * w[500:]).sum()
    assert meter.peak_bytes == 2 * 4 * N
    del a, b, c


def test_bytes_released_when_graph_freed():
    """Live bytes return to 0 after backward (graph freed) or when the graph is deleted;
    retain_graph keeps them; the peak remembers the maximum; nothing outside the context."""
    x, w = vec(0), vec(1)
    meter = SavedTensorMeter()
    with meter:
        y = (x * w).sum()
        assert meter.live_bytes == 8 * N
        y.backward()
        assert meter.live_bytes == 0
        y = (x * w).sum()
        y.backward(retain_graph=True)
        assert meter.live_bytes == 8 * N
        del y
        assert meter.live_bytes == 0
    z = (x * w * 2).sum()
    assert meter.live_bytes == 0 and meter.peak_bytes == 8 * N
    del z


# -- methods on a tiny MLP denoiser ----------------------------------------------------------------

B, DIM, TEXT, HID = 8, 16, 8, 64


class MLP(nn.Module):
    """ε = L2 tanh(L1 [x_t, t/1000, text]): a few saved activations per step."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1 = nn.Linear(DIM + 1 + TEXT, HID)
        self.l2 = nn.Linear(HID, DIM)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        h = torch.cat([x, t.to(x.dtype)[:, None] / 1000, cond.text], dim=1)
        return self.l2(torch.tanh(self.l1(h)))


def peak(name: str, steps: int, **kw) -> int:
    """Peak saved bytes (parameters excluded) of one trajectory of `name` with `steps` steps."""
    model = MLP()
    params = list(model.parameters())
    sched = DDIMScheduler(NoiseSchedule("scaled_linear"), "epsilon")
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(0)
    target = torch.randn(B, DIM, generator=g)

    def update(loss: torch.Tensor) -> None:
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, gr in zip(params, grads, strict=True):
                p -= 1e-3 * gr

    tr = Trajectory(
        model=model,
        scheduler=sched,
        cond=Conditioning(torch.randn(B, TEXT, generator=g), torch.full((B,), 20)),
        x_T=torch.randn(B, DIM, generator=g),
        guidance=1.0,
        score=lambda x, t: -((x - target) ** 2).mean(dim=1),
        update=update,
        shadow_update=update,
        commit_shadow=lambda: None,
        generator=torch.Generator().manual_seed(0),
    )
    meter = SavedTensorMeter(exclude=params)
    with meter:
        run_method(tr, MethodConfig(name, **kw))
    assert meter.live_bytes == 0  # every graph freed by the end of the trajectory
    return meter.peak_bytes


# Saved per differentiable step (float32): L1's input [x, t, text] (x_t detached, so cat saves
# nothing), tanh's output (also L2's input: one storage); the DDIM step's scalar ops save nothing.
STEP_BYTES = 4 * B * ((DIM + 1 + TEXT) + HID)
REWARD_BYTES = 4 * B * DIM  # (x − target)² saves x − target


def test_easytune_peak_is_flat_in_T():
    """EasyTune (all steps trained): the peak is one step's graph plus the reward's, exactly, at
    every T; T = 50 within 2% of T = 10."""
    p10, p50 = peak("easytune", 10, window=0), peak("easytune", 50, window=0)
    assert p10 == STEP_BYTES + REWARD_BYTES
    assert abs(p50 / p10 - 1) <= 0.02


def test_draft_full_peak_grows_linearly_in_T():
    """DRaFT-T keeps every step's graph: peak(T = 20) / peak(T = 10) ≈ 2 (within 10%)."""
    p10, p20 = peak("draft", 10, k=10), peak("draft", 20, k=20)
    assert p10 == 10 * STEP_BYTES + REWARD_BYTES
    assert p20 / p10 == pytest.approx(2.0, rel=0.10)


def test_easytune_peak_matches_refl():
    """EasyTune's per-step graph costs what ReFL's single differentiable step costs (within 5%),
    and DRaFT-T at the same T costs several times more."""
    p_et, p_refl = peak("easytune", 20, window=0), peak("refl", 20)
    assert abs(p_et / p_refl - 1) <= 0.05
    assert peak("draft", 20, k=20) > 5 * p_et
