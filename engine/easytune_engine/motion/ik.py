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

The solver is vectorised over all frames (and clips), time on the last axis, and solves the bones
one depth of the tree at a time (their parents' frames are then known). It keeps each bone's world
frame as the images of its basis (r, b, a): the twist's rest reference r, b = a x r and the rest
direction a. The rest directions are axis-aligned, so a parent's frame applied to a child's r, b,
a is a signed pick of the parent's three, and the swing and twist reduce to a few products with
them; the local quaternions of all bones are assembled at once at the end. It matches the
original per-bone quaternion solver (tests/engine/motion/ik_reference.py) to ~1e-15.

It computes in the joints' precision: float32 joints (the server's) are solved in float32, about
twice as fast, and give float32 rotations within ~1e-6 of the float64 solve; anything else is
solved in float64.

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
from easytune_engine.motion.quaternion import qmul, qrot

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


# The solver's tables. Bone k's basis _BASIS[k] (3, 3) has rows (r, b, a): its rest direction a,
# its twist's rest reference r (any axis across a if it has no twist) and b = a x r (the root's
# is the identity). The rest directions are axis-aligned, so each basis is a signed permutation.
# The solver keeps each bone's world frame as frames[:, k] = (G_k r, G_k b, G_k a) (3, 3, T), so
# G_parent applied to a child's r, b or a is one of the parent's three or its negative.
_BASIS = np.tile(np.eye(3), (_J, 1, 1))
_FLIP_AXIS = np.zeros((2, _J, 1))  # see below: qbetween's half-turn axis (along r, along b)
for _k in range(1, _J):
    _a = _REST[_k]
    _r = np.eye(3)[np.argmin(_a * _a)] if _TWIST[_k].kind == "none" else _TWIST[_k].rest_ref
    _BASIS[_k] = _r, np.cross(_a, _r), _a
    _FLIP_AXIS[:, _k, 0] = _BASIS[_k, :2] @ np.cross(_a, np.eye(3)[np.argmin(_a * _a)])
del _k, _a, _r
_PARENT_INDEX = np.array([max(p, 0) for p in _PARENTS])
_IN_PARENT = np.einsum("kic,kjc->kij", _BASIS, _BASIS[_PARENT_INDEX])  # child basis in parent's
_TWISTED = np.array([k > 0 and _TWIST[k].kind != "none" for k in range(_J)])
_PLANE = np.array([k > 0 and _TWIST[k].kind == "plane" for k in range(_J)])
# Squared length across the bone from which a twist is measurable (zero if the bone has none).
_LIMIT2 = np.where(_PLANE, _MEASURABLE_PLANE**2, _MEASURABLE_VEC**2) * _TWISTED
# The joint-only references: per kind its bones, and (from, to) of the joint pairs whose
# directions they use: vec (a, b); mix (a, b), (c, d); plane (a, b), (b, c).
_KINDS = ("vec", "mix", "plane", "chest")
_PAIR_SLICES = [("vec", slice(0, 2)), ("mix", slice(0, 2)), ("mix", slice(2, 4))]
_PAIR_SLICES += [("plane", slice(0, 2)), ("plane", slice(1, 3))]
_KIND = {kind: [k for k in range(1, _J) if _TWIST[k].kind == kind] for kind in _KINDS}
_PAIRS = np.array(
    [_TWIST[k].joints[s] for kind, s in _PAIR_SLICES for k in _KIND[kind]]
).T  # (2, pairs)
_SPINE = _TWIST[_KIND["chest"][0]].joints[0]  # the chest's reference: this bone's forward axis
_SPINE_Z = int(np.abs(_BASIS[_SPINE, :, 2]).argmax()), float(_BASIS[_SPINE, :, 2].sum())
# The local quaternions are solved in basis coordinates (w, r, b, a): (w, x, y, z) = this @ them.
_TO_XYZ = np.zeros((_J, 4, 4))
_TO_XYZ[:, 0, 0] = 1.0
_TO_XYZ[:, 1:, 1:] = _BASIS.transpose(0, 2, 1)
# Shepperd's method: row i of 4 q q_i as indices into (4 q^2, then off-diagonal differences and
# sums); those of a (3, 3) matrix stored by columns, flat, are [0] + [2] * [1].
_SHEPPERD = np.array([[0, 4, 5, 6], [4, 1, 7, 8], [5, 7, 2, 9], [6, 8, 9, 3]])
_DIAGONAL = np.array([0, 4, 8])
_OFF_DIAGONAL = (
    np.array([5, 6, 1, 1, 6, 5]),
    np.array([7, 2, 3, 3, 2, 7]),
    np.array([[-1.0], [-1.0], [-1.0], [1.0], [1.0], [1.0]]),
)


