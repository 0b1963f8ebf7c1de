"""Mirroring joints and features: involution, agreement with extraction, torch parity."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from easytune_engine.motion import skeleton
from easytune_engine.motion.features import features_to_joints, joints_to_features
from easytune_engine.motion.mirror import mirror_features, mirror_joints
from easytune_engine.motion.normalize import FEATURE_SLICES

Walk = Callable[..., np.ndarray]


def test_mirror_joints_reflects_x_and_swaps_sides(walk: Walk) -> None:
    joints = walk(0, frames=20)
    mirrored = mirror_joints(joints)
    left_hip, right_hip = skeleton.JOINT_INDEX["left_hip"], skeleton.JOINT_INDEX["right_hip"]
    np.testing.assert_allclose(mirrored[:, left_hip], joints[:, right_hip] * [-1, 1, 1])
    np.testing.assert_allclose(mirrored[:, 0], joints[:, 0] * [-1, 1, 1])
    np.testing.assert_array_equal(mirror_joints(mirrored), joints)


def test_mirror_features_twice_is_identity_and_once_is_not(walk: Walk) -> None:
    feats = joints_to_features(walk(1, frames=60, turns=1.0))
    np.testing.assert_array_equal(mirror_features(mirror_features(feats)), feats)
    assert np.abs(mirror_features(feats) - feats).max() > 0.1


@pytest.mark.parametrize(("seed", "turns"), [(2, 0.0), (3, 2.5), (4, -3.0)])
def test_mirroring_features_equals_extracting_from_mirrored_joints(
    walk: Walk, seed: int, turns: float
) -> None:
    # Every extraction step commutes with the reflection, including the facing smoothing and
    # the swing IK, so all seven groups agree (to float rounding).
    joints = walk(seed, frames=120, turns=turns)
    expected = joints_to_features(mirror_joints(joints))
    got = mirror_features(joints_to_features(joints))
    for name, group in FEATURE_SLICES.items():
        err = np.abs(got[:, group] - expected[:, group]).max()
        assert err < 1e-6, f"{name} differs by {err}"


def test_mirrored_features_recover_the_mirrored_motion(walk: Walk) -> None:
    feats = joints_to_features(walk(5, frames=80, turns=1.5))
    np.testing.assert_allclose(
        features_to_joints(mirror_features(feats)),
        mirror_joints(features_to_joints(feats)),
        atol=1e-9,
    )


def test_mirror_swaps_foot_contacts(walk: Walk) -> None:
    joints = walk(6, frames=10, speed=0.5)
    left = list(skeleton.LEFT_FOOT_JOINTS)
    joints[:, left] = joints[0, left]  # only the left foot is planted
    contacts = mirror_features(joints_to_features(joints))[:, 259:263]
    np.testing.assert_array_equal(contacts[:, 2:], 1.0)  # now the right foot is planted


def test_torch_matches_numpy(walk: Walk) -> None:
    joints = walk(7, frames=30, turns=0.5)
    feats = joints_to_features(joints)
    np.testing.assert_array_equal(
        mirror_features(torch.from_numpy(feats)).numpy(), mirror_features(feats)
    )
    np.testing.assert_array_equal(
        mirror_joints(torch.from_numpy(joints)).numpy(), mirror_joints(joints)
    )
    assert mirror_features(torch.from_numpy(feats).float()).dtype == torch.float32


def test_bad_shapes_raise_value_error() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 22, 3\)"):
        mirror_joints(np.zeros((10, 21, 3)))
    with pytest.raises(ValueError, match=r"\(\.\.\., 263\)"):
        mirror_features(np.zeros((10, 262)))
