"""HumanML3D 263-d features: round trips, known values, contacts, torch parity, gradients."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from easytune_engine.motion import skeleton
from easytune_engine.motion.features import (
    FEATURE_DIM,
    canonicalize_joints,
    features_to_joints,
    gaussian_kernel,
    joints_to_features,
    smooth_along_time,
)
from easytune_engine.motion.features_torch import features_to_joints_torch, joints_to_features_torch
from easytune_engine.motion.quaternion import qbetween, qinv, qmul, qrot, qto_matrix

Walk = Callable[..., np.ndarray]


def _put_on_floor_at_origin_facing_z(joints: np.ndarray) -> np.ndarray:
    """The canonicalisation, written out independently of the code under test."""
    pos = joints.astype(np.float64).copy()
    pos[..., 1] -= pos[..., 1].min()
    pos[..., [0, 2]] -= pos[0, 0, [0, 2]]
    across = (pos[0, 2] - pos[0, 1]) + (pos[0, 17] - pos[0, 16])
    forward = np.cross([0.0, 1.0, 0.0], across)
    yaw = np.arctan2(forward[0], forward[2])
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])  # about Y by -yaw
    return pos @ rot.T


@pytest.mark.parametrize(
    ("seed", "frames", "turns"),
    [(0, 120, 0.0), (1, 160, 3.0), (2, 196, -4.5), (3, 40, 0.7), (4, 90, -1.2)],
)
def test_round_trip_reproduces_the_canonical_motion(
    walk: Walk, seed: int, frames: int, turns: float
) -> None:
    joints = walk(seed, frames=frames, turns=turns)
    feats = joints_to_features(joints)
    assert feats.shape == (frames - 1, FEATURE_DIM)
    expected = _put_on_floor_at_origin_facing_z(joints)[:-1]
    assert np.abs(features_to_joints(feats) - expected).max() < 1e-4
    canonical = _put_on_floor_at_origin_facing_z(joints)
    np.testing.assert_allclose(canonicalize_joints(joints), canonical, atol=1e-10)


def test_round_trip_in_float32(walk: Walk) -> None:
    joints = walk(5, frames=196, turns=2.0).astype(np.float32)
    feats = joints_to_features(joints)
    assert feats.dtype == np.float32
    err = np.abs(features_to_joints(feats) - _put_on_floor_at_origin_facing_z(joints)[:-1]).max()
    assert err < 1e-4


def test_canonical_motion_is_on_the_floor_at_the_origin_facing_z(walk: Walk) -> None:
    canon = canonicalize_joints(walk(6, frames=50, turns=0.3))
    assert canon[..., 1].min() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(canon[0, 0, [0, 2]], 0.0, atol=1e-12)
    across = (canon[0, 2] - canon[0, 1]) + (canon[0, 17] - canon[0, 16])
    forward = np.cross([0.0, 1.0, 0.0], across)
    np.testing.assert_allclose(forward / np.linalg.norm(forward), [0.0, 0.0, 1.0], atol=1e-12)


def test_walking_straight_ahead_has_forward_velocity_and_no_turning(walk: Walk) -> None:
    # Walks along +X in the world; canonicalisation turns that into +Z.
    joints = walk(7, frames=80, start_yaw=np.pi / 2, speed=1.2, drift=0.0, torso=0.0)
    feats = joints_to_features(joints)
    np.testing.assert_allclose(feats[:, 0], 0.0, atol=1e-9)  # no angular velocity
    np.testing.assert_allclose(feats[:, 1], 0.0, atol=1e-9)  # no sideways velocity
    np.testing.assert_allclose(feats[:, 2], 1.2 / 20, atol=1e-9)  # 1.2 m/s at 20 fps, forward


@pytest.mark.parametrize("turns", [2.0, -2.0])
def test_constant_turn_gives_constant_angular_velocity_of_the_right_sign(
    walk: Walk, turns: float
) -> None:
    frames = 200
    joints = walk(8, frames=frames, turns=turns, drift=0.0, torso=0.0)
    feats = joints_to_features(joints)
    yaw_rate = 2 * np.pi * turns / (frames - 1)  # rad/frame; > 0 turns left (+Z towards +X)
    # The stored value is the root rotation's (world -> body) half increment: -yaw_rate / 2.
    # Frames whose smoothing window (radius 80) lies inside the clip see the exact rate.
    np.testing.assert_allclose(feats[81:118, 0], -yaw_rate / 2, atol=1e-9)
    # Near the ends the smoothing slows the turn down but never reverses it, even where the
    # facing passes through -Z (where HumanML3D's own code flips the sign).
    assert np.all(np.sign(feats[:, 0]) == -np.sign(turns))


def test_foot_contacts_detect_a_planted_foot(walk: Walk) -> None:
    joints = walk(9, frames=30, speed=0.5, drift=0.0)  # the body moves on
    left = list(skeleton.LEFT_FOOT_JOINTS)
    right = list(skeleton.RIGHT_FOOT_JOINTS)
    joints[:, left] = joints[0, left]  # the left foot stays planted
    joints[:, right] = joints[0, right] + np.arange(30)[:, None, None] * [0.0, 0.02, 0.06]
    contacts = joints_to_features(joints)[:, 259:263]  # l_ankle, l_foot, r_ankle, r_foot
    np.testing.assert_array_equal(contacts[:, :2], 1.0)
    np.testing.assert_array_equal(contacts[:, 2:], 0.0)


def test_foot_contact_threshold_is_on_squared_displacement(walk: Walk) -> None:
    joints = walk(10, frames=3, speed=0.0, drift=0.0)
    left = list(skeleton.LEFT_FOOT_JOINTS)
    joints[:, left] = joints[0, left]
    step = np.sqrt(skeleton.FOOT_CONTACT_THRESHOLD)
    joints[1, left] += [0.0, 0.0, 0.99 * step]  # slower than the threshold: planted
    joints[2, left] = joints[1, left] + [1.01 * step, 0.0, 0.0]  # faster: lifted
    contacts = joints_to_features(joints)[:, 259:261]
    np.testing.assert_array_equal(contacts, [[1.0, 1.0], [0.0, 0.0]])


def test_rotations_are_valid_6d_and_rest_pose_is_identity(walk: Walk) -> None:
    feats = joints_to_features(walk(11, frames=40, turns=0.5))
    rot = feats[:, 67:193].reshape(-1, 21, 6)
    c0, c1 = rot[..., :3], rot[..., 3:]
    np.testing.assert_allclose(np.linalg.norm(c0, axis=-1), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(c1, axis=-1), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.sum(c0 * c1, -1), 0.0, atol=1e-9)
    # A figure standing in its rest pose: every local swing is the identity.
    rest = skeleton.rest_offsets(np.full(skeleton.NUM_JOINTS, 0.2))
    pose = np.zeros((3, skeleton.NUM_JOINTS, 3))
    for j in range(1, skeleton.NUM_JOINTS):
        pose[:, j] = pose[:, skeleton.PARENTS[j]] + rest[j]
    rot = joints_to_features(pose)[:, 67:193].reshape(-1, 21, 6)
    np.testing.assert_allclose(rot, np.tile([1.0, 0, 0, 0, 1, 0], (2, 21, 1)), atol=1e-12)


def _humanml3d_reference(joints: np.ndarray) -> np.ndarray:
    """A literal, loop-by-loop port of HumanML3D's process_file (without uniform_skeleton), with
    the facing computed from (r_hip - l_hip) + (r_shoulder - l_shoulder) everywhere. Valid while
    the smoothed facing stays away from -Z (HumanML3D does not make its root quaternions
    sign-continuous)."""
    pos = joints.astype(np.float64).copy()
    pos[:, :, 1] -= pos.min(axis=0).min(axis=0)[1]
    init = pos[0]
    pos = pos - init[0] * np.array([1, 0, 1])
    across = (init[2] - init[1]) + (init[17] - init[16])
    across = across / np.linalg.norm(across)
    forward_init = np.cross(np.array([[0, 1, 0]]), across)
    forward_init = forward_init / np.linalg.norm(forward_init)
    pos = qrot(qbetween(forward_init, np.array([[0, 0, 1]])), pos)
    global_positions = pos.copy()
    t = len(pos)

    feet_l = (np.sum((pos[1:, [7, 10]] - pos[:-1, [7, 10]]) ** 2, -1) < 0.002).astype(float)
    feet_r = (np.sum((pos[1:, [8, 11]] - pos[:-1, [8, 11]]) ** 2, -1) < 0.002).astype(float)

    across = (pos[:, 2] - pos[:, 1]) + (pos[:, 17] - pos[:, 16])
    across = across / np.linalg.norm(across, axis=-1, keepdims=True)
    forward = smooth_along_time(np.cross(np.array([[0, 1, 0]]), across))
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    root_quat = qbetween(forward, np.array([[0, 0, 1]]))
    root_quat[0] = [1.0, 0.0, 0.0, 0.0]
    quat_params = np.zeros((t, 22, 4))
    quat_params[:, 0] = root_quat
    for chain in skeleton.KINEMATIC_CHAINS:
        rot = root_quat
        for j in range(len(chain) - 1):
            u = np.repeat(skeleton.REST_DIRECTIONS[chain[j + 1]][None], t, axis=0)
            v = pos[:, chain[j + 1]] - pos[:, chain[j]]
            v = v / np.linalg.norm(v, axis=-1, keepdims=True)
            rot_loc = qmul(qinv(rot), qbetween(u, v))
            quat_params[:, chain[j + 1]] = rot_loc
            rot = qmul(rot, rot_loc)
    mat = qto_matrix(quat_params)
    cont6d = np.concatenate([mat[..., 0], mat[..., 1]], axis=-1)
    r_rot = quat_params[:, 0].copy()
    velocity = qrot(r_rot[1:], pos[1:, 0] - pos[:-1, 0])
    r_velocity = qmul(r_rot[1:], qinv(r_rot[:-1]))

    positions = pos.copy()
    positions[..., 0] -= positions[:, 0:1, 0]
    positions[..., 2] -= positions[:, 0:1, 2]
    positions = qrot(np.repeat(r_rot[:, None], 22, axis=1), positions)
    root_data = np.concatenate(
        [np.arcsin(r_velocity[:, 2:3]), velocity[:, [0, 2]], positions[:-1, 0, 1:2]], axis=-1
    )
    local_vel = qrot(
        np.repeat(r_rot[:-1, None], 22, axis=1), global_positions[1:] - global_positions[:-1]
    )
    return np.concatenate(
        [
            root_data,
            positions[:-1, 1:].reshape(t - 1, -1),
            cont6d[:-1, 1:].reshape(t - 1, -1),
            local_vel.reshape(t - 1, -1),
            feet_l,
            feet_r,
        ],
        axis=-1,
    )


def test_matches_a_literal_port_of_humanml3d(walk: Walk) -> None:
    joints = walk(12, frames=150, turns=0.1)
    np.testing.assert_allclose(joints_to_features(joints), _humanml3d_reference(joints), atol=1e-10)


def test_smoothing_matches_scipy_nearest_mode_semantics() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))  # shorter than the kernel radius (80)
    kernel = gaussian_kernel(20.0)
    radius = len(kernel) // 2
    assert radius == 80
    assert kernel.sum() == pytest.approx(1.0)
    expected = np.array(
        [
            sum(kernel[k] * x[min(max(t + k - radius, 0), len(x) - 1)] for k in range(len(kernel)))
            for t in range(len(x))
        ]
    )
    np.testing.assert_allclose(smooth_along_time(x), expected, atol=1e-12)


@pytest.mark.parametrize("shape", [(10, 21, 3), (10, 22, 2), (22, 3), (1, 22, 3), (2, 10, 22, 3)])
def test_joints_to_features_rejects_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"\(T, 22, 3\)"):
        joints_to_features(np.zeros(shape))


def test_bad_inputs_raise_value_error(walk: Walk) -> None:
    joints = walk(13, frames=10)
    joints[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        joints_to_features(joints)
    with pytest.raises(ValueError, match="263"):
        features_to_joints(np.zeros((10, 262)))
    with pytest.raises(ValueError, match="263"):
        features_to_joints_torch(torch.zeros(10, 262))
    with pytest.raises(ValueError, match=r"\(B, T, 22, 3\)"):
        joints_to_features_torch(torch.zeros(10, 22, 3))


def test_torch_versions_match_numpy(walk: Walk) -> None:
    clips = np.stack([walk(s, frames=100, turns=1.5 * s - 2) for s in range(4)])  # (4, 100, 22, 3)
    feats = np.stack([joints_to_features(c) for c in clips])  # (4, 99, 263)
    feats_t = joints_to_features_torch(torch.from_numpy(clips))
    assert feats_t.shape == (4, 99, FEATURE_DIM)
    np.testing.assert_allclose(feats_t.numpy(), feats, atol=1e-5)
    # recovery with extra leading dimensions
    batched = np.stack([feats[:2], feats[2:]])  # (2, 2, 99, 263)
    joints_t = features_to_joints_torch(torch.from_numpy(batched))
    assert joints_t.shape == (2, 2, 99, 22, 3)
    np.testing.assert_allclose(joints_t.numpy(), features_to_joints(batched), atol=1e-5)
    # float32 stays float32
    assert joints_to_features_torch(torch.from_numpy(clips[:1]).float()).dtype == torch.float32


def test_torch_versions_are_differentiable(walk: Walk) -> None:
    gen = torch.Generator().manual_seed(0)
    feats = 0.1 * torch.randn(5, FEATURE_DIM, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        features_to_joints_torch, (feats.requires_grad_(),), fast_mode=True
    )
    joints = torch.from_numpy(walk(14, frames=4, turns=0.2))[None].requires_grad_()
    # contacts are thresholds (zero gradient); check everything else
    assert torch.autograd.gradcheck(
        lambda j: joints_to_features_torch(j)[..., :259], (joints,), fast_mode=True
    )
