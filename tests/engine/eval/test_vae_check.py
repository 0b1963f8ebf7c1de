"""VAE round-trip check: real clips through a latent backbone's VAE, judged by the oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from easytune_engine.eval.vae_check import (
    FEATURE_GROUPS,
    group_errors,
    round_trip_clips,
    vae_round_trip,
    vae_round_trip_report,
)
from easytune_engine.models import MLDConfig, VAEConfig, build_backbone
from easytune_engine.motion.features import FEATURE_DIM


class _Identity(nn.Module):
    """A 'latent backbone' whose latent is the normalised features themselves."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def encode(self, x, lengths):
        return x

    def decode(self, z, lengths, frames=None):
        return z

    def denormalize(self, x):
        return x * self.std + self.mean


def test_group_errors_are_zero_for_a_copy_and_one_for_the_mean():
    rng = np.random.default_rng(0)
    real = [rng.normal(size=(n, FEATURE_DIM)) for n in (30, 50)]
    assert all(v == 0.0 for v in group_errors(real, real).values())
    mean = np.concatenate(real).mean(0)
    flat = [np.broadcast_to(mean, r.shape) for r in real]
    errs = group_errors(real, flat)
    assert set(errs) == set(FEATURE_GROUPS) | {"all"}
    assert all(v == pytest.approx(1.0) for v in errs.values())


def test_round_trip_does_not_depend_on_the_batch():
    torch.manual_seed(0)
    vae = VAEConfig(width=64, enc_layers=1, dec_layers=1, latent_tokens=2, latent_dim=16)
    model = build_backbone("mld", MLDConfig(vae=vae, width=64, layers=3, text_dim=128)).eval()
    rng = np.random.default_rng(1)
    feats = [rng.normal(size=(n, FEATURE_DIM)).astype(np.float32) for n in (40, 17, 64)]
    together = vae_round_trip(model, feats)
    alone = vae_round_trip(model, feats, batch=1)
    assert [r.shape for r in together] == [f.shape for f in feats]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_a_perfect_vae_passes_every_real_clip(tiny_corpus: Path):
    from easytune_engine.data.humanml3d import load_split

    split = load_split(tiny_corpus, "test")
    clips = round_trip_clips(tiny_corpus, samples=8)
    ids, feats, programs = clips
    assert 0 < len(ids) <= 8 and len(feats) == len(programs) == len(ids)
    report = vae_round_trip_report(_Identity(split.mean, split.std), clips=clips)
    assert report["clips"] == len(ids)
    assert report["accuracy"] == 1.0 and sorted(report["passed_ids"]) == sorted(ids)
    assert max(report["group_error"].values()) < 1e-10
    assert report["segment_pass_by_action"]
    assert set(report["segment_pass_by_action"].values()) == {1.0}
    again = vae_round_trip_report(_Identity(split.mean, split.std), tiny_corpus, samples=8)
    assert again["accuracy_ci95"] == report["accuracy_ci95"]


def test_round_trip_clips_come_from_the_asked_split(tiny_corpus: Path):
    """Development decisions use val clips; reported figures use test; never a mix."""
    from easytune_engine.data.humanml3d import load_split

    for name in ("val", "test"):
        ids, feats, _ = round_trip_clips(tiny_corpus, samples=6, split=name)
        split = load_split(tiny_corpus, name)
        assert ids and all(
            np.array_equal(split.by_id(i).features[: len(f)], f)
            for i, f in zip(ids, feats, strict=True)
        )
        own = {s.id for s in split}
        assert set(ids) <= own
    assert not set(round_trip_clips(tiny_corpus, 6, split="val")[0]) & set(
        round_trip_clips(tiny_corpus, 6, split="test")[0]
    )


def test_load_vae_keeps_the_vae_whatever_the_denoiser(tmp_path: Path):
    """A VAE-stage checkpoint whose (untrained) denoiser no longer fits this code still gives its
    VAE and statistics; a checkpoint without a VAE is refused by kind."""
    from easytune_engine.checkpoint import CheckpointError
    from easytune_engine.eval.vae_check import load_vae
    from easytune_engine.models import MDMConfig
    from easytune_engine.models.io import save_backbone

    torch.manual_seed(0)
    config = MLDConfig(vae=VAEConfig(width=64, enc_layers=1, dec_layers=1), width=64, layers=3)
    model = build_backbone("mld", config, np.zeros(FEATURE_DIM), np.full(FEATURE_DIM, 2.0))
    model.denoiser.pos = nn.Parameter(torch.zeros(3, 64))  # a denoiser of another shape
    save_backbone(tmp_path / "vae.safetensors", model, {})
    got = load_vae(tmp_path / "vae.safetensors")
    for name, value in model.vae.state_dict().items():
        assert torch.equal(got.vae.state_dict()[name], value), name
    assert torch.equal(got.std, model.std)
    assert got.denoiser.pos.shape != (3, 64)
    mdm = build_backbone("mdm", MDMConfig(width=64, layers=1, heads=4))
    save_backbone(tmp_path / "mdm.safetensors", mdm, {})
    with pytest.raises(CheckpointError, match="mdm checkpoint has no VAE"):
        load_vae(tmp_path / "mdm.safetensors")
