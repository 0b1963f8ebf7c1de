"""The 22-joint SMPL skeleton used by HumanML3D, as plain data.

Every other module in `motion/` indexes joints through the constants here. Coordinates are metres,
Y up, +Z forward, +X to the body's left (SMPL convention: the left hip sits at +X).
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)
NUM_JOINTS = len(JOINT_NAMES)  # 22
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

# Parent of each joint; -1 for the root (pelvis).
# fmt: off
PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
)
# fmt: on

# HumanML3D's kinematic chains: right leg, left leg, spine to head, right arm, left arm.
KINEMATIC_CHAINS: tuple[tuple[int, ...], ...] = (
    (0, 2, 5, 8, 11),
    (0, 1, 4, 7, 10),
    (0, 3, 6, 9, 12, 15),
    (9, 14, 17, 19, 21),
    (9, 13, 16, 18, 20),
)

# Unit rest direction of the bone that ends at each joint (HumanML3D's t2m_raw_offsets).
REST_DIRECTIONS = np.array(
    [
        [0, 0, 0],
        [1, 0, 0],
        [-1, 0, 0],
        [0, 1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, 1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, 1, 0],
        [0, 0, 1],
        [0, 0, 1],
        [0, 1, 0],
        [1, 0, 0],
        [-1, 0, 0],
        [0, 0, 1],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
    ],
    dtype=np.float64,
)
REST_DIRECTIONS.setflags(write=False)

# Joints used by the feature extraction.
FACE_JOINTS: tuple[int, int, int, int] = (2, 1, 17, 16)  # r_hip, l_hip, r_shoulder, l_shoulder
LEFT_FOOT_JOINTS: tuple[int, int] = (7, 10)  # l_ankle, l_foot
RIGHT_FOOT_JOINTS: tuple[int, int] = (8, 11)  # r_ankle, r_foot
FOOT_CONTACT_THRESHOLD = 0.002  # squared per-frame displacement (m^2) below which a foot is planted

# Left/right pairs, for mirroring.
MIRROR_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2),
    (4, 5),
    (7, 8),
    (10, 11),
    (13, 14),
    (16, 17),
    (18, 19),
    (20, 21),
)


def mirror_permutation() -> np.ndarray:
    """Index array that swaps every left joint with its right twin: (22,)."""
    perm = np.arange(NUM_JOINTS)
    for left, right in MIRROR_PAIRS:
        perm[left], perm[right] = right, left
    return perm


def children(joint: int) -> tuple[int, ...]:
    """Joints whose parent is `joint`."""
    return tuple(j for j, p in enumerate(PARENTS) if p == joint)


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Length of the bone ending at each joint, per frame: (..., 22, 3) -> (..., 22); root is 0."""
    parents = np.array(PARENTS)
    parents[0] = 0
    return np.linalg.norm(joints - joints[..., parents, :], axis=-1)


def rest_offsets(lengths: np.ndarray) -> np.ndarray:
    """Rest-pose bone offsets (22, 3) from per-bone lengths (22,): length times rest direction."""
    lengths = np.asarray(lengths, dtype=np.float64)
    if lengths.shape != (NUM_JOINTS,):
        raise ValueError(f"lengths must have shape ({NUM_JOINTS},), got {lengths.shape}")
    return REST_DIRECTIONS * lengths[:, None]
