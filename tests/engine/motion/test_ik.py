"""IK/FK for the 22-joint skeleton on procedural motions built independently of `ik.py`.

The test figure is posed like SMPL (joint rotations that rotate every child rigidly, hips below
the pelvis, collars above the chest, a T-pose rest), not like our per-bone rest, so the IK has
to cope with real-looking geometry: a root on a curved path while turning, knees and elbows that
bend and straighten (exactly straight for part of every cycle), hips that twist about the thigh.
"""

from __future__ import annotations

import time
from pathlib import Path

import ik_reference
import numpy as np
import pytest

from easytune_engine.motion import ik, skeleton
from easytune_engine.motion.features import features_to_joints
from easytune_engine.motion.quaternion import qfrom_axis_angle, qinv, qmul, qrot, qyaw

_X = np.array([1.0, 0.0, 0.0])
_Y = np.array([0.0, 1.0, 0.0])
_Z = np.array([0.0, 0.0, 1.0])

# SMPL-like rest offsets (m) of each joint from its parent: T-pose, hips below the pelvis.
_SMPL_OFFSETS = np.array(
    [
        [0.0, 0.0, 0.0],
        [0.07, -0.09, -0.01],
        [-0.07, -0.09, -0.01],
        [0.0, 0.11, -0.03],
        [0.04, -0.38, 0.0],
        [-0.04, -0.38, 0.0],
        [0.0, 0.13, 0.0],
        [-0.01, -0.40, -0.04],
        [0.01, -0.40, -0.04],
        [0.0, 0.05, 0.02],
        [0.03, -0.06, 0.12],
        [-0.03, -0.06, 0.12],
        [0.0, 0.21, -0.03],
        [0.08, 0.12, -0.01],
        [-0.08, 0.12, -0.01],
        [0.01, 0.09, 0.05],
        [0.12, 0.04, -0.02],
        [-0.12, 0.04, -0.02],
        [0.26, -0.01, -0.02],
        [-0.26, -0.01, -0.02],
        [0.25, 0.01, -0.01],
        [-0.25, 0.01, -0.01],
    ]
)


