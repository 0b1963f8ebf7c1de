"""A frozen copy of the original (pre-optimisation) `ik.inverse_kinematics_many`.

The reference for `test_ik.py`'s equivalence tests and for `benchmarks/ik_speed.py`'s "before"
timings: the optimised solver in `easytune_engine.motion.ik` must give the same local rotations
(to 1e-9) on every clip. Do not optimise this file.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from easytune_engine.motion import skeleton
from easytune_engine.motion.ik import Pose
from easytune_engine.motion.quaternion import (
    qbetween,
    qcontinuity,
    qfrom_axis_angle,
    qfrom_matrix,
    qinv,
    qmul,
    qrot,
)

_J = skeleton.NUM_JOINTS  # 22
_PARENTS = skeleton.PARENTS
_NAMES = skeleton.JOINT_NAMES
_REST = skeleton.REST_DIRECTIONS  # (22, 3) unit, row 0 is zero

# A twist reference is measurable where its component across the bone is at least this long
# (for a limb plane: where the limb is bent at least 15 degrees; |normal| = sin(bend)).
_MEASURABLE_PLANE = np.sin(np.radians(15.0))
_MEASURABLE_VEC = np.sin(np.radians(10.0))  # unit references less than 10 degrees off the bone
_MIN_BONE = 1e-6  # metres; shorter bones have no direction

_X = (1.0, 0.0, 0.0)
_Y = (0.0, 1.0, 0.0)
_Z = (0.0, 0.0, 1.0)
_NEG_X = (-1.0, 0.0, 0.0)


@dataclass(frozen=True)
class _Twist:
    """How the roll of one bone is measured: a world reference vector and its rest counterpart."""

    kind: str  # "vec": joints[b] - joints[a]; "mix": sum of two unit vecs; "plane"; "chest"; "none"
    joints: tuple[int, ...]
    rest_ref: tuple[float, float, float] = (0.0, 0.0, 0.0)  # perpendicular to the rest direction


_SWING_ONLY = _Twist("none", ())
# Bone k (ending at joint k) -> its twist reference. See the module docstring.
_TWIST: dict[int, _Twist] = {
    1: _Twist("vec", (0, 3), _Y),
    2: _Twist("vec", (0, 3), _Y),
    3: _Twist("vec", (2, 1), _X),
    4: _Twist("plane", (1, 4, 7), _X),
    5: _Twist("plane", (2, 5, 8), _X),
    6: _Twist("mix", (2, 1, 14, 13), _X),
    7: _SWING_ONLY,
    8: _SWING_ONLY,
    9: _Twist("vec", (14, 13), _X),
    10: _SWING_ONLY,
    11: _SWING_ONLY,
    12: _Twist("vec", (14, 13), _X),
    13: _Twist("vec", (9, 12), _Y),
    14: _Twist("vec", (9, 12), _Y),
    15: _Twist("vec", (14, 13), _X),
    16: _Twist("chest", (9,), _Z),
    17: _Twist("chest", (9,), _Z),
    18: _Twist("plane", (16, 18, 20), _NEG_X),
    19: _Twist("plane", (17, 19, 21), _NEG_X),
    20: _SWING_ONLY,
    21: _SWING_ONLY,
}


def _depth_levels() -> tuple[np.ndarray, ...]:
    """Bones 1..21 grouped by their depth in the tree, root side first."""
    depth = [0] * _J
    for k in range(1, _J):
        depth[k] = depth[_PARENTS[k]] + 1
    return tuple(
        np.array([k for k in range(1, _J) if depth[k] == d]) for d in range(1, max(depth) + 1)
    )


_LEVELS = _depth_levels()
_PARENT_INDEX = np.array([max(p, 0) for p in _PARENTS])
_REST_REF = np.array([_TWIST[k].rest_ref if k in _TWIST else (0.0, 0.0, 0.0) for k in range(_J)])
_LIMIT = np.array(
    [
        _MEASURABLE_PLANE if k in _TWIST and _TWIST[k].kind == "plane" else _MEASURABLE_VEC
        for k in range(_J)
    ]
)


def _check_joints(joints: np.ndarray) -> np.ndarray:
    """Validate a clip (T, 22, 3) and return it as float64."""
    joints = np.asarray(joints)
    if joints.ndim != 3 or joints.shape[1:] != (_J, 3) or joints.shape[0] < 1:
        raise ValueError(f"joints must have shape (T, {_J}, 3) with T >= 1, got {joints.shape}")
    if not np.issubdtype(joints.dtype, np.number):
        raise ValueError(f"joints must be numeric, got dtype {joints.dtype}")
    joints = joints.astype(np.float64, copy=False)
    bad = ~np.isfinite(joints).all(axis=-1)  # (T, 22)
    if bad.any():
        t, j = np.argwhere(bad)[0]
        raise ValueError(
            f"joints contain NaN or inf ({int(bad.sum())} joint positions; first at frame {t}, "
            f"joint {_NAMES[j]})"
        )
    return joints


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=-1)


def _fill_twist(phi: np.ndarray, measurable: np.ndarray) -> np.ndarray:
    """Twist angles (T,) with the unmeasurable frames filled in.

    Measurable frames keep their angle. The others take the angle interpolated in time between
    the nearest measurable frames before and after (the twist is invisible while a limb is
    straight, so its change is spread over the gap rather than jumping when the limb bends
    again), or the nearest one's at the ends of the clip; zero if no frame is measurable.
    """
    if measurable.all():
        return phi
    if not measurable.any():
        return np.zeros_like(phi)  # zero twist relative to the swing-only frame
    frames = np.arange(len(phi))
    prev = np.maximum.accumulate(np.where(measurable, frames, -1))
    next_ = np.minimum.accumulate(np.where(measurable, frames, len(phi))[::-1])[::-1]
    prev = np.where(prev < 0, next_, prev)
    next_ = np.where(next_ >= len(phi), prev, next_)
    step = (phi[next_] - phi[prev] + np.pi) % (2 * np.pi) - np.pi  # the short way round
    return phi[prev] + (frames - prev) / np.maximum(next_ - prev, 1) * step


def _reference(joints: np.ndarray, twist: _Twist, frames: np.ndarray) -> np.ndarray:
    """World reference vector (T, 3) of a bone's twist; plane normals have length sin(bend)."""
    if twist.kind == "vec":
        a, b = twist.joints
        return _unit(joints[:, b] - joints[:, a])
    if twist.kind == "mix":
        a, b, c, d = twist.joints
        return _unit(_unit(joints[:, b] - joints[:, a]) + _unit(joints[:, d] - joints[:, c]))
    if twist.kind == "plane":
        a, b, c = twist.joints
        return np.cross(_unit(joints[:, b] - joints[:, a]), _unit(joints[:, c] - joints[:, b]))
    if twist.kind == "chest":
        return qrot(frames[:, twist.joints[0]], np.array(_Z))
    raise AssertionError(twist.kind)


