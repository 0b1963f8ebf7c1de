"""BVH export of a clip of joint positions (T, 22, 3), through the per-bone IK in `ik.py`.

Units: centimetres by default (`unit="m"` for metres), Y up, +Z forward, as the joints.
Rest pose: `ik.RestSkeleton.from_joints(joints)`, i.e. median bone lengths along
`skeleton.REST_DIRECTIONS` (legs and arms down, hips and collars along +-X, spine up, head and
feet forward). The identity pose of the BVH is that rest pose.

Hierarchy. BVH rotates a joint's children, so each BVH joint carries the IK rotation of the bone
that leaves it (the joint named `left_knee` carries the shin). Pelvis and spine3 have several
children whose bones move independently in the per-bone IK; each of those children therefore
hangs below a zero-offset helper joint named `<parent>_to_<child>` (e.g. `pelvis_to_left_hip`,
`spine3_to_neck`) that carries its bone's rotation. So 28 joints in all:

    pelvis (ROOT)              rotation = the pelvis frame (IK local_rotations[:, 0])
    <parent>_to_<child>        offset 0, rotation = IK local rotation of bone <child>
    joint j with one child c   offset = rest offset of j, rotation = IK local rotation of bone c
    spine3, leaves             rotation = identity (leaves end in an End Site along the bone)

and the 22 named joints land exactly on the input positions (up to the bone lengths: each
frame's bones are drawn at the rest skeleton's median length).

Channels: the root has `Xposition Yposition Zposition Zrotation Xrotation Yrotation` (absolute
world position of the pelvis; the root OFFSET is 0), every other joint
`Zrotation Yrotation Xrotation`: a joint's local rotation matrix is Rz @ Ry @ Rx (channel order,
left to right). The innermost X carries knees, elbows and the head's 90-degree pitch, away from
gimbal lock; the root keeps its yaw (Y) innermost for the same reason. Angles are degrees,
continuous over time (of the two Euler solutions and their 360-degree turns, each frame takes
the one nearest the previous frame).

Usage:
    write_bvh("clip.bvh", joints, fps=20.0)
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from easytune_engine.motion import ik, skeleton
from easytune_engine.motion.quaternion import qto_matrix

from ..fileio import atomic_write_bytes

ROOT_ROTATION_ORDER = "ZXY"
JOINT_ROTATION_ORDER = "ZYX"
UNIT_SCALES: dict[str, float] = {"cm": 100.0, "m": 1.0}
END_SITE_FRACTION = 0.5  # an End Site continues its bone by this fraction of the bone's length


@dataclass(frozen=True)
class BvhJoint:
    """One joint of the exported hierarchy."""

    name: str
    parent: int  # index into the layout, -1 for the root
    offset: np.ndarray  # (3,) metres, in the parent's frame
    bone: int | None  # IK local rotation it carries (index into local_rotations), None = identity
    end_site: np.ndarray | None  # (3,) metres, for leaves


def bvh_layout(rest: ik.RestSkeleton) -> list[BvhJoint]:
    """The exported hierarchy in file (depth-first) order; see the module docstring."""
    layout: list[BvhJoint] = []
    names = skeleton.JOINT_NAMES

    def add(joint: int, parent: int) -> None:
        kids = skeleton.children(joint)
        offset = np.zeros(3) if joint == 0 else rest.offsets[joint]
        if joint == 0:
            bone = 0
        elif len(kids) == 1:
            bone = kids[0]
        else:
            bone = None
        end_site = None
        if not kids:
            end_site = END_SITE_FRACTION * rest.offsets[joint]
        layout.append(BvhJoint(names[joint], parent, offset, bone, end_site))
        here = len(layout) - 1
        if len(kids) == 1:
            add(kids[0], here)
            return
        for kid in kids:
            layout.append(BvhJoint(f"{names[joint]}_to_{names[kid]}", here, np.zeros(3), kid, None))
            add(kid, len(layout) - 1)

    add(0, -1)
    return layout


def _rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about basis axis 0/1/2 by angle (...) radians."""
    c, s = np.cos(angle), np.sin(angle)
    m = np.zeros((*np.shape(angle), 3, 3))
    i1, i2 = (axis + 1) % 3, (axis + 2) % 3
    m[..., axis, axis] = 1.0
    m[..., i1, i1] = c
    m[..., i2, i2] = c
    m[..., i2, i1] = s
    m[..., i1, i2] = -s
    return m


def euler_from_matrix(m: np.ndarray, order: str) -> np.ndarray:
    """Angles (..., 3) radians with m = R_order[0](a) @ R_order[1](b) @ R_order[2](c).

    order: three distinct axes, e.g. "ZYX". The middle angle is in [-pi/2, pi/2].
    """
    if len(order) != 3 or sorted(order) != ["X", "Y", "Z"]:
        raise ValueError(f"order must be a permutation of 'XYZ', got {order!r}")
    i, j, k = ("XYZ".index(a) for a in order)
    sign = 1.0 if (j - i) % 3 == 1 else -1.0  # +1 for cyclic orders (XYZ, YZX, ZXY)
    b = np.arcsin(np.clip(sign * m[..., i, k], -1.0, 1.0))
    a = np.arctan2(-sign * m[..., j, k], m[..., k, k])
    c = np.arctan2(-sign * m[..., i, j], m[..., i, i])
    # Gimbal lock (|b| = 90 degrees): only a + c or a - c is defined; take c = 0 and solve for a.
    locked = np.abs(np.cos(b)) < 1e-9
    if np.any(locked):
        rest = m[locked] @ np.swapaxes(_rotation(j, b[locked]), -1, -2)  # = R_i(a)
        i1, i2 = (i + 1) % 3, (i + 2) % 3
        a[locked] = np.arctan2(rest[:, i2, i1], rest[:, i1, i1])
        c[locked] = 0.0
    return np.stack([a, b, c], axis=-1)


