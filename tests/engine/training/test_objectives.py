"""The VAE loss's per-group weights: all ones is the old loss exactly; a root weight shifts the
gradient towards the root channels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from easytune_engine.data.humanml3d import Batch
from easytune_engine.models import MLDConfig, VAEConfig, build_backbone
from easytune_engine.motion.features import FEATURE_DIM
from easytune_engine.training.objectives import vae_loss

TINY_VAE = VAEConfig(width=64, enc_layers=1, dec_layers=1, latent_tokens=2, latent_dim=16)


def _model(vae: VAEConfig, seed: int = 0):
    torch.manual_seed(seed)
    return build_backbone("mld", MLDConfig(vae=vae, width=64, layers=3, text_dim=128)).train()


def _batch(seed: int = 1) -> Batch:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([40, 23, 64])
    x = torch.randn(3, 64, FEATURE_DIM, generator=g)
    mask = torch.arange(64)[None] < lengths[:, None]
    x = x * mask[..., None]
    return Batch(x, lengths, mask, ["a", "b", "c"], [[], [], []], ["0", "1", "2"])


def _old_vae_loss(model, batch: Batch) -> torch.Tensor:
    """vae_loss as it was before the weights (smooth-L1 recon + velocity + λ_KL · KL)."""

    def masked_mean(err, mask):
        m = mask[..., None].to(err.dtype)
        return (err * m).sum() / (m.sum() * err.shape[-1]).clamp(min=1)

    vae = model.vae
    x = batch.features
    mu, logvar = vae.encode(x, batch.lengths)
    z = mu + torch.randn(mu.shape) * (0.5 * logvar).exp()
    rec = vae.decode(z, batch.lengths)
    x, mask = x[:, : rec.shape[1]], batch.mask[:, : rec.shape[1]]
    recon = masked_mean(F.smooth_l1_loss(rec, x, reduction="none"), mask)
    dr, dx = rec[:, 1:] - rec[:, :-1], x[:, 1:] - x[:, :-1]
    vel = masked_mean(F.smooth_l1_loss(dr, dx, reduction="none"), mask[:, 1:])
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum((1, 2)).mean()
    return recon + vel + vae.config.kl_weight * kl


@pytest.mark.parametrize("explicit", [False, True])
def test_unit_weights_give_the_old_loss_exactly(explicit: bool):
    vae = TINY_VAE
    if explicit:
        vae = replace(vae, root_weight=1.0, velocity_weight=1.0, contact_weight=1.0)
    assert vae.channel_weights() is None
    model, batch = _model(vae), _batch()
    torch.manual_seed(5)
    new, logs = vae_loss(model)(batch, torch.zeros(3, 128), 0)
    torch.manual_seed(5)
    old = _old_vae_loss(model, batch)
    assert torch.equal(new, old)
    assert logs["loss"] == old.item()


def _root_grad_share(vae: VAEConfig) -> float:
    """Share of the output layer's gradient (squared norm) on the rows of channels 0..3."""
    model, batch = _model(vae), _batch()
    torch.manual_seed(5)
    loss, _ = vae_loss(model)(batch, torch.zeros(3, 128), 0)
    loss.backward()
    g = model.vae.out.weight.grad
    return float(g[:4].pow(2).sum() / g.pow(2).sum())


def test_root_weight_raises_the_gradient_share_of_the_root_channels():
    base = _root_grad_share(TINY_VAE)
    weighted = _root_grad_share(replace(TINY_VAE, root_weight=10.0))
    assert weighted > 10 * base  # squared norm: about 100x, less the shift of the other rows


def test_channel_weights_cover_their_groups():
    w = replace(TINY_VAE, root_weight=3.0, velocity_weight=2.0, contact_weight=0.5)
    w = w.channel_weights()
    assert w.shape == (FEATURE_DIM,)
    assert np.allclose(w[:4].numpy(), 3.0) and np.allclose(w[4:193].numpy(), 1.0)
    assert np.allclose(w[193:259].numpy(), 2.0) and np.allclose(w[259:].numpy(), 0.5)


@pytest.mark.parametrize(
    "field",
    ["root_weight", "velocity_weight", "contact_weight", "trajectory_weight", "height_weight"],
)
def test_negative_or_nan_weights_are_refused(field: str):
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match=field):
            replace(TINY_VAE, **{field: bad})


