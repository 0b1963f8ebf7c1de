"""Feature normalisation the HumanML3D way: per-dimension mean, group-averaged std.

HumanML3D's Mean.npy is the per-dimension mean over every frame of the training set; Std.npy is
the per-dimension std with each of the seven feature groups replaced by the group's average
(so a group is scaled as one quantity and near-constant dimensions do not blow up).
`normalize` / `denormalize` accept numpy arrays or torch tensors and return the same kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import numpy as np
import torch

from easytune_engine.motion.features import FEATURE_DIM

# The seven groups of the 263-d features (see docs/motion.md).
FEATURE_SLICES: dict[str, slice] = {
    "root_angular_velocity": slice(0, 1),
    "root_linear_velocity": slice(1, 3),
    "root_height": slice(3, 4),
    "ric_positions": slice(4, 67),
    "rotations_6d": slice(67, 193),
    "local_velocities": slice(193, 259),
    "foot_contacts": slice(259, 263),
}

MIN_STD = 1e-4  # floor on the group std, so constant groups (e.g. no contacts) stay finite

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def compute_mean_std(
    features_list: Iterable[np.ndarray] | np.ndarray, min_std: float = MIN_STD
) -> tuple[np.ndarray, np.ndarray]:
    """HumanML3D Mean and Std over all frames of all clips: each (263,), float32.

    features_list: clips of shape (T_i, 263) (any iterable, consumed once), or one (N, 263) array.
    Statistics are accumulated clip by clip in float64 (Chan et al.'s pairwise update), so a
    corpus never has to sit in memory as one array. std uses ddof=0, like numpy's default.
    """
    if isinstance(features_list, np.ndarray) and features_list.ndim == 2:
        features_list = [features_list]
    count = 0
    mean = np.zeros(FEATURE_DIM)
    m2 = np.zeros(FEATURE_DIM)  # sum of squared deviations from the mean
    for i, clip in enumerate(features_list):
        x = np.asarray(clip, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != FEATURE_DIM:
            raise ValueError(f"clip {i} must have shape (T, {FEATURE_DIM}), got {x.shape}")
        n = x.shape[0]
        if n == 0:
            continue
        clip_mean = x.mean(axis=0)
        clip_m2 = ((x - clip_mean) ** 2).sum(axis=0)
        delta = clip_mean - mean
        total = count + n
        mean = mean + delta * (n / total)
        m2 = m2 + clip_m2 + delta**2 * (count * n / total)
        count = total
    if count == 0:
        raise ValueError("compute_mean_std needs at least one frame of features")
    std = np.sqrt(m2 / count)
    for group in FEATURE_SLICES.values():
        std[group] = max(std[group].mean(), min_std)
    return mean.astype(np.float32), std.astype(np.float32)


def _like(stat: np.ndarray | torch.Tensor, x: ArrayT) -> ArrayT:
    if isinstance(x, torch.Tensor):
        return torch.as_tensor(stat, dtype=x.dtype, device=x.device)
    return np.asarray(stat, dtype=x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)


def _check(x: np.ndarray | torch.Tensor, mean: object, std: object) -> None:
    if x.shape[-1] != FEATURE_DIM:
        raise ValueError(f"x must have shape (..., {FEATURE_DIM}), got {tuple(x.shape)}")
    for name, stat in (("mean", mean), ("std", std)):
        if tuple(np.shape(stat)) != (FEATURE_DIM,):
            raise ValueError(
                f"{name} must have shape ({FEATURE_DIM},), got {tuple(np.shape(stat))}"
            )


def normalize(x: ArrayT, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> ArrayT:
    """(x - mean) / std over the last axis: (..., 263) -> (..., 263), numpy or torch."""
    _check(x, mean, std)
    return (x - _like(mean, x)) / _like(std, x)


def denormalize(
    x: ArrayT, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor
) -> ArrayT:
    """x * std + mean over the last axis: (..., 263) -> (..., 263), numpy or torch."""
    _check(x, mean, std)
    return x * _like(std, x) + _like(mean, x)
