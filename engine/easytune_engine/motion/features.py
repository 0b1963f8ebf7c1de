"""HumanML3D's 263-d motion features from joint positions, and back (numpy).

`joints_to_features` follows HumanML3D's `process_file` (motion_representation.ipynb) and
`features_to_joints` is its `recover_from_ric`; see docs/motion.md for the layout:

    [0:1]     root angular velocity about Y (half the yaw increment, rad/frame)
    [1:3]     root linear velocity x, z in the facing frame
    [3:4]     root height
    [4:67]    joints 1..21 relative to the root's xz, rotated into the facing frame
    [67:193]  joints 1..21 swing-only rotations, 6-D (first two matrix columns)
    [193:259] joints 0..21 velocities in the facing frame
    [259:263] foot contacts: l_ankle, l_foot, r_ankle, r_foot

Decisions where HumanML3D is ambiguous or buggy (each is marked `# HumanML3D:` below):
- No `uniform_skeleton` retargeting: bone lengths are kept as given.
- The per-frame facing uses across = (r_hip - l_hip) + (r_shoulder - l_shoulder), as for frame 0.
  HumanML3D's `inverse_kinematics_np` unpacks `face_joint_indx` in a different order and so uses
  (l_hip - r_hip) + (r_shoulder - l_shoulder) there; the two agree unless the torso twists.
- The root quaternions are made sign-continuous before differencing. HumanML3D's are not, so its
  arcsin(y) angular velocity gets the wrong sign on the frame where the facing crosses -Z, and its
  recovered motion turns the wrong way there. Elsewhere the numbers are identical.
- The first frame's root rotation is the identity (as in HumanML3D), which is what makes
  `features_to_joints(joints_to_features(j))` reproduce `canonicalize_joints(j)[:-1]` exactly.

The 6-D rotations are swing-only (each bone's shortest-arc rotation from its rest direction,
relative to its chain parent's swing, HumanML3D's simple IK); twist is lost. They are model inputs
only and must not drive a rig: use joint positions with a proper IK for that.
"""

from __future__ import annotations

import numpy as np

from easytune_engine.motion import skeleton
from easytune_engine.motion.quaternion import qbetween, qinv, qmul, qrot, qto_matrix, qyaw

FEATURE_DIM = 263
FACING_SMOOTH_SIGMA = 20.0  # frames; HumanML3D's gaussian_filter1d(forward, 20, mode="nearest")

_J = skeleton.NUM_JOINTS  # 22
_PARENTS = np.array(skeleton.PARENTS)
# HumanML3D's IK restarts every kinematic chain from the root rotation, so the first bone of
# each chain (hips, spine1, collars) is expressed relative to the root, the rest to their parent.
_CHAIN_STARTS = frozenset(chain[1] for chain in skeleton.KINEMATIC_CHAINS)
_SWING_PARENT = np.array([0 if j in _CHAIN_STARTS else _PARENTS[j] for j in range(1, _J)])
_FROM_ROOT = np.array([j in _CHAIN_STARTS for j in range(1, _J)])


def gaussian_kernel(sigma: float = FACING_SMOOTH_SIGMA) -> np.ndarray:
    """scipy.ndimage's 1-D gaussian kernel: radius int(4 sigma + 0.5), normalised to sum 1."""
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def smooth_along_time(x: np.ndarray, sigma: float = FACING_SMOOTH_SIGMA) -> np.ndarray:
    """Gaussian smoothing along axis 0, edges padded (scipy's mode='nearest'): (T, C) -> (T, C)."""
    kernel = gaussian_kernel(sigma)
    radius = len(kernel) // 2
    t = x.shape[0]
    padded = x[np.clip(np.arange(-radius, t + radius), 0, t - 1)]  # (T + 2r, C)
    return np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(x.shape[1])], 1)


def _check_joints(joints: np.ndarray) -> np.ndarray:
    joints = np.asarray(joints)
    if joints.ndim != 3 or joints.shape[1:] != (_J, 3) or joints.shape[0] < 2:
        raise ValueError(
            f"joints must have shape (T, {_J}, 3) with T >= 2 frames, got {joints.shape}"
        )
    if not np.issubdtype(joints.dtype, np.floating) and not np.issubdtype(joints.dtype, np.integer):
        raise ValueError(f"joints must be a real-valued array, got dtype {joints.dtype}")
    if not np.all(np.isfinite(joints)):
        raise ValueError("joints contain NaN or infinite values")
    return joints