def test_trajectory_loss_is_zero_for_a_copy_and_sums_per_frame_errors():
    from easytune_engine.training.objectives import root_trajectory_loss

    mean, std = torch.zeros(FEATURE_DIM), torch.ones(FEATURE_DIM)
    batch = _batch()
    x = batch.features
    assert root_trajectory_loss(x, x, batch.mask, mean, std) == 0
    # a constant 0.01 rad/frame error on channel 0 grows into 2 * 0.01 * t rad of yaw by frame t
    off = x.clone()
    off[..., 0] += 0.01
    lengths = batch.lengths.tolist()
    yaw = [2 * 0.01 * (t + 1) for n in lengths for t in range(n)]
    expected = sum(0.5 * e * e if e < 1 else e - 0.5 for e in yaw) / (3 * sum(lengths))
    got = root_trajectory_loss(off, x, batch.mask, mean, std)
    assert got.item() == pytest.approx(expected, rel=1e-4)


def test_trajectory_weight_adds_its_term_and_steers_the_root_rows():
    base = _root_grad_share(TINY_VAE)
    assert _root_grad_share(replace(TINY_VAE, trajectory_weight=1.0)) > base
    model, batch = _model(replace(TINY_VAE, trajectory_weight=1.0)), _batch()
    _, logs = vae_loss(model)(batch, torch.zeros(3, 128), 0)
    assert logs["traj"] > 0


def test_height_loss_counts_pelvis_and_foot_heights_in_metres_and_nothing_else():
    from easytune_engine.models.vae import HEIGHTS
    from easytune_engine.training.objectives import height_loss

    batch = _batch()
    x = batch.features
    mean, std = torch.zeros(FEATURE_DIM), torch.full((FEATURE_DIM,), 0.5)
    assert height_loss(x, x, batch.mask, mean, std) == 0
    others = x.clone()
    keep = torch.ones(FEATURE_DIM, dtype=torch.bool)
    keep[list(HEIGHTS)] = False
    others[..., keep] += 3.0  # every other channel far off: not this term's business
    assert height_loss(others, x, batch.mask, mean, std) == 0
    # the pelvis 0.2 normalised units (0.1 m at std 0.5) too high on every valid frame:
    # 2 units of 5 cm, smooth-L1 1.5, on 1 of the 5 height channels
    high = x.clone()
    high[..., 3] += 0.2
    assert height_loss(high, x, batch.mask, mean, std).item() == pytest.approx(1.5 / 5, rel=1e-5)
    # and frames past a clip's length do not count
    pad = x.clone()
    pad[~batch.mask] += 5.0
    assert height_loss(pad, x, batch.mask, mean, std) == 0


def test_height_weight_adds_its_term_and_only_when_set():
    model, batch = _model(replace(TINY_VAE, height_weight=2.0)), _batch()
    torch.manual_seed(5)
    total, logs = vae_loss(model)(batch, torch.zeros(3, 128), 0)
    assert logs["height"] > 0
    plain = _model(TINY_VAE)
    torch.manual_seed(5)
    base, base_logs = vae_loss(plain)(batch, torch.zeros(3, 128), 0)
    assert "height" not in base_logs
    assert total.item() == pytest.approx(base.item() + 2.0 * logs["height"], rel=1e-5)


def _mdm(trajectory_weight: float):
    from easytune_engine.models import MDMConfig

    torch.manual_seed(0)
    cfg = MDMConfig(width=64, layers=1, heads=4, trajectory_weight=trajectory_weight)
    return build_backbone("mdm", cfg).train()


def test_mdm_trajectory_term_is_off_by_default_and_adds_its_weighted_value():
    from easytune_engine.training.objectives import mdm_loss

    batch = _batch()
    text = torch.randn(3, 128)
    torch.manual_seed(5)
    base, logs = mdm_loss(_mdm(0.0))(batch, text, 0)
    assert "traj" not in logs and base.item() == pytest.approx(logs["mse"] + logs["vel"])
    torch.manual_seed(5)  # same t, noise and text dropout
    model = _mdm(2.0)
    total, logs2 = mdm_loss(model)(batch, text, 0)
    assert logs2["mse"] == pytest.approx(logs["mse"]) and logs2["traj"] > 0
    assert total.item() == pytest.approx(logs2["mse"] + logs2["vel"] + 2.0 * logs2["traj"])
    total.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_mdm_config_refuses_a_negative_trajectory_weight():
    with pytest.raises(ValueError, match="trajectory_weight"):
        _mdm(-1.0)
