"""Raw generated features -> the `clip` record a client animates (numpy, no torch).

clip = clip_arrays(features)      # joints (T, 22, 3), rotations (T, 22, 4) wxyz,
                                  # root_translation (T, 3), foot_contacts (T, 4) uint8
clips = clip_arrays_many([f1, f2])  # the same for a batch, IK solved in one pass; a clip whose
                                  # pose is undefined gets its ValueError in its place
"""

from __future__ import annotations

import numpy as np

from ..motion.features import FEATURE_DIM, features_to_joints
from ..motion.ik import Pose, inverse_kinematics_many

CONTACTS = slice(259, 263)  # feature channels: l_ankle, l_foot, r_ankle, r_foot (0 or 1)


def clip_arrays(features: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays of one clip from its (T, 263) raw features; ValueError if IK is undefined."""
    out = clip_arrays_many([features])[0]
    if isinstance(out, ValueError):
        raise out
    return out


def clip_arrays_many(features: list[np.ndarray]) -> list[dict[str, np.ndarray] | ValueError]:
    """`clip_arrays` of several clips, the IK of all of them in one pass."""
    xs = [_check(f) for f in features]
    joints = [features_to_joints(x).astype(np.float32) for x in xs]  # (T, 22, 3) each
    try:
        poses: list[Pose | ValueError] = list(inverse_kinematics_many(joints))
    except ValueError:  # some clip has no pose: solve one by one to find which
        poses = [_pose_or_error(j) for j in joints]
    return [
        p if isinstance(p, ValueError) else _arrays(x, j, p)
        for x, j, p in zip(xs, joints, poses, strict=True)
    ]


def _check(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != FEATURE_DIM:
        raise ValueError(f"features must be (T, {FEATURE_DIM}), got {x.shape}")
    return x


def _pose_or_error(joints: np.ndarray) -> Pose | ValueError:
    try:
        return inverse_kinematics_many([joints])[0]
    except ValueError as exc:
        return exc


def _arrays(x: np.ndarray, joints: np.ndarray, pose: Pose) -> dict[str, np.ndarray]:
    return {
        "joints": joints,
        # (T, 22, 4) wxyz, unit, continuous
        "rotations": pose.local_rotations.astype(np.float32, copy=False),
        "root_translation": pose.root_translation.astype(np.float32, copy=False),
        "foot_contacts": (x[:, CONTACTS] > 0.5).astype(np.uint8),
    }