def _forward(joints: np.ndarray) -> np.ndarray:
    """Unnormalised horizontal facing cross(Y, across/|across|): (..., 22, 3) -> (..., 3)."""
    r_hip, l_hip, r_sdr, l_sdr = skeleton.FACE_JOINTS
    across = (joints[..., r_hip, :] - joints[..., l_hip, :]) + (
        joints[..., r_sdr, :] - joints[..., l_sdr, :]
    )
    across = across / np.maximum(np.linalg.norm(across, axis=-1, keepdims=True), 1e-12)
    # cross((0, 1, 0), a) = (a_z, 0, -a_x)
    return np.stack([across[..., 2], np.zeros_like(across[..., 0]), -across[..., 0]], axis=-1)


def canonicalize_joints(joints: np.ndarray) -> np.ndarray:
    """Put a motion on the floor, frame 0's root at the xz origin, frame 0 facing +Z: (T, 22, 3).

    This is the motion that `features_to_joints(joints_to_features(joints))` gives back (less
    its last frame). Computed in float64.
    """
    pos = _check_joints(joints).astype(np.float64)  # (T, 22, 3), a copy
    pos[..., 1] -= pos[..., 1].min()
    pos[..., [0, 2]] -= pos[0, 0, [0, 2]]
    forward = _forward(pos[0])  # (3,)
    norm = np.linalg.norm(forward)
    if norm < 1e-8:
        raise ValueError("frame 0 has no facing direction: hips and shoulders are degenerate")
    yaw = np.arctan2(forward[0], forward[2])
    return qrot(qyaw(-yaw), pos)


def _root_rotations(pos: np.ndarray) -> np.ndarray:
    """Per-frame root rotation (world -> facing frame), sign-continuous: (T, 22, 3) -> (T, 4)."""
    forward = smooth_along_time(_forward(pos))  # (T, 3)
    yaw = np.arctan2(forward[:, 0], forward[:, 2])  # (T,)
    yaw[0] = 0.0  # HumanML3D: root_quat[0] = identity
    # Unwrap so neighbouring quaternions stay on the same side (see the module docstring).
    step = np.diff(yaw)
    step -= 2 * np.pi * np.round(step / (2 * np.pi))
    yaw = np.concatenate([[0.0], np.cumsum(step)])
    return qyaw(-yaw)  # (T, 4)


def _swing_rotations(pos: np.ndarray, r_rot: np.ndarray) -> np.ndarray:
    """HumanML3D's IK, swing only: 6-D rotations of joints 1..21, (T, 22, 3) -> (T, 21, 6)."""
    bones = pos[:, 1:] - pos[:, _PARENTS[1:]]  # (T, 21, 3)
    bones = bones / np.maximum(np.linalg.norm(bones, axis=-1, keepdims=True), 1e-12)
    swing = qbetween(skeleton.REST_DIRECTIONS[1:], bones)  # (T, 21, 4) rest dir -> bone dir
    # Parent's global rotation: the root's for a chain's first bone, else the parent bone's swing.
    parent = np.where(
        _FROM_ROOT[None, :, None], r_rot[:, None, :], swing[:, np.maximum(_SWING_PARENT - 1, 0)]
    )  # (T, 21, 4)
    local = qmul(qinv(parent), swing)  # (T, 21, 4)
    mat = qto_matrix(local)  # (T, 21, 3, 3)
    return np.concatenate([mat[..., 0], mat[..., 1]], axis=-1)  # (T, 21, 6) first two columns