def _depth_levels() -> list[tuple[int, int, np.ndarray, np.ndarray, list[int], bool]]:
    """Bones 1..21 grouped by their depth in the tree, root side first: the range lo..hi-1 (the
    joints are numbered breadth first); where in frames (as (3 * 22, 3, T)) their parents' G r,
    G b, G a for their r, b, a are (3 n,), and the signs (3, n, 1, 1); those of them whose twist
    reference is the chest's; whether they are all swing-only without children (then only their
    swing is needed)."""
    depth = [0] * _J
    for k in range(1, _J):
        depth[k] = depth[_PARENTS[k]] + 1
    levels = []
    for d in range(1, max(depth) + 1):
        ks = [k for k in range(1, _J) if depth[k] == d]
        assert ks == list(range(ks[0], ks[-1] + 1))
        select = np.abs(_IN_PARENT[ks]).argmax(axis=-1).T * _J + _PARENT_INDEX[ks]  # (3, n)
        sign = _IN_PARENT[ks].sum(axis=-1).T[..., None, None]
        chest = [k for k in ks if k in _KIND["chest"]]
        ends = not _TWISTED[ks].any() and not set(ks) & set(_PARENTS)
        levels.append((ks[0], ks[-1] + 1, select.ravel(), sign, chest, ends))
    return levels


_LEVELS = _depth_levels()


@dataclass(frozen=True, eq=False)
class _Tables:
    """The float tables the solver multiplies with, in one precision (a float64 table would
    promote float32 work to float64)."""

    signs: tuple[np.ndarray, ...]  # per level of _LEVELS: its sign (3, n, 1, 1)
    flip_axis: np.ndarray  # _FLIP_AXIS
    to_xyz: np.ndarray  # _TO_XYZ


_TABLES = {
    np.dtype(t): _Tables(
        tuple(level[3].astype(t) for level in _LEVELS), _FLIP_AXIS.astype(t), _TO_XYZ.astype(t)
    )
    for t in (np.float32, np.float64)
}


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
    # Both float32 if given as float32 (as IK of float32 joints gives them), else float64.

    def __post_init__(self) -> None:
        root, rot = np.asarray(self.root_translation), np.asarray(self.local_rotations)
        dtype = np.float32 if root.dtype == rot.dtype == np.float32 else np.float64
        root, rot = root.astype(dtype, copy=False), rot.astype(dtype, copy=False)
        if root.ndim != 2 or root.shape[1] != 3:
            raise ValueError(f"root_translation must have shape (T, 3), got {root.shape}")
        if rot.shape != (root.shape[0], _J, 4):
            raise ValueError(
                f"local_rotations must have shape (T, {_J}, 4) with T = {root.shape[0]} "
                f"(from root_translation), got {rot.shape}"
            )
        if not np.isfinite(root.sum() + rot.sum()):  # else all are finite; but a sum can overflow
            if not (np.isfinite(root).all() and np.isfinite(rot).all()):
                raise ValueError("pose contains NaN or inf")
        object.__setattr__(self, "root_translation", root)
        object.__setattr__(self, "local_rotations", rot)

    @property
    def num_frames(self) -> int:
        return self.root_translation.shape[0]