def inverse_kinematics_many(clips: Sequence[np.ndarray]) -> list[Pose]:
    """`inverse_kinematics` of several clips in one pass (each (T_i, 22, 3)).

    Frames are independent except where time matters (filling unmeasurable twists, the sign
    continuity of quaternions), which is done per clip; solving the clips' frames together costs
    about what one clip costs, since the work per bone is a few small array operations.
    """
    if len(clips) == 0:
        return []
    checked = [_check_joints(j) for j in clips]
    bounds = np.cumsum([0] + [len(j) for j in checked])  # clip i: frames bounds[i]:bounds[i+1]
    joints = np.concatenate(checked) if len(checked) > 1 else checked[0]
    num_frames = joints.shape[0]

    def where(t: int) -> str:
        i = int(np.searchsorted(bounds, t, side="right")) - 1
        return f"frame {t - bounds[i]}" + (f" of clip {i}" if len(checked) > 1 else "")

    bones = joints[:, 1:] - joints[:, list(_PARENTS[1:])]  # (T, 21, 3)
    lengths = np.linalg.norm(bones, axis=-1)
    if np.any(lengths < _MIN_BONE):
        t, k = np.argwhere(lengths < _MIN_BONE)[0]
        raise ValueError(
            f"bone {_NAMES[_PARENTS[k + 1]]}->{_NAMES[k + 1]} has (near) zero length at {where(t)}"
        )
    direction = bones / lengths[..., None]  # (T, 21, 3)

    frames = np.empty((num_frames, _J, 4))  # G_k, world frame of each bone
    local = np.empty((num_frames, _J, 4))

    # Pelvis: x along the hips (to the body's left), y towards spine1, z = x cross y (forward).
    x = _unit(joints[:, 1] - joints[:, 2])
    y = joints[:, 3] - joints[:, 0]
    y = y - _dot(y, x)[:, None] * x
    if np.any(np.linalg.norm(y, axis=-1) < _MIN_BONE):
        t = int(np.argmin(np.linalg.norm(y, axis=-1)))
        raise ValueError(f"pelvis frame undefined at {where(t)}: spine1 lies on the hip line")
    y = _unit(y)
    frames[:, 0] = local[:, 0] = qfrom_matrix(np.stack([x, y, np.cross(x, y)], axis=-1))

    for level in _LEVELS:  # the bones of one depth of the tree at once: their parents are solved
        parents = _PARENT_INDEX[level]
        parent_inv = qinv(frames[:, parents])  # (T, n, 4)
        axis = _REST[level]  # (n, 3)
        # Swing: shortest arc from the rest direction to the observed one, in the parent's frame.
        observed = qrot(parent_inv, direction[:, level - 1])  # (T, n, 3)
        swing = qbetween(np.broadcast_to(axis, observed.shape), observed)
        angle = np.zeros((num_frames, len(level)))
        twisted = [i for i, k in enumerate(level) if _TWIST[k].kind != "none"]
        if twisted:
            ks = level[twisted]
            # The references in the swung bones' rest coordinates, projected across the bone axes.
            world = np.stack([_reference(joints, _TWIST[k], frames) for k in ks], axis=1)
            ref = qrot(qinv(swing[:, twisted]), qrot(parent_inv[:, twisted], world))  # (T, m, 3)
            rest_ref = _REST_REF[ks]  # (m, 3)
            cos = _dot(ref, rest_ref)
            sin = _dot(np.cross(rest_ref, ref), axis[twisted])
            phi, measurable = np.arctan2(sin, cos), np.hypot(cos, sin) >= _LIMIT[ks]
            for j, i in enumerate(twisted):
                angle[:, i] = np.concatenate(
                    [
                        _fill_twist(phi[a:b, j], measurable[a:b, j])
                        for a, b in itertools.pairwise(bounds)
                    ]
                )
        local[:, level] = qmul(swing, qfrom_axis_angle(axis, angle))
        frames[:, level] = qmul(frames[:, parents], local[:, level])

    poses = []
    for a, b in itertools.pairwise(bounds):
        clip = local[a:b]
        clip = np.where(clip[:1, :, :1] < 0, -clip, clip)  # start with w >= 0, then no sign flips
        poses.append(Pose(joints[a:b, 0].copy(), qcontinuity(clip, axis=0)))
    return poses