def joints_to_features(joints: np.ndarray) -> np.ndarray:
    """HumanML3D features from joint positions: (T, 22, 3) metres, Y up -> (T-1, 263).

    The motion is canonicalised first (`canonicalize_joints`); see the module docstring for the
    layout and the HumanML3D quirks decided here. Computed in float64; the result has the input's
    floating dtype (float64 for integer input).
    """
    joints = _check_joints(joints)
    out_dtype = joints.dtype if np.issubdtype(joints.dtype, np.floating) else np.float64
    pos = canonicalize_joints(joints)  # (T, 22, 3)
    t = pos.shape[0]

    # Foot contacts: squared displacement between frames below the threshold.
    feet = np.array(skeleton.LEFT_FOOT_JOINTS + skeleton.RIGHT_FOOT_JOINTS)
    disp = np.sum((pos[1:, feet] - pos[:-1, feet]) ** 2, axis=-1)  # (T-1, 4)
    contacts = (disp < skeleton.FOOT_CONTACT_THRESHOLD).astype(np.float64)

    r_rot = _root_rotations(pos)  # (T, 4)

    # Root angular velocity: arcsin of y of the relative rotation = half the yaw increment.
    r_vel = qmul(r_rot[1:], qinv(r_rot[:-1]))  # (T-1, 4)
    ang_vel = np.arcsin(np.clip(r_vel[:, 2:3], -1.0, 1.0))  # (T-1, 1)
    # Root linear velocity, in the facing frame of the later frame (as recover_from_ric expects).
    lin_vel = qrot(r_rot[1:], pos[1:, 0] - pos[:-1, 0])[:, [0, 2]]  # (T-1, 2)
    root_y = pos[:-1, 0, 1:2]  # (T-1, 1)

    # Rotation-invariant coordinates: xz relative to the root, rotated into the facing frame.
    local = pos.copy()
    local[..., [0, 2]] -= pos[:, :1, [0, 2]]
    ric = qrot(r_rot[:, None], local)[:-1, 1:].reshape(t - 1, 63)  # (T-1, 21 * 3)

    rot6d = _swing_rotations(pos, r_rot)[:-1].reshape(t - 1, 126)  # (T-1, 21 * 6)

    # Velocities of all joints, in the facing frame of the earlier frame (HumanML3D).
    vel = qrot(r_rot[:-1, None], pos[1:] - pos[:-1]).reshape(t - 1, 66)  # (T-1, 22 * 3)

    feats = np.concatenate([ang_vel, lin_vel, root_y, ric, rot6d, vel, contacts], axis=-1)
    return feats.astype(out_dtype, copy=False)


def features_to_joints(features: np.ndarray) -> np.ndarray:
    """Joint positions from (de-normalised) features, HumanML3D's recover_from_ric.

    (..., T, 263) -> (..., T, 22, 3). Only the root and RIC groups are read.
    """
    x = np.asarray(features)
    if x.ndim < 2 or x.shape[-1] != FEATURE_DIM:
        raise ValueError(
            f"features must have shape (T, {FEATURE_DIM}) or (..., T, 263), got {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    # 1. Root yaw: theta_t = sum_{i<t} x_i[0]; q_t = (cos, 0, sin, 0) maps world -> facing frame.
    theta = np.cumsum(x[..., :-1, 0], axis=-1)
    theta = np.concatenate([np.zeros_like(theta[..., :1]), theta], axis=-1)  # (..., T)
    q_inv = qinv(qyaw(2.0 * theta))  # (..., T, 4) facing frame -> world
    # 2. Root position: velocities of step t-1 -> t rotated into the world, summed.
    r_vel = np.zeros((*x.shape[:-1], 3), dtype=x.dtype)  # (..., T, 3)
    r_vel[..., 1:, 0] = x[..., :-1, 1]
    r_vel[..., 1:, 2] = x[..., :-1, 2]
    root = np.cumsum(qrot(q_inv, r_vel), axis=-2)
    root[..., 1] = x[..., 3]
    # 3. Joints 1..21: un-rotate, add the root's x and z.
    ric = x[..., 4:67].reshape(*x.shape[:-1], 21, 3)  # (..., T, 21, 3)
    body = qrot(q_inv[..., None, :], ric)
    body[..., 0] += root[..., None, 0]
    body[..., 2] += root[..., None, 2]
    # 4. Root + 21 joints.
    return np.concatenate([root[..., None, :], body], axis=-2)  # (..., T, 22, 3)
