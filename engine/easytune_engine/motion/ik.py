"""Inverse kinematics for the 22-joint skeleton: joint positions -> per-bone rotations, and back.

The model is per bone, as in HumanML3D's `Skeleton` (and as in a Blender armature): the bone
that ends at joint k (k = 1..21) has its own frame G_k, and

    G_0 = local[0]                      the pelvis frame in the world (root orientation)
    G_k = G_parent(k) * local[k]        local[k] is bone k relative to its parent bone
    p_k = p_parent(k) + G_k * offset_k  offset_k = length_k * REST_DIRECTIONS[k]

so every bone's direction is set by its own rotation and FK(IK(joints)) reproduces the joints
exactly whenever the bone lengths match the rest skeleton (it does not need the pelvis or chest to
be rigid). The rest pose is exactly `skeleton.REST_DIRECTIONS`: legs and arms point down (-Y),
hips and collars along +-X, spine and neck up (+Y), head and feet forward (+Z).

Each local rotation is swing * twist: the swing is the shortest arc taking the bone's rest
direction to its observed direction in the parent bone's frame; the twist (roll about the bone's
rest axis) comes from neighbouring joints, so the whole frame of every bone is determined:

    pelvis           x = l_hip - r_hip, y = spine1 - pelvis (yaw, pitch and roll of the body)
    hips             roll from the pelvis' up (spine1 - pelvis)
    spine1/2/3, neck roll from the hip line, the hip/collar mix, then the collar line
    collars          roll from the neck (neck - spine3)
    head             roll from the collar line (rest: head bone forward, +X to the left)
    collar->shoulder roll from the chest's forward axis
    thigh            the hip-knee-ankle plane: the knee bends about the thigh's local +X
    upper arm        the shoulder-elbow-wrist plane: the elbow bends about the upper arm's local -X
    shin, forearm    swing only: the knee and elbow are hinges about that axis
    feet             swing only (the foot's roll is not observable from ankle and toe)

A limb plane is undefined when the limb is straight, and noisy when it is nearly so. The plane
is used only where the limb is bent at least 15 degrees; elsewhere the twist (relative to the
swing-only frame) is interpolated in time between the nearest frames where it was measured
(held before the first and after the last of them; zero twist if the limb never bends), so the
twist does not jump when the limb bends again, and a bent knee or elbow is an exact hinge.
The local rotations are made sign-continuous over time.

Usage:
    rest = RestSkeleton.from_joints(joints)  # joints: (T, 22, 3) metres, Y up; median bone lengths
    pose = inverse_kinematics(joints)        # pose.local_rotations: (T, 22, 4) (w, x, y, z)
    again = forward_kinematics(pose, rest)   # (T, 22, 3)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from easytune_engine.motion import skeleton
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


@dataclass(frozen=True, eq=False)
class RestSkeleton:
    """The rest pose: offsets[k] is joint k relative to its parent, metres (offsets[0] = 0).

    Every offset is a positive multiple of `skeleton.REST_DIRECTIONS[k]`.
    """

    offsets: np.ndarray  # (22, 3)

    def __post_init__(self) -> None:
        offsets = np.array(self.offsets, dtype=np.float64)  # a private, read-only copy
        if offsets.shape != (_J, 3):
            raise ValueError(f"offsets must have shape ({_J}, 3), got {offsets.shape}")
        if not np.all(np.isfinite(offsets)):
            raise ValueError("offsets contain NaN or inf")
        lengths = np.linalg.norm(offsets, axis=-1)
        if lengths[0] != 0.0:
            raise ValueError(f"offsets[0] (the root) must be zero, got {offsets[0]}")
        short = [_NAMES[k] for k in range(1, _J) if lengths[k] < _MIN_BONE]
        if short:
            raise ValueError(f"bones must be longer than {_MIN_BONE} m; too short: {short}")
        along = np.abs(offsets - _REST * lengths[:, None]).max(axis=-1) > 1e-9 * (1 + lengths)
        if np.any(along):
            bad = [_NAMES[k] for k in np.flatnonzero(along)]
            raise ValueError(
                f"offsets must point along skeleton.REST_DIRECTIONS; they do not for {bad}"
            )
        offsets.setflags(write=False)
        object.__setattr__(self, "offsets", offsets)

    @property
    def lengths(self) -> np.ndarray:
        """Bone lengths (22,), metres; lengths[0] = 0."""
        return np.linalg.norm(self.offsets, axis=-1)

    @classmethod
    def from_lengths(cls, lengths: np.ndarray) -> RestSkeleton:
        """Rest skeleton from per-bone lengths (22,) (lengths[0] is ignored)."""
        lengths = np.array(lengths, dtype=np.float64)
        if lengths.shape != (_J,):
            raise ValueError(f"lengths must have shape ({_J},), got {lengths.shape}")
        lengths[0] = 0.0
        return cls(skeleton.rest_offsets(lengths))

    @classmethod
    def from_joints(cls, joints: np.ndarray) -> RestSkeleton:
        """Rest skeleton whose bone lengths are the median over the frames of a clip (T, 22, 3)."""
        joints = _check_joints(joints)
        return cls.from_lengths(np.median(skeleton.bone_lengths(joints), axis=0))


@dataclass(frozen=True, eq=False)
class Pose:
    """A clip as root translation plus per-bone local rotations."""

    root_translation: np.ndarray  # (T, 3) world position of the pelvis joint, metres
    local_rotations: np.ndarray  # (T, 22, 4) unit (w, x, y, z); [:, 0] is the pelvis in the world

    def __post_init__(self) -> None:
        root = np.asarray(self.root_translation, dtype=np.float64)
        rot = np.asarray(self.local_rotations, dtype=np.float64)
        if root.ndim != 2 or root.shape[1] != 3:
            raise ValueError(f"root_translation must have shape (T, 3), got {root.shape}")
        if rot.shape != (root.shape[0], _J, 4):
            raise ValueError(
                f"local_rotations must have shape (T, {_J}, 4) with T = {root.shape[0]} "
                f"(from root_translation), got {rot.shape}"
            )
        if not (np.all(np.isfinite(root)) and np.all(np.isfinite(rot))):
            raise ValueError("pose contains NaN or inf")
        object.__setattr__(self, "root_translation", root)
        object.__setattr__(self, "local_rotations", rot)

    @property
    def num_frames(self) -> int:
        return self.root_translation.shape[0]


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


def inverse_kinematics(joints: np.ndarray) -> Pose:
    """Per-bone local rotations and root translation of a clip (T, 22, 3) (metres, Y up).

    No rest skeleton is needed: rotations depend only on bone directions, and every rest skeleton
    shares `skeleton.REST_DIRECTIONS`. Bone lengths matter only to `forward_kinematics`.
    """
    return inverse_kinematics_many([joints])[0]


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


def global_rotations(local_rotations: np.ndarray) -> np.ndarray:
    """World frame of every bone (T, 22, 4) from local rotations (T, 22, 4)."""
    local_rotations = np.asarray(local_rotations, dtype=np.float64)
    if local_rotations.ndim != 3 or local_rotations.shape[1:] != (_J, 4):
        raise ValueError(
            f"local_rotations must have shape (T, {_J}, 4), got {local_rotations.shape}"
        )
    frames = np.empty_like(local_rotations)
    frames[:, 0] = local_rotations[:, 0]
    for k in range(1, _J):
        frames[:, k] = qmul(frames[:, _PARENTS[k]], local_rotations[:, k])
    return frames


def forward_kinematics(pose: Pose, rest: RestSkeleton) -> np.ndarray:
    """Joint positions (T, 22, 3) of a pose on a rest skeleton."""
    if not isinstance(pose, Pose):
        raise ValueError(f"pose must be a Pose, got {type(pose).__name__}")
    if not isinstance(rest, RestSkeleton):
        raise ValueError(f"rest must be a RestSkeleton, got {type(rest).__name__}")
    frames = global_rotations(pose.local_rotations)
    positions = np.empty((pose.num_frames, _J, 3))
    positions[:, 0] = pose.root_translation
    for k in range(1, _J):
        positions[:, k] = positions[:, _PARENTS[k]] + qrot(frames[:, k], rest.offsets[k])
    return positions