def _rot(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    return qfrom_axis_angle(axis, np.asarray(angle, dtype=np.float64))


def make_motion(seed: int = 0, frames: int = 120, fps: float = 20.0) -> np.ndarray:
    """A procedural clip (frames, 22, 3): walking on a curve, turning, limbs bending/straight."""
    rng = np.random.default_rng(seed)
    offsets = _SMPL_OFFSETS * rng.uniform(0.8, 1.2, (skeleton.NUM_JOINTS, 1))
    t = np.arange(frames) / fps
    phase = 2 * np.pi * rng.uniform(0.6, 1.0) * t + rng.uniform(0, 2 * np.pi)
    yaw = rng.uniform(-np.pi, np.pi) + 1.2 * t + 0.3 * np.sin(0.9 * t)  # turning left, wobbling
    heading = np.stack([np.sin(yaw), np.zeros(frames), np.cos(yaw)], -1)  # (T, 3)
    root = np.cumsum(1.1 * heading / fps, axis=0) + np.array([rng.normal(), 0.0, rng.normal()])
    root[:, 1] = 0.9 + 0.03 * np.cos(2 * phase)

    swing = 0.6 * np.sin(phase)
    bend = np.maximum(np.sin(phase + 1.0), 0.0)  # exactly 0 (straight) half of every cycle
    bend2 = np.maximum(np.sin(phase + 1.0 + np.pi), 0.0)
    local = np.tile([1.0, 0.0, 0.0, 0.0], (frames, skeleton.NUM_JOINTS, 1))
    local[:, 0] = qmul(
        qyaw(yaw), qmul(_rot(_X, 0.15 * np.sin(2 * phase)), _rot(_Z, 0.1 * np.sin(phase)))
    )
    # Hips: flex, abduct and twist about the thigh (the knee plane turns with the twist).
    local[:, 1] = qmul(
        _rot(_X, -swing), qmul(_rot(_Z, 0.2 + 0.1 * np.sin(t)), _rot(_Y, 0.5 * np.sin(0.8 * t)))
    )
    local[:, 2] = qmul(_rot(_X, swing), qmul(_rot(_Z, -0.2), _rot(_Y, -0.4 * np.cos(0.7 * t))))
    local[:, 4] = _rot(_X, 1.6 * bend)  # knees
    local[:, 5] = _rot(_X, 1.6 * bend2)
    local[:, 7] = _rot(_X, 0.3 * np.sin(phase))  # ankles
    local[:, 8] = _rot(_X, -0.3 * np.sin(phase))
    local[:, 3] = qmul(_rot(_Y, 0.3 * np.sin(phase)), _rot(_X, 0.1))
    local[:, 6] = _rot(_Z, 0.1 * np.sin(phase))
    local[:, 9] = _rot(_Y, 0.2 * np.cos(phase))
    local[:, 12] = _rot(_X, 0.2 * np.sin(2 * phase))
    local[:, 15] = _rot(_Y, 0.5 * np.sin(0.5 * t))
    local[:, 13] = _rot(_Z, 0.1 * np.sin(phase))
    local[:, 14] = _rot(_Z, -0.1 * np.sin(phase))
    # Shoulders: arms down from the T-pose, swinging, twisting about the upper arm.
    local[:, 16] = qmul(
        _rot(_Z, -1.2 + 0.2 * np.sin(t)), qmul(_rot(_Y, swing), _rot(_X, 0.6 * np.sin(0.6 * t)))
    )
    local[:, 17] = qmul(_rot(_Z, 1.2), qmul(_rot(_Y, swing), _rot(_X, -0.5 * np.cos(0.5 * t))))
    local[:, 18] = _rot(_Y, -1.8 * bend2)  # elbows bend the forearm forward, straight at times
    local[:, 19] = _rot(_Y, 1.8 * bend)

    # SMPL-style forward kinematics: a joint's rotation moves all its children rigidly.
    glob = np.empty_like(local)
    pos = np.empty((frames, skeleton.NUM_JOINTS, 3))
    glob[:, 0], pos[:, 0] = local[:, 0], root
    for j in range(1, skeleton.NUM_JOINTS):
        p = skeleton.PARENTS[j]
        pos[:, j] = pos[:, p] + qrot(glob[:, p], offsets[j])
        glob[:, j] = qmul(glob[:, p], local[:, j])
    return pos


def _angle(q: np.ndarray) -> np.ndarray:
    """Rotation angle (radians) of unit quaternions (..., 4)."""
    return 2 * np.arccos(np.clip(np.abs(q[..., 0]), 0.0, 1.0))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fk_of_ik_reproduces_joints(seed: int) -> None:
    joints = make_motion(seed, frames=196)
    rest = ik.RestSkeleton.from_joints(joints)
    pose = ik.inverse_kinematics(joints)
    assert pose.local_rotations.shape == (196, 22, 4)
    np.testing.assert_allclose(np.linalg.norm(pose.local_rotations, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(pose.root_translation, joints[:, 0])
    error = np.linalg.norm(ik.forward_kinematics(pose, rest) - joints, axis=-1)
    assert error.max() < 1e-9  # metres: exact up to float rounding


def test_rest_skeleton_uses_median_lengths_along_rest_directions() -> None:
    joints = make_motion(5, frames=40)
    rest = ik.RestSkeleton.from_joints(joints)
    lengths = np.median(skeleton.bone_lengths(joints), axis=0)
    np.testing.assert_allclose(rest.offsets, skeleton.REST_DIRECTIONS * lengths[:, None])
    np.testing.assert_allclose(rest.lengths, lengths)
    # The identity pose is the rest pose.
    identity = np.tile([1.0, 0.0, 0.0, 0.0], (1, 22, 1))
    rest_joints = ik.forward_kinematics(ik.Pose(np.zeros((1, 3)), identity), rest)[0]
    np.testing.assert_allclose(
        rest_joints[skeleton.PARENTS[1:], :] + rest.offsets[1:], rest_joints[1:]
    )
    assert rest_joints[7, 1] < rest_joints[4, 1] < rest_joints[1, 1]  # legs down
    assert rest_joints[20, 1] < rest_joints[18, 1] < rest_joints[16, 1]  # arms down
    assert rest_joints[13, 0] > 0 > rest_joints[14, 0]  # left collar on +X
    assert rest_joints[15, 2] > rest_joints[12, 2]  # head bone forward


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_local_rotations_are_sign_continuous_and_smooth(seed: int) -> None:
    joints = make_motion(seed, frames=196)
    local = ik.inverse_kinematics(joints).local_rotations
    dots = np.sum(local[1:] * local[:-1], axis=-1)  # (T-1, 22)
    assert dots.min() >= 0.0
    assert np.all(local[0, :, 0] >= 0.0)
    # The motion is smooth at 20 fps, so no bone's frame may jump (e.g. a twist flipping when a
    # limb straightens): the largest per-frame change stays well below a flip.
    step = _angle(qmul(qinv(local[:-1]), local[1:]))  # (T-1, 22)
    assert step.max() < np.radians(45)  # the knees themselves move up to ~30 degrees a frame
    # The part of each step that is not the bone changing direction (i.e. roll) stays small, even
    # across the frames where a limb is straight and its twist is interpolated.
    parents = list(skeleton.PARENTS[1:])
    bone = joints[:, 1:] - joints[:, parents]
    bone /= np.linalg.norm(bone, axis=-1, keepdims=True)
    in_parent = qrot(qinv(ik.global_rotations(local)[:, parents]), bone)  # (T, 21, 3)
    turn = np.arccos(np.clip(np.sum(in_parent[1:] * in_parent[:-1], -1), -1, 1))
    assert (step[:, 1:] - turn).max() < np.radians(20)


def test_twist_follows_the_limb_plane() -> None:
    joints = make_motion(1, frames=196)
    pose = ik.inverse_kinematics(joints)
    frames = ik.global_rotations(pose.local_rotations)
    for hip, knee, ankle, rest_normal in [
        (1, 4, 7, _X),
        (2, 5, 8, _X),
        (16, 18, 20, -_X),
        (17, 19, 21, -_X),
    ]:
        upper = joints[:, knee] - joints[:, hip]
        lower = joints[:, ankle] - joints[:, knee]
        normal = np.cross(upper, lower)
        sin_bend = np.linalg.norm(normal, axis=-1) / (
            np.linalg.norm(upper, axis=-1) * np.linalg.norm(lower, axis=-1)
        )
        bent = sin_bend > np.sin(np.radians(20))
        assert bent.sum() > 20 and (~bent).sum() > 20  # both regimes are exercised
        unit_normal = normal[bent] / np.linalg.norm(normal[bent], axis=-1, keepdims=True)
        for bone in (knee, ankle):
            # The bone's own bend axis (rest +X for legs, -X for arms) is the plane's normal.
            axis = qrot(frames[bent, bone], rest_normal)
            np.testing.assert_allclose(np.sum(axis * unit_normal, axis=-1), 1.0, atol=1e-9)
        # So the knee/elbow rotation (lower bone relative to upper) is about the local X axis only.
        lower_local = pose.local_rotations[:, ankle]
        assert np.abs(lower_local[bent][:, 2:]).max() < 1e-9
        # Below 15 degrees of bend the plane is not used (it is noise), so the hinge axis is only
        # near X there: the lower bone never twists (y = 0), its bend is < 15 degrees (|z| small).
        np.testing.assert_allclose(lower_local[:, 2], 0.0, atol=1e-12)
        assert np.abs(lower_local[:, 3]).max() <= np.sin(np.radians(15.0) / 2) + 1e-9


def test_knee_and_elbow_are_hinges() -> None:
    joints = make_motion(2, frames=100)
    local = ik.inverse_kinematics(joints).local_rotations
    for a, b, c, sign in [(1, 4, 7, 1.0), (2, 5, 8, 1.0), (16, 18, 20, -1.0), (17, 19, 21, -1.0)]:
        upper = joints[:, b] - joints[:, a]
        lower = joints[:, c] - joints[:, b]
        cos = (
            np.sum(upper * lower, -1)
            / np.linalg.norm(upper, axis=-1)
            / np.linalg.norm(lower, axis=-1)
        )
        bend = np.arccos(np.clip(cos, -1, 1))
        # The lower bone turns by exactly the bend angle relative to the upper one, ...
        np.testing.assert_allclose(_angle(local[:, c]), bend, atol=1e-7)
        # ... and where the limb is clearly bent, about the upper bone's +X (knee) or -X (elbow).
        bent = bend > np.radians(20)
        np.testing.assert_allclose(
            2 * np.arctan2(sign * local[bent, c, 1], local[bent, c, 0]), bend[bent]
        )


def test_straight_limbs_throughout_get_a_default_twist() -> None:
    joints = make_motion(3, frames=30)
    # Straighten the left leg and left arm completely in every frame.
    for a, b, c in [(1, 4, 7), (16, 18, 20)]:
        length = np.linalg.norm(joints[:, c] - joints[:, b], axis=-1, keepdims=True)
        direction = joints[:, b] - joints[:, a]
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        shift = joints[:, b] + length * direction - joints[:, c]
        descendants = [j for j in range(22) if c in _ancestors(j) or j == c]
        joints[:, descendants] += shift[:, None]
    pose = ik.inverse_kinematics(joints)
    assert np.all(np.isfinite(pose.local_rotations))
    np.testing.assert_allclose(
        pose.local_rotations[:, 7], np.tile([1.0, 0, 0, 0], (30, 1)), atol=1e-7
    )
    rest = ik.RestSkeleton.from_joints(joints)
    assert np.abs(ik.forward_kinematics(pose, rest) - joints).max() < 1e-9


def _ancestors(j: int) -> list[int]:
    out = []
    while skeleton.PARENTS[j] >= 0:
        j = skeleton.PARENTS[j]
        out.append(j)
    return out


def test_root_rotation_is_the_pelvis_frame() -> None:
    joints = make_motion(4, frames=50)
    root = ik.inverse_kinematics(joints).local_rotations[:, 0]
    across = joints[:, 1] - joints[:, 2]
    across /= np.linalg.norm(across, axis=-1, keepdims=True)
    np.testing.assert_allclose(qrot(root, _X), across, atol=1e-12)
    up = qrot(root, _Y)
    spine = joints[:, 3] - joints[:, 0]
    assert np.all(np.sum(up * spine, -1) > 0.9 * np.linalg.norm(spine, axis=-1))


def test_ik_is_fast_enough() -> None:
    joints = make_motion(0, frames=196)
    ik.inverse_kinematics(joints)  # warm up
    start = time.perf_counter()
    for _ in range(5):
        ik.inverse_kinematics(joints)
    per_clip = (time.perf_counter() - start) / 5
    assert per_clip < 0.1  # target ~20 ms; loose here so a busy CI machine does not fail it


@pytest.mark.parametrize(
    ("joints", "message"),
    [
        (np.zeros((10, 21, 3)), r"shape \(T, 22, 3\)"),
        (np.zeros((0, 22, 3)), r"T >= 1"),
        (np.zeros((22, 3)), r"shape \(T, 22, 3\)"),
        (np.full((4, 22, 3), "a"), "numeric"),
    ],
)
def test_bad_shapes_raise(joints: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ik.inverse_kinematics(joints)
    with pytest.raises(ValueError, match=message):
        ik.RestSkeleton.from_joints(joints)


def test_nan_and_degenerate_bones_raise() -> None:
    joints = make_motion(0, frames=10)
    bad = joints.copy()
    bad[3, 18, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf.*frame 3, joint left_elbow"):
        ik.inverse_kinematics(bad)
    bad = joints.copy()
    bad[5, 4] = bad[5, 1]
    with pytest.raises(
        ValueError, match="left_hip->left_knee has \\(near\\) zero length at frame 5"
    ):
        ik.inverse_kinematics(bad)


def test_rest_skeleton_and_pose_validate() -> None:
    with pytest.raises(ValueError, match="shape"):
        ik.RestSkeleton(np.zeros((21, 3)))
    with pytest.raises(ValueError, match="too short"):
        ik.RestSkeleton.from_lengths(np.zeros(22))
    offsets = skeleton.rest_offsets(np.full(22, 0.1))
    offsets[4] = [0.0, 0.0, 0.1]
    with pytest.raises(ValueError, match=r"REST_DIRECTIONS.*left_knee"):
        ik.RestSkeleton(offsets)
    with pytest.raises(ValueError, match=r"local_rotations must have shape \(T, 22, 4\)"):
        ik.Pose(np.zeros((3, 3)), np.zeros((2, 22, 4)))
    with pytest.raises(ValueError, match="NaN"):
        ik.Pose(np.full((1, 3), np.nan), np.ones((1, 22, 4)))
    rest = ik.RestSkeleton.from_lengths(np.full(22, 0.1))
    assert not rest.offsets.flags.writeable
    with pytest.raises(ValueError, match="Pose"):
        ik.forward_kinematics(np.zeros((1, 22, 4)), rest)  # type: ignore[arg-type]


def test_many_clips_in_one_pass_equal_each_alone() -> None:
    """Solving clips together keeps time-dependent steps (twist filling, sign continuity) per
    clip: each result equals the clip solved alone; a bad clip is named in the error."""
    clips = [make_motion(s, frames=n) for s, n in ((0, 196), (1, 40), (2, 1))]
    together = ik.inverse_kinematics_many(clips)
    for clip, pose in zip(clips, together, strict=True):
        alone = ik.inverse_kinematics(clip)
        np.testing.assert_array_equal(pose.local_rotations, alone.local_rotations)
        np.testing.assert_array_equal(pose.root_translation, alone.root_translation)
    bad = clips[1].copy()
    bad[7, 4] = bad[7, 1]  # left knee on the hip: the thigh has no length at frame 7
    with pytest.raises(ValueError, match="frame 7 of clip 1"):
        ik.inverse_kinematics_many([clips[0], bad])
    assert ik.inverse_kinematics_many([]) == []


# The optimised solver against a frozen copy of the original one (ik_reference.py): the same
# local rotations to 1e-9 on procedural, noisy, straight-limbed, batched and real clips.
_CORPUS = Path("/tmp/ethome/corpus/builtin-v2-8000-s0/new_joint_vecs")


def _assert_matches_reference(clips: list[np.ndarray]) -> None:
    ours = ik.inverse_kinematics_many(clips)
    theirs = ik_reference.inverse_kinematics_many(clips)
    assert len(ours) == len(theirs) == len(clips)
    for got, expected in zip(ours, theirs, strict=True):
        assert got.local_rotations.shape == expected.local_rotations.shape
        assert np.abs(got.local_rotations - expected.local_rotations).max() <= 1e-9
        np.testing.assert_array_equal(got.root_translation, expected.root_translation)
        assert np.all(got.local_rotations[0, :, 0] >= 0.0)


@pytest.mark.parametrize("seed", range(6))
def test_matches_reference_on_procedural_and_noisy_clips(seed: int) -> None:
    joints = make_motion(seed, frames=196)
    _assert_matches_reference([joints])
    noisy = joints + np.random.default_rng(seed).normal(0.0, 0.01 * (1 + seed), joints.shape)
    _assert_matches_reference([noisy])
    _assert_matches_reference([noisy.astype(np.float32).astype(np.float64)])


@pytest.mark.parametrize("seed", range(3))
def test_float32_joints_are_solved_in_float32_and_agree_with_float64(seed: int) -> None:
    # The server solves float32 joints in float32 (about twice as fast); an artist's rig must get
    # the same rotations, to float32 rounding, as from the float64 solve of the same joints.
    joints = make_motion(seed, frames=196)
    noisy = joints + np.random.default_rng(seed).normal(0.0, 0.01, joints.shape)
    single = noisy.astype(np.float32)
    got = ik.inverse_kinematics_many([single, single[:50]])
    for pose, clip in zip(got, [single, single[:50]], strict=True):
        assert pose.local_rotations.dtype == pose.root_translation.dtype == np.float32
        expected = ik.inverse_kinematics(clip.astype(np.float64))
        assert expected.local_rotations.dtype == np.float64
        assert np.abs(pose.local_rotations - expected.local_rotations).max() <= 2e-5
        np.testing.assert_array_equal(pose.root_translation, clip[:, 0])
        np.testing.assert_allclose(np.linalg.norm(pose.local_rotations, axis=-1), 1.0, atol=1e-6)
        rest = ik.RestSkeleton.from_joints(clip)
        again = ik.forward_kinematics(pose, rest)  # float64 FK of the float32 pose
        assert np.abs(again - ik.forward_kinematics(expected, rest)).max() < 1e-5  # metres


def test_matches_reference_with_straight_limbs_and_batches() -> None:
    straight = make_motion(3, frames=60)
    for a, b, c in [(1, 4, 7), (16, 18, 20), (17, 19, 21)]:  # straight in every frame
        length = np.linalg.norm(straight[:, c] - straight[:, b], axis=-1, keepdims=True)
        direction = straight[:, b] - straight[:, a]
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        shift = straight[:, b] + length * direction - straight[:, c]
        straight[:, [j for j in range(22) if c in _ancestors(j) or j == c]] += shift[:, None]
    partly = make_motion(4, frames=80)  # the right arm straight for frames 20..49 only
    length = np.linalg.norm(partly[20:50, 21] - partly[20:50, 19], axis=-1, keepdims=True)
    direction = partly[20:50, 19] - partly[20:50, 17]
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    partly[20:50, 21] = partly[20:50, 19] + length * direction
    _assert_matches_reference([straight])
    _assert_matches_reference([partly])
    # Batches of different lengths, with 1-frame clips and straight-limbed clips among them.
    batch = [make_motion(5, frames=196), straight, make_motion(6, frames=1), partly[:7]]
    _assert_matches_reference(batch)
    _assert_matches_reference([make_motion(7, frames=1)])
    _assert_matches_reference([straight[:1], partly[30:31], straight[:2]])


@pytest.mark.parametrize("seed", [8, 9, 10])
def test_matches_reference_where_a_bone_points_against_its_rest_direction(seed: int) -> None:
    """Where the swing is a half turn (qbetween's special case) both pick the same axis. (Not in
    frame 0, where the local w = 0 leaves the sign open, nor for a forearm, whose half turn is
    orthogonal to its elbow bends, so that its sign continuity is open.)"""
    joints = make_motion(seed, frames=30)
    pose = ik.inverse_kinematics(joints)
    local = pose.local_rotations.copy()
    for bone, axis in {4: _Z, 10: _X, 15: _Y}.items():  # thigh, foot, head: turned back
        local[1::3, bone] = _rot(axis, np.full(10, np.pi))
    rest = ik.RestSkeleton.from_joints(joints)
    turned = ik.forward_kinematics(ik.Pose(pose.root_translation, local), rest)
    swing = ik_reference.inverse_kinematics_many([turned])[0].local_rotations
    assert np.all(swing[1::3, [4, 15], 0] == 0.0)  # the half-turn case is exercised
    _assert_matches_reference([turned])
    _assert_matches_reference([turned[1:], joints])


@pytest.mark.skipif(not _CORPUS.is_dir(), reason="no real clips at " + str(_CORPUS))
def test_matches_reference_on_real_clips() -> None:
    files = sorted(_CORPUS.glob("*.npy"))[:40]
    clips = [features_to_joints(np.load(f)).astype(np.float64) for f in files]
    for clip in clips:
        _assert_matches_reference([clip])
    _assert_matches_reference(clips[:8])
