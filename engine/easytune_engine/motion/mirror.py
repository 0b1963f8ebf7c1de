"""Left/right mirroring of joint positions and of HumanML3D features (the dataset's 'M' copies).

Mirroring reflects x -> -x (the body's left/right axis) and swaps every left joint with its
right twin. `mirror_features` acts on the 263 features directly and agrees with extracting
features from mirrored joints, because every step of the extraction commutes with the
reflection M = diag(-1, 1, 1):
- yaw angles change sign: root angular velocity flips, root velocity x flips;
- positions and velocities: x flips, left/right joints swap;
- a rotation R becomes M R M; its first two columns c0, c1 become (c0x, -c0y, -c0z) and
  (-c1x, c1y, c1z); left/right joints swap;
- foot contacts swap (l_ankle, l_foot) with (r_ankle, r_foot).
Both functions are their own inverse and work on numpy arrays or torch tensors.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from easytune_engine.motion import skeleton
from easytune_engine.motion.features import FEATURE_DIM

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

_PERM = skeleton.mirror_permutation()  # (22,)
_BODY_PERM = _PERM[1:] - 1  # (21,) the same swap among joints 1..21

# Per-feature sign under mirroring, and the permutation of the 263 dimensions.
_SIGN = np.ones(FEATURE_DIM)
_SIGN[0] = -1.0  # root angular velocity
_SIGN[1] = -1.0  # root velocity x
_SIGN[4:67] = np.tile([-1.0, 1.0, 1.0], 21)  # RIC x
_SIGN[67:193] = np.tile([1.0, -1.0, -1.0, -1.0, 1.0, 1.0], 21)  # M R M, first two columns
_SIGN[193:259] = np.tile([-1.0, 1.0, 1.0], 22)  # velocity x
_SOURCE = np.arange(FEATURE_DIM)  # output dim i reads input dim _SOURCE[i]
_SOURCE[4:67] = 4 + (3 * _BODY_PERM[:, None] + np.arange(3)).ravel()
_SOURCE[67:193] = 67 + (6 * _BODY_PERM[:, None] + np.arange(6)).ravel()
_SOURCE[193:259] = 193 + (3 * _PERM[:, None] + np.arange(3)).ravel()
_SOURCE[259:263] = [261, 262, 259, 260]  # (l_ankle, l_foot, r_ankle, r_foot) swap sides


def mirror_joints(joints: ArrayT) -> ArrayT:
    """Mirror joint positions left/right: (..., 22, 3) -> (..., 22, 3)."""
    if joints.ndim < 2 or tuple(joints.shape[-2:]) != (skeleton.NUM_JOINTS, 3):
        raise ValueError(
            f"joints must have shape (..., {skeleton.NUM_JOINTS}, 3), got {tuple(joints.shape)}"
        )
    if isinstance(joints, torch.Tensor):
        perm = torch.as_tensor(_PERM, device=joints.device)
        sign = torch.tensor([-1.0, 1.0, 1.0], dtype=joints.dtype, device=joints.device)
        return joints[..., perm, :] * sign
    return joints[..., _PERM, :] * np.array([-1.0, 1.0, 1.0], dtype=joints.dtype)


def mirror_features(features: ArrayT) -> ArrayT:
    """Mirror HumanML3D features left/right (un-normalised): (..., 263) -> (..., 263).

    Do not apply to normalised features unless the mean is mirror-symmetric (HumanML3D's is,
    since its statistics include the mirrored copies); mirror before normalising otherwise.
    """
    if features.ndim < 1 or features.shape[-1] != FEATURE_DIM:
        raise ValueError(
            f"features must have shape (..., {FEATURE_DIM}), got {tuple(features.shape)}"
        )
    if isinstance(features, torch.Tensor):
        source = torch.as_tensor(_SOURCE, device=features.device)
        sign = torch.as_tensor(_SIGN, dtype=features.dtype, device=features.device)
        return features[..., source] * sign
    return features[..., _SOURCE] * _SIGN.astype(features.dtype)
