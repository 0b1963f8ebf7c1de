"""Training losses on a "frames" VAE (one latent per 4 frames): what lies past a motion's
length never enters the VAE, denoiser or distillation loss, and the latent scale counts only
real tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from easytune_engine.data.humanml3d import Batch
from easytune_engine.models import LCMConfig, MLDConfig, VAEConfig, build_backbone
from easytune_engine.motion.features import FEATURE_DIM
from easytune_engine.training.objectives import (
    ConsistencyDistillation,
    latent_eps_loss,
    measure_latent_std,
    vae_loss,
)

FRAMES_VAE = VAEConfig(width=64, enc_layers=1, dec_layers=1, latent_dim=8, latent_layout="frames")
LENGTHS = [40, 23, 64]  # latent tokens: 10, 6, 16


def _model(kind: str = "mld", seed: int = 0):
    torch.manual_seed(seed)
    config = (LCMConfig if kind == "lcm" else MLDConfig)(
        vae=FRAMES_VAE, width=64, layers=3, text_dim=128
    )
    return build_backbone(kind, config)


def _batch(junk: float = 0.0, seed: int = 1) -> Batch:
    """Three motions padded to 64 frames; `junk` fills the padding with large noise."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(LENGTHS)
    x = torch.randn(3, 64, FEATURE_DIM, generator=g)
    mask = torch.arange(64)[None] < lengths[:, None]
    x = torch.where(mask[..., None], x, junk * torch.randn(x.shape, generator=g))
    return Batch(x, lengths, mask, ["a", "b", "c"], [[], [], []], ["0", "1", "2"])


def test_vae_loss_ignores_the_padding():
    """Junk past each length changes neither the reconstruction nor the KL (zero tokens there)."""
    model = _model().eval()  # no dropout: the two calls see the same network
    text = torch.randn(3, 128)
    losses = []
    for junk in (0.0, 50.0):
        torch.manual_seed(3)  # same posterior samples
        losses.append(vae_loss(model)(_batch(junk), text, 0)[1])
    assert losses[0]["loss"] == pytest.approx(losses[1]["loss"], rel=1e-5)
    assert losses[0]["kl"] == pytest.approx(losses[1]["kl"], rel=1e-5)


def test_denoiser_loss_averages_over_the_tokens_of_each_motion():
    """The ε loss is the mean over the 10 + 6 + 16 real latent tokens, not over all 3 x 16: the
    noise drawn for padded tokens (where the model outputs 0) would otherwise count."""
    model = _model().eval()
    batch, text = _batch(), torch.randn(3, 128)
    torch.manual_seed(4)
    got = latent_eps_loss(model)(batch, text, 0)[0]
    torch.manual_seed(4)  # the loss's draws, in its order: t, noise, text dropout
    x0 = model.encode(batch.features, batch.lengths)
    t = torch.randint(0, model.schedule.num_train_timesteps, (3,))
    noise = torch.randn(x0.shape)
    keep = torch.rand(3) >= model.config.cond_drop
    from easytune_engine.diffusion.sampling import Conditioning

    cond = Conditioning(text=text, lengths=batch.lengths, use_text=keep)
    err = (model(model.schedule.add_noise(x0, t, noise), t, cond) - noise) ** 2
    valid = model.noise_mask(batch.lengths, x0.shape[1])
    assert valid.sum(1).tolist() == [10, 6, 16]
    assert got.item() == pytest.approx(err[valid].mean().item(), rel=1e-5)
    assert got.item() != pytest.approx(err.mean().item(), rel=1e-2)


def test_distillation_loss_averages_over_the_tokens_of_each_motion():
    """The Huber consistency loss is the mean over real latent tokens (padded ones are 0 in both
    the student's output and the target, and are not counted)."""
    from easytune_engine.diffusion.sampling import Conditioning

    teacher = _model("mld", seed=1).eval()
    student = _model("lcm", seed=1)
    student.load_state_dict(teacher.state_dict(), strict=False)
    student.eval()
    distill = ConsistencyDistillation(student, teacher)
    batch, text = _batch(), torch.randn(3, 128)
    torch.manual_seed(6)
    loss, _ = distill.loss(batch, text, 0)
    torch.manual_seed(6)  # the loss's draws, in its order: step index, w, noise
    c = student.config
    with torch.no_grad():
        x0 = teacher.encode(batch.features, batch.lengths)
        t = (torch.randint(0, c.origin_steps, (3,)) + 1) * distill.k - 1
        w = c.w_min + (c.w_max - c.w_min) * torch.rand(3)
        x_t = student.schedule.add_noise(x0, t, torch.randn(x0.shape))
        cond = Conditioning(text=text, lengths=batch.lengths, guidance=w)
        x_prev = distill._teacher_step(
            x_t, t, (t - distill.k).clamp(min=0), Conditioning(text, batch.lengths), w
        )
        target = distill.target(x_prev, (t - distill.k).clamp(min=0), cond)
        pred = student(x_t, t, cond)
    huber = ((pred - target) ** 2 + c.huber_c**2).sqrt() - c.huber_c
    valid = student.noise_mask(batch.lengths, x0.shape[1])
    assert torch.all(huber[~valid] == 0)
    assert loss.item() == pytest.approx(huber[valid].mean().item(), rel=1e-5)
    assert loss.item() > huber.mean().item() * 1.2  # 32 of 48 tokens are real
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.denoiser.parameters())


