"""HumanML3D normalisation: group-averaged std, streaming statistics, numpy and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from easytune_engine.motion.normalize import (
    FEATURE_SLICES,
    MIN_STD,
    compute_mean_std,
    denormalize,
    normalize,
)


def _clips(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.1, 3.0, 263)
    return [rng.normal(size=(n, 263)) * scale + 5.0 for n in (40, 73, 196, 1)]


def test_feature_slices_tile_the_263_features() -> None:
    bounds = [(s.start, s.stop) for s in FEATURE_SLICES.values()]
    assert bounds == [(0, 1), (1, 3), (3, 4), (4, 67), (67, 193), (193, 259), (259, 263)]


def test_mean_std_match_humanml3d_recipe() -> None:
    clips = _clips()
    mean, std = compute_mean_std(clips)
    data = np.concatenate(clips)
    assert mean.shape == std.shape == (263,)
    assert mean.dtype == std.dtype == np.float32
    np.testing.assert_allclose(mean, data.mean(axis=0), rtol=1e-6)
    per_dim = data.std(axis=0)
    for name, group in FEATURE_SLICES.items():
        np.testing.assert_allclose(std[group], per_dim[group].mean(), rtol=1e-6, err_msg=name)


def test_mean_std_accepts_a_generator_or_one_array() -> None:
    clips = _clips(1)
    from_list = compute_mean_std(clips)
    from_gen = compute_mean_std(c for c in clips)
    from_array = compute_mean_std(np.concatenate(clips))
    for a, b in ((from_list, from_gen), (from_list, from_array)):
        np.testing.assert_allclose(a[0], b[0], rtol=1e-6)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-6)


def test_constant_group_gets_the_std_floor() -> None:
    clips = _clips(2)
    for c in clips:
        c[:, 259:263] = 1.0  # feet always planted
    _, std = compute_mean_std(clips)
    np.testing.assert_allclose(std[259:263], MIN_STD)
    assert np.all(np.isfinite(normalize(clips[0], *compute_mean_std(clips))))


def test_normalize_denormalize_round_trip_numpy_and_torch() -> None:
    clips = _clips(3)
    mean, std = compute_mean_std(clips)
    x = clips[2]
    z = normalize(x, mean, std)
    np.testing.assert_allclose(z.mean(axis=0).mean(), 0.0, atol=0.1)
    np.testing.assert_allclose(denormalize(z, mean, std), x, rtol=1e-6)
    xt = torch.from_numpy(x).float()[None]  # (1, T, 263)
    zt = normalize(xt, mean, std)  # numpy statistics, torch input
    assert isinstance(zt, torch.Tensor) and zt.dtype == torch.float32
    np.testing.assert_allclose(zt[0].numpy(), z, rtol=1e-4, atol=1e-4)
    back = denormalize(zt, torch.from_numpy(mean), torch.from_numpy(std))
    np.testing.assert_allclose(back.numpy(), xt.numpy(), rtol=1e-5, atol=1e-5)


def test_bad_shapes_raise_value_error() -> None:
    mean, std = np.zeros(263), np.ones(263)
    with pytest.raises(ValueError, match=r"\(\.\.\., 263\)"):
        normalize(np.zeros((5, 262)), mean, std)
    with pytest.raises(ValueError, match=r"mean must have shape \(263,\)"):
        denormalize(np.zeros((5, 263)), np.zeros(10), std)
    with pytest.raises(ValueError, match=r"clip 1 must have shape \(T, 263\)"):
        compute_mean_std([np.zeros((5, 263)), np.zeros((5, 200))])
    with pytest.raises(ValueError, match="at least one frame"):
        compute_mean_std([])
