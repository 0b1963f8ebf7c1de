"""Raw generated features -> the `clip` record a client animates (numpy, no torch).

clip = clip_arrays(features)      # joints (T, 22, 3), rotations (T, 22, 4) wxyz,
                                  # root_translation (T, 3), foot_contacts (T, 4) uint8
"""

from __future__ import annotations

import numpy as np

from ..motion.features import FEATURE_DIM, features_to_joints
from ..motion.ik import inverse_kinematics

CONTACTS = slice(259, 263)  # feature channels: l_ankle, l_foot, r_ankle, r_foot (0 or 1)


def clip_arrays(features: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays of one clip from its (T, 263) raw features; ValueError if IK is undefined."""
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != FEATURE_DIM:
        raise ValueError(f"features must be (T, {FEATURE_DIM}), got {x.shape}")
    joints = features_to_joints(x).astype(np.float32)  # (T, 22, 3)
    pose = inverse_kinematics(joints)
    rotations = pose.local_rotations  # (T, 22, 4) w, x, y, z, unit, sign-continuous
    rotations = rotations / np.linalg.norm(rotations, axis=-1, keepdims=True)
    return {
        "joints": joints,
        "rotations": rotations.astype(np.float32),
        "root_translation": pose.root_translation.astype(np.float32),
        "foot_contacts": (x[:, CONTACTS] > 0.5).astype(np.uint8),
    }