def matrix_from_euler(angles: np.ndarray, order: str) -> np.ndarray:
    """Inverse of `euler_from_matrix`: (..., 3) radians -> (..., 3, 3)."""
    axes = ["XYZ".index(a) for a in order]
    m = _rotation(axes[0], angles[..., 0])
    m = m @ _rotation(axes[1], angles[..., 1])
    return m @ _rotation(axes[2], angles[..., 2])


def continuous_euler(m: np.ndarray, order: str) -> np.ndarray:
    """Euler angles (T, ..., 3) radians of rotation matrices (T, ..., 3, 3), continuous over T.

    Every rotation has two solutions, (a, b, c) and (a + pi, pi - b, c + pi), each up to turns
    of 2 pi; frame t takes the one nearest frame t - 1 (frame 0 takes |b| <= pi / 2).
    """
    first = euler_from_matrix(m, order)  # (T, ..., 3)
    second = first * np.array([1.0, -1.0, 1.0]) + np.array([np.pi, np.pi, np.pi])
    out = np.empty_like(first)
    out[0] = first[0]
    two_pi = 2 * np.pi
    for t in range(1, len(first)):
        prev = out[t - 1]
        best = None
        best_cost = None
        for candidate in (first[t], second[t]):
            candidate = candidate - two_pi * np.round((candidate - prev) / two_pi)
            cost = np.sum((candidate - prev) ** 2, axis=-1)
            if best is None:
                best, best_cost = candidate, cost
            else:
                take = cost < best_cost
                best = np.where(take[..., None], candidate, best)
                best_cost = np.where(take, cost, best_cost)
        out[t] = best
    return out


def bvh_text(joints: np.ndarray, fps: float = 20.0, unit: str = "cm") -> str:
    """The BVH file for a clip (T, 22, 3) of joint positions in metres, as a string."""
    if unit not in UNIT_SCALES:
        raise ValueError(f"unit must be one of {sorted(UNIT_SCALES)}, got {unit!r}")
    if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    scale = UNIT_SCALES[unit]
    rest = ik.RestSkeleton.from_joints(joints)  # validates joints
    pose = ik.inverse_kinematics(joints)
    layout = bvh_layout(rest)
    num_frames = pose.num_frames

    # HIERARCHY, depth first; the layout is already in that order.
    lines = ["HIERARCHY"]
    depth = {-1: -1}
    closing: list[int] = []  # depths still open

    def fmt(v: np.ndarray) -> str:
        return " ".join(f"{x * scale:.6f}" for x in v)

    for index, joint in enumerate(layout):
        depth[index] = depth[joint.parent] + 1
        while closing and closing[-1] >= depth[index]:
            lines.append("  " * closing.pop() + "}")
        pad = "  " * depth[index]
        lines.append(f"{pad}{'ROOT' if joint.parent < 0 else 'JOINT'} {joint.name}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {fmt(joint.offset)}")
        if joint.parent < 0:
            channels = "6 Xposition Yposition Zposition " + _channels(ROOT_ROTATION_ORDER)
        else:
            channels = "3 " + _channels(JOINT_ROTATION_ORDER)
        lines.append(f"{pad}  CHANNELS {channels}")
        if joint.end_site is not None:
            lines += [f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {fmt(joint.end_site)}"]
            lines.append(f"{pad}  }}")
        closing.append(depth[index])
    while closing:
        lines.append("  " * closing.pop() + "}")

    # MOTION: root position, then three angles per joint in layout order.
    identity = np.tile([1.0, 0.0, 0.0, 0.0], (num_frames, 1))
    quats = np.stack(
        [identity if j.bone is None else pose.local_rotations[:, j.bone] for j in layout], axis=1
    )  # (T, J, 4)
    matrices = qto_matrix(quats)  # (T, J, 3, 3)
    angles = np.empty((num_frames, len(layout), 3))
    angles[:, :1] = continuous_euler(matrices[:, :1], ROOT_ROTATION_ORDER)
    angles[:, 1:] = continuous_euler(matrices[:, 1:], JOINT_ROTATION_ORDER)
    values = np.concatenate(
        [pose.root_translation * scale, np.degrees(angles).reshape(num_frames, -1)], axis=1
    )  # (T, 3 + 3 J)
    values[np.abs(values) < 5e-7] = 0.0  # no "-0.000000"
    lines += ["MOTION", f"Frames: {num_frames}", f"Frame Time: {1.0 / fps:.8f}"]
    body = io.StringIO()
    np.savetxt(body, values, fmt="%.6f")
    return "\n".join(lines) + "\n" + body.getvalue()


def _channels(order: str) -> str:
    return " ".join(f"{axis}rotation" for axis in order)


def write_bvh(
    path: str | os.PathLike[str], joints: np.ndarray, fps: float = 20.0, unit: str = "cm"
) -> None:
    """Write a clip (T, 22, 3) of joint positions (metres, Y up) as a BVH file, atomically."""
    atomic_write_bytes(Path(path), bvh_text(joints, fps, unit).encode("ascii"))
