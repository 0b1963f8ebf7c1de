"""Batched, differentiable torch versions of `features.py` (HumanML3D 263-d features).

`features_to_joints_torch` is HumanML3D's `recover_from_ric` for (..., T, 263) tensors, used to
turn generated features into joints inside losses and rewards. `joints_to_features_torch` is
`joints_to_features` for a batch (B, T, 22, 3) and matches it to float precision. Both work on
any device and floating dtype and leave `no_grad` to the caller. Foot contacts are thresholded
and carry no gradient.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from easytune_engine.motion import skeleton
from easytune_engine.motion.features import FACING_SMOOTH_SIGMA, FEATURE_DIM, gaussian_kernel
from easytune_engine.motion.quaternion_torch import qbetween, qinv, qmul, qrot, qto_matrix, qyaw

_J = skeleton.NUM_JOINTS  # 22
_PARENTS = list(skeleton.PARENTS)
_CHAIN_STARTS = frozenset(chain[1] for chain in skeleton.KINEMATIC_CHAINS)
_FROM_ROOT = [j in _CHAIN_STARTS for j in range(1, _J)]
_SWING_PARENT = [0 if j in _CHAIN_STARTS else _PARENTS[j] - 1 for j in range(1, _J)]


def features_to_joints_torch(x: Tensor) -> Tensor:
    """Joint positions from (de-normalised) features: (..., T, 263) -> (..., T, 22, 3).

    HumanML3D's recover_from_ric; reads only the root and RIC groups.
    """
    if x.dim() < 2 or x.shape[-1] != FEATURE_DIM:
        raise ValueError(f"x must have shape (..., T, {FEATURE_DIM}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    # 1. Root yaw: theta_t = sum_{i<t} x_i[0]; q_t maps world -> facing frame.
    theta = F.pad(torch.cumsum(x[..., :-1, 0], dim=-1), (1, 0))  # (..., T)
    q_inv = qinv(qyaw(2.0 * theta))  # (..., T, 4) facing frame -> world
    # 2. Root position: velocities of step t-1 -> t rotated into the world, summed.
    vx, vz = x[..., :-1, 1], x[..., :-1, 2]
    r_vel = F.pad(torch.stack([vx, torch.zeros_like(vx), vz], dim=-1), (0, 0, 1, 0))  # (..., T, 3)
    root_xz = torch.cumsum(qrot(q_inv, r_vel), dim=-2)
    root = torch.stack([root_xz[..., 0], x[..., 3], root_xz[..., 2]], dim=-1)  # (..., T, 3)
    # 3. Joints 1..21: un-rotate, add the root's x and z.
    ric = x[..., 4:67].reshape(*x.shape[:-1], 21, 3)  # (..., T, 21, 3)
    body = qrot(q_inv[..., None, :], ric)
    offset = torch.stack([root[..., 0], torch.zeros_like(root[..., 1]), root[..., 2]], -1)
    body = body + offset[..., None, :]
    # 4. Root + 21 joints.
    return torch.cat([root[..., None, :], body], dim=-2)  # (..., T, 22, 3)


def _forward(joints: Tensor) -> Tensor:
    """Unnormalised facing cross(Y, across/|across|): (..., 22, 3) -> (..., 3)."""
    r_hip, l_hip, r_sdr, l_sdr = skeleton.FACE_JOINTS
    across = (joints[..., r_hip, :] - joints[..., l_hip, :]) + (
        joints[..., r_sdr, :] - joints[..., l_sdr, :]
    )
    across = across / across.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.stack([across[..., 2], torch.zeros_like(across[..., 0]), -across[..., 0]], -1)


def _smooth_along_time(x: Tensor, sigma: float = FACING_SMOOTH_SIGMA) -> Tensor:
    """Gaussian smoothing over T, edges padded (scipy mode='nearest'): (B, T, C) -> (B, T, C)."""
    kernel = torch.as_tensor(gaussian_kernel(sigma), dtype=x.dtype, device=x.device)
    radius = kernel.shape[0] // 2
    b, t, c = x.shape
    signal = x.transpose(1, 2).reshape(b * c, 1, t)  # (B*C, 1, T)
    signal = F.pad(signal, (radius, radius), mode="replicate")  # (B*C, 1, T + 2r)
    out = F.conv1d(signal, kernel.view(1, 1, -1))  # (B*C, 1, T); the kernel is symmetric
    return out.reshape(b, c, t).transpose(1, 2)


def _canonicalize(joints: Tensor) -> Tensor:
    """Floor, frame-0 root xz at the origin, frame 0 facing +Z: (B, T, 22, 3) -> same."""
    floor = joints[..., 1].flatten(1).min(dim=1).values  # (B,)
    origin = joints[:, 0, 0]  # (B, 3)
    shift = torch.stack([origin[:, 0], floor, origin[:, 2]], dim=-1)  # (B, 3)
    pos = joints - shift[:, None, None, :]
    forward = _forward(pos[:, 0])  # (B, 3)
    yaw = torch.atan2(forward[:, 0], forward[:, 2])  # (B,)
    return qrot(qyaw(-yaw)[:, None, None, :], pos)


def joints_to_features_torch(joints: Tensor) -> Tensor:
    """HumanML3D features from joint positions: (B, T, 22, 3) -> (B, T-1, 263).

    Same maths (and quirks, see `features.py`) as `joints_to_features`, batched.
    """
    if joints.dim() != 4 or joints.shape[2:] != (_J, 3) or joints.shape[1] < 2:
        raise ValueError(
            f"joints must have shape (B, T, {_J}, 3) with T >= 2 frames, got {tuple(joints.shape)}"
        )
    if not joints.is_floating_point():
        joints = joints.to(torch.get_default_dtype())
    b, t = joints.shape[:2]
    pos = _canonicalize(joints)  # (B, T, 22, 3)

    # Foot contacts (no gradient).
    feet = list(skeleton.LEFT_FOOT_JOINTS + skeleton.RIGHT_FOOT_JOINTS)
    disp = ((pos[:, 1:, feet] - pos[:, :-1, feet]) ** 2).sum(-1)  # (B, T-1, 4)
    contacts = (disp < skeleton.FOOT_CONTACT_THRESHOLD).to(pos.dtype).detach()

    # Root rotations from the smoothed facing, first frame identity, unwrapped yaw.
    forward = _smooth_along_time(_forward(pos))  # (B, T, 3)
    yaw = torch.atan2(forward[..., 0], forward[..., 2])  # (B, T)
    yaw = torch.cat([torch.zeros_like(yaw[:, :1]), yaw[:, 1:]], dim=1)
    step = torch.diff(yaw, dim=1)
    step = step - 2 * math.pi * torch.round(step.detach() / (2 * math.pi))
    yaw = F.pad(torch.cumsum(step, dim=1), (1, 0))  # (B, T)
    r_rot = qyaw(-yaw)  # (B, T, 4)

    r_vel = qmul(r_rot[:, 1:], qinv(r_rot[:, :-1]))  # (B, T-1, 4)
    ang_vel = torch.asin(r_vel[..., 2:3].clamp(-1.0, 1.0))  # (B, T-1, 1)
    lin_vel = qrot(r_rot[:, 1:], pos[:, 1:, 0] - pos[:, :-1, 0])[..., [0, 2]]  # (B, T-1, 2)
    root_y = pos[:, :-1, 0, 1:2]  # (B, T-1, 1)

    root_xz = torch.stack([pos[:, :, 0, 0], torch.zeros_like(pos[:, :, 0, 1]), pos[:, :, 0, 2]], -1)
    local = pos - root_xz[:, :, None, :]  # (B, T, 22, 3)
    ric = qrot(r_rot[:, :, None], local)[:, :-1, 1:].reshape(b, t - 1, 63)  # (B, T-1, 21 * 3)

    # Swing-only IK (see features._swing_rotations).
    bones = pos[:, :, 1:] - pos[:, :, _PARENTS[1:]]  # (B, T, 21, 3)
    bones = bones / bones.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    rest = torch.tensor(skeleton.REST_DIRECTIONS[1:].tolist(), dtype=pos.dtype, device=pos.device)
    swing = qbetween(rest, bones)  # (B, T, 21, 4)
    from_root = torch.tensor(_FROM_ROOT, device=pos.device)[:, None]  # (21, 1)
    parent = torch.where(from_root, r_rot[:, :, None], swing[:, :, _SWING_PARENT])  # (B, T, 21, 4)
    mat = qto_matrix(qmul(qinv(parent), swing))  # (B, T, 21, 3, 3)
    rot6d = torch.cat([mat[..., 0], mat[..., 1]], dim=-1)[:, :-1].reshape(b, t - 1, 126)

    vel = qrot(r_rot[:, :-1, None], pos[:, 1:] - pos[:, :-1]).reshape(b, t - 1, 66)  # (B, T-1, 66)

    return torch.cat([ang_vel, lin_vel, root_y, ric, rot6d, vel, contacts], dim=-1)