def test_latent_scale_counts_only_real_tokens(tiny_corpus):
    """measure_latent_std over a "frames" VAE: the zeros past each length are not latents."""
    from easytune_engine.data.humanml3d import load_split, sample_batch

    split = load_split(tiny_corpus, "train")
    model = _model().eval()
    got = measure_latent_std(model, split, batches=2, batch_size=8, seed=0).item()
    rng = np.random.default_rng(0)
    real, every = [], []
    for _ in range(2):
        b = sample_batch(split, 8, rng, mean=split.mean, std=split.std)
        with torch.no_grad():
            mu = model.vae.encode(b.features, b.lengths)[0]
        real.append(mu[model.noise_mask(b.lengths, mu.shape[1])])
        every.append(mu.flatten(0, 1))
    assert got == pytest.approx(torch.cat(real).std().item(), rel=1e-5)
    assert torch.cat(real).shape[0] < torch.cat(every).shape[0]  # some padding was left out


def test_frames_chain_trains_and_generates(tiny_corpus, tmp_path, monkeypatch, fast_tiny):
    """VAE -> denoiser -> LCM distillation on a "frames" VAE (the tiny presets' sizes and step
    counts, that layout), then both checkpoints load and generate motions of the asked lengths,
    and the latent's length follows the longest motion."""
    from dataclasses import replace

    from tests.engine.training.conftest import fast_presets

    from easytune_engine.models.io import load_backbone
    from easytune_engine.models.pipeline import MotionGenerator
    from easytune_engine.text.encoder import load_text_encoder
    from easytune_engine.training import presets
    from easytune_engine.training.backbones import train_backbone

    fast_presets(monkeypatch)
    for kind in ("mld", "lcm"):
        p = presets._TABLE[(kind, "tiny")]
        frames_vae = replace(p.model.vae, latent_layout="frames", latent_dim=8)
        monkeypatch.setitem(
            presets._TABLE, (kind, "tiny"), replace(p, model=replace(p.model, vae=frames_vae))
        )
    mld = train_backbone("mld", "tiny", tiny_corpus, tmp_path / "mld", progress=False)
    train_backbone(
        "lcm",
        "tiny",
        tiny_corpus,
        tmp_path / "lcm",
        teacher=mld,
        progress=False,
    )
    encoder = load_text_encoder()
    for kind in ("mld", "lcm"):
        model = load_backbone(tmp_path / kind / "model.safetensors")
        assert model.config.vae.latent_layout == "frames"
        assert 0 < float(model.latent_std) < 10
        assert model.noise_shape(torch.tensor([30, 61])) == (2, 16, 8)
        out = MotionGenerator(model, encoder).generate(
            ["a person jumps", "a person waves"], [30, 61], seed=0, steps=2
        )
        assert [f.shape for f in out.features] == [(30, 263), (61, 263)]
        assert all(np.isfinite(f).all() for f in out.features)


def test_channel_latent_scale_is_measured_per_channel_and_saved(tiny_corpus, tmp_path):
    """latent_scale="channel": measure_latent_std gives each latent channel's own spread over
    the real tokens, encode divides by it (unit spread per channel), and it survives a save."""
    from dataclasses import replace

    from easytune_engine.data.humanml3d import load_split, sample_batch
    from easytune_engine.models.io import load_backbone, save_backbone

    split = load_split(tiny_corpus, "train")
    torch.manual_seed(0)
    config = MLDConfig(vae=FRAMES_VAE, width=64, layers=3, text_dim=128, latent_scale="channel")
    model = build_backbone("mld", config, split.mean, split.std).eval()
    assert model.latent_std.shape == (8,)
    scale = measure_latent_std(model, split, batches=2, batch_size=8, seed=0)
    rng = np.random.default_rng(0)
    real = []
    for _ in range(2):
        b = sample_batch(split, 8, rng, mean=split.mean, std=split.std)
        with torch.no_grad():
            mu = model.vae.encode(b.features, b.lengths)[0]
        real.append(mu[model.noise_mask(b.lengths, mu.shape[1])])
    torch.testing.assert_close(scale, torch.cat(real).std(0))
    model.latent_std.copy_(scale)
    with torch.no_grad():
        x0 = model.encode(b.features, b.lengths)
    x0 = x0[model.noise_mask(b.lengths, x0.shape[1])]
    assert x0.std(0).min() > 0.3 and x0.std(0).max() < 3  # every channel near unit spread
    save_backbone(tmp_path / "m.safetensors", model, {})
    assert torch.equal(load_backbone(tmp_path / "m.safetensors").latent_std, scale)
    with pytest.raises(ValueError, match="latent_scale must be 'scalar' or 'channel'"):
        replace(config, latent_scale="dim")