def _check_joints(joints: np.ndarray) -> np.ndarray:
    """Validate a clip (T, 22, 3) and return it as float32 if it is float32, else float64."""
    joints = np.asarray(joints)
    if joints.ndim != 3 or joints.shape[1:] != (_J, 3) or joints.shape[0] < 1:
        raise ValueError(f"joints must have shape (T, {_J}, 3) with T >= 1, got {joints.shape}")
    if joints.dtype.kind not in "iufc":  # np.number
        raise ValueError(f"joints must be numeric, got dtype {joints.dtype}")
    joints = joints.astype(_precision(joints.dtype), copy=False)
    if np.isfinite(joints.sum()):  # then every value is finite
        return joints
    bad = ~np.isfinite(joints).all(axis=-1)  # (T, 22)
    if bad.any():
        t, j = np.argwhere(bad)[0]
        raise ValueError(
            f"joints contain NaN or inf ({int(bad.sum())} joint positions; first at frame {t}, "
            f"joint {_NAMES[j]})"
        )
    return joints


def _precision(dtype: np.dtype) -> type:
    """The float type computed in for inputs of this dtype: float32 stays, all else is float64."""
    return np.float32 if dtype == np.float32 else np.float64


def _length(v: np.ndarray) -> np.ndarray:
    """Lengths (..., T) of vectors (..., 3, T)."""
    return np.sqrt((v * v).sum(axis=-2))


def _unit(v: np.ndarray) -> np.ndarray:
    """Vectors (..., 3, T) scaled to unit length."""
    return v * (1.0 / np.maximum(_length(v), 1e-12))[..., None, :]


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross products (..., 3, T) of vectors (..., 3, T)."""
    i, j = [1, 2, 0], [2, 0, 1]
    return a[..., i, :] * b[..., j, :] - a[..., j, :] * b[..., i, :]


def _fill_twist(
    phi: np.ndarray, measurable: np.ndarray, start: np.ndarray | int, end: np.ndarray | int
) -> np.ndarray:
    """Twist angles (n, T) with the unmeasurable frames filled in, within each clip (frame t's
    clip is frames start[t]:end[t]).

    Measurable frames keep their angle. The others take the angle interpolated in time between
    the nearest measurable frames before and after (the twist is invisible while a limb is
    straight, so its change is spread over the gap rather than jumping when the limb bends
    again), or the nearest one's at the ends of the clip; zero if no frame is measurable.
    """
    n, num_frames = phi.shape
    frames = np.arange(num_frames)
    prev = np.maximum.accumulate(np.where(measurable, frames, -1), axis=1)
    next_ = np.minimum.accumulate(np.where(measurable, frames, num_frames)[:, ::-1], axis=1)
    next_ = next_[:, ::-1]
    has_prev, has_next = prev >= start, next_ < end
    prev = np.where(has_prev, prev, np.where(has_next, next_, num_frames))  # num_frames: none
    next_ = np.where(has_next, next_, prev)
    # (n, T + 1): the extra column is the zero twist of a clip with no measurable frame
    padded = np.concatenate([phi, np.zeros((n, 1), phi.dtype)], axis=1)
    rows = np.arange(n)[:, None]
    at_prev, at_next = padded[rows, prev], padded[rows, next_]
    step = (at_next - at_prev + np.pi) % (2 * np.pi) - np.pi  # the short way round
    return at_prev + (frames - prev) / np.maximum(next_ - prev, 1) * step


def _quaternion(frame: np.ndarray) -> np.ndarray:
    """Unit quaternions (4, T) of rotation matrices given by their columns (3, 3, T), by
    Shepperd's method (each frame uses the formula with the largest denominator)."""
    m = frame.reshape(9, -1)  # m[3 j + i] = M[i, j]
    # 4 (w^2, x^2, y^2, z^2), then the rest of 4 q q_i
    entries = np.empty((m.shape[1], 10), m.dtype)
    diagonal = m[_DIAGONAL].T  # (T, 3)
    entries[:, 0] = diagonal.sum(axis=1)
    entries[:, 1:4] = 2.0 * diagonal - entries[:, :1]
    entries[:, :4] += 1.0
    entries[:, 4:] = (m[_OFF_DIAGONAL[0]] + _OFF_DIAGONAL[2] * m[_OFF_DIAGONAL[1]]).T
    rows = _SHEPPERD[np.argmax(entries[:, :4], axis=1)]  # (T, 4): 4 q q_i, i the largest
    q = entries[np.arange(m.shape[1])[:, None], rows].T
    return q / _length(q)


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
    sizes = [len(j) for j in checked]
    bounds = [0, *itertools.accumulate(sizes)]  # clip i: frames bounds[i]:bounds[i+1]
    joints = np.concatenate(checked) if len(checked) > 1 else checked[0]
    num_frames = bounds[-1]
    start, end = 0, num_frames  # each frame's clip: start[t]:end[t]
    if len(checked) > 1:
        start, end = np.repeat(bounds[:-1], sizes), np.repeat(bounds[1:], sizes)

    def where(t: int) -> str:
        i = int(np.searchsorted(bounds, t, side="right")) - 1
        return f"frame {t - bounds[i]}" + (f" of clip {i}" if len(checked) > 1 else "")

    # Arrays are (..., 3, T): the small axes first, time last. dw = (d, w): every bone's unit
    # direction d and twist reference w (zero for a bone without one).
    pos = np.ascontiguousarray(joints.transpose(1, 2, 0))  # (22, 3, T)
    dtype = joints.dtype  # float32 or float64: the whole solve runs in it
    tables = _TABLES[dtype]
    dw = np.zeros((2, _J, 3, num_frames), dtype)
    d = np.subtract(pos[1:], pos[_PARENT_INDEX[1:]], out=dw[0, 1:])  # (21, 3, T)
    lengths = _length(d)
    if (lengths < _MIN_BONE).any():
        t, k = np.argwhere(lengths.T < _MIN_BONE)[0]
        raise ValueError(
            f"bone {_NAMES[_PARENTS[k + 1]]}->{_NAMES[k + 1]} has (near) zero length at {where(t)}"
        )
    d *= (1.0 / lengths)[:, None]
    unit = _unit(pos[_PAIRS[1]] - pos[_PAIRS[0]])  # the joint-only references, all at once
    vec, mix, planes = _KIND["vec"], _KIND["mix"], _KIND["plane"]
    i, j = len(vec), len(vec) + 2 * len(mix)
    dw[1, vec] = unit[:i]
    dw[1, mix] = _unit(unit[i : i + len(mix)] + unit[i + len(mix) : j])
    dw[1, planes] = _cross(unit[j : j + len(planes)], unit[j + len(planes) :])  # |.| = sin(bend)
    d_dot_w = (dw[0] * dw[1]).sum(axis=1)  # (22, T)

    # Pelvis: x along the hips (to the body's left), y towards spine1, z = x cross y (forward).
    frames = np.empty((3, _J, 3, num_frames), dtype)  # see _IN_PARENT
    x = _unit(pos[1] - pos[2])
    y = pos[3] - pos[0]
    y -= (y * x).sum(axis=0) * x
    y_length = _length(y)
    if (y_length < _MIN_BONE).any():
        t = int(np.argmin(y_length))
        raise ValueError(f"pelvis frame undefined at {where(t)}: spine1 lies on the hip line")
    y /= y_length
    frames[:, 0] = x, y, _cross(x, y)

    flat = frames.reshape(3 * _J, 3, num_frames)
    swung = np.empty((3, _J, num_frames), dtype)  # each bone's direction o in its parent's frame
    angle = np.empty((_J, num_frames), dtype)  # its twist, after the swing
    flipped = np.zeros((_J, num_frames), dtype=bool)  # where its swing is a half turn
    # One depth of the tree at a time: the parents' frames are solved.
    for (lo, hi, select, _, chest, ends), sign in zip(_LEVELS, tables.signs, strict=True):
        if chest:
            dw[1, chest] = _SPINE_Z[1] * frames[_SPINE_Z[0], _SPINE]
            d_dot_w[chest] = (dw[0, chest] * dw[1, chest]).sum(axis=1)
        # The parent's frame applied to the bones' r, b and a; d and w against those.
        parent = flat.take(select, axis=0).reshape(3, hi - lo, 3, -1) * sign
        g_r, g_b, g_a = parent  # (n, 3, T) each
        dots = (dw[:, None, lo:hi] * parent).sum(axis=3)  # (2, 3, n, T): (d, w) . (r, b, a)
        swung[:, lo:hi] = dots[0]
        (x, y, z), (w_r, w_b, w_a) = dots  # o = (x, y, z), in the bone's basis (r, b, a)
        den = 1.0 + z
        opposite = den <= 1e-7  # o against a: see below
        if ends:
            angle[lo:hi], flipped[lo:hi] = 0.0, opposite
            continue
        if opposite.any():
            den = np.maximum(den, 1e-12)
        # The swing (the shortest arc from a to o) takes r and b to r - m x / (1 + z) and
        # b - m y / (1 + z), m = a + o: in the world, those of the swing-only frame.
        to_rb = dots[0, :2] / den  # (2, n, T)
        d = dw[0, lo:hi]
        swing = parent[:2] - (parent[2] + d) * to_rb[:, :, None]  # (2, n, 3, T): S r, S b
        # The twist: the angle of w about d from the swing-only frame's r (towards its b).
        cos, sin = dots[1, :2] - (w_a + d_dot_w[lo:hi]) * to_rb  # (n, T) each
        if opposite.any():  # a half turn about n: r to s r, b to -s b, a to -a
            n_r, n_b = tables.flip_axis[:, lo:hi]
            s, flip = n_r * n_r - n_b * n_b, opposite[:, None]
            swing[0] = np.where(flip, s[:, None] * g_r, swing[0])
            swing[1] = np.where(flip, -s[:, None] * g_b, swing[1])
            cos, sin = np.where(opposite, s * w_r, cos), np.where(opposite, -s * w_b, sin)
            d = np.where(flip, -g_a, d)
            flipped[lo:hi] = opposite
        phi = np.arctan2(sin, cos, out=angle[lo:hi])
        phi *= _TWISTED[lo:hi, None]  # exactly zero for the swing-only bones
        measurable = cos * cos + sin * sin >= _LIMIT2[lo:hi, None]
        if not measurable.all():
            phi[:] = _fill_twist(phi, measurable, start, end)
        cos, sin = np.cos(phi)[:, None], np.sin(phi)[:, None]
        np.multiply(cos, swing, out=frames[:2, lo:hi])
        frames[0, lo:hi] += sin * swing[1]
        frames[1, lo:hi] -= sin * swing[0]
        frames[2, lo:hi] = d

    # The local rotations, all bones at once: the swing (1 + z, a x o) / |.| (|.|^2 = 2 (1 + z))
    # followed by the twist (cos phi/2, sin phi/2 a), in basis coordinates (w, r, b, a).
    quat = np.empty((_J, 4, num_frames), dtype)
    (x, y, z), half = swung[:, 1:], 0.5 * angle[1:]
    den = np.maximum(1.0 + z, 1e-12)
    half_cos, half_sin = np.cos(half), np.sin(half)
    if flipped.any():  # a half turn about n, then the twist: (0, cos n + sin n x a)
        n_r, n_b = tables.flip_axis[:, 1:]
        flip = [0.0, half_cos * n_r + half_sin * n_b, half_cos * n_b - half_sin * n_r, 0.0]
    scale = 1.0 / np.sqrt(2.0 * den)
    half_cos *= scale
    half_sin *= scale
    np.multiply(half_cos, den, out=quat[1:, 0])
    np.multiply(half_sin, den, out=quat[1:, 3])
    quat[1:, 1] = half_sin * x - half_cos * y
    quat[1:, 2] = half_cos * x + half_sin * y
    if flipped.any():
        for i, value in enumerate(flip):
            quat[1:, i] = np.where(flipped[1:], value, quat[1:, i])
    quat[0] = _quaternion(frames[:, 0])

    # Each clip starts with w >= 0 and then has no sign flips.
    starts = bounds[:-1]
    flips = np.empty((_J, num_frames), dtype=bool)
    flips[:, 1:] = (quat[:, :, 1:] * quat[:, :, :-1]).sum(axis=1) < 0
    flips[:, starts] = quat[:, 0, starts] < 0
    odd = np.logical_xor.accumulate(flips, axis=1)
    if len(checked) > 1:  # count from each clip's start
        odd ^= np.repeat(odd[:, starts] ^ flips[:, starts], sizes, axis=1)
    quat *= (1.0 - 2.0 * odd)[:, None]
    local = np.empty((num_frames, _J, 4), dtype)
    np.matmul(tables.to_xyz, quat, out=local.transpose(1, 2, 0))  # (w, x, y, z)
    return [Pose(joints[a:b, 0].copy(), local[a:b]) for a, b in itertools.pairwise(bounds)]


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
