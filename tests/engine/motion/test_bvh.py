"""BVH export: read back with an independent reader (bvhio), Euler maths, atomic writes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from easytune_engine.motion import bvh, ik, skeleton
from easytune_engine.motion.quaternion import qfrom_axis_angle, qmul, qnormalize, qto_matrix, qyaw

with warnings.catch_warnings():
    warnings.simplefilter("ignore", PendingDeprecationWarning)  # bvhio's "import glm"
    import bvhio

_HELPERS = {
    "pelvis_to_left_hip",
    "pelvis_to_right_hip",
    "pelvis_to_spine1",
    "spine3_to_neck",
    "spine3_to_left_collar",
    "spine3_to_right_collar",
}


def make_clip(seed: int, frames: int = 60, turns: float = 1.5) -> np.ndarray:
    """A procedural clip (frames, 22, 3) in metres: every bone swings about its own random axis
    around a random offset pose (so the hips and chest are not rigid), the root turns `turns`
    times on a curved path while pitching and rolling a little."""
    rng = np.random.default_rng(seed)
    rest = ik.RestSkeleton.from_lengths(rng.uniform(0.05, 0.45, 22))
    t = np.arange(frames) / 20.0
    base = qfrom_axis_angle(rng.normal(size=(22, 3)), rng.uniform(0, 1.2, 22))  # (22, 4)
    axes = rng.normal(size=(22, 3))
    amplitude = rng.uniform(0.2, 1.0, 22)
    omega = rng.uniform(2.0, 6.0, 22)
    wave = amplitude * np.sin(omega * t[:, None] + rng.uniform(0, 6, 22))  # (T, 22)
    local = qmul(base, qfrom_axis_angle(axes, wave))  # (T, 22, 4)
    yaw = 2 * np.pi * turns * np.arange(frames) / max(frames - 1, 1)
    tilt = qfrom_axis_angle(np.array([1.0, 0.0, 0.2]), 0.3 * np.sin(3 * t))
    local[:, 0] = qmul(qyaw(yaw), tilt)
    heading = np.stack([np.sin(yaw), np.zeros(frames), np.cos(yaw)], -1)
    root = np.cumsum(heading * 0.06, axis=0) + np.array([1.0, 0.9, -2.0])
    return ik.forward_kinematics(ik.Pose(root, qnormalize(local)), rest)


def _read_positions(path: Path, scale: float) -> dict[str, np.ndarray]:
    """World positions (T, 3) of every joint of a BVH file, in metres, read by bvhio."""
    root = bvhio.readAsHierarchy(str(path))
    joints = [joint for joint, _, _ in root.layout()]
    frames = root.getKeyframeRange()[1] + 1
    out = {joint.Name: np.empty((frames, 3)) for joint in joints}
    for frame in range(frames):
        root.loadPose(frame)
        for joint in joints:
            out[joint.Name][frame] = np.array(joint.PositionWorld) / scale
    return out


@pytest.mark.parametrize(("seed", "unit", "scale"), [(0, "cm", 100.0), (1, "m", 1.0)])
def test_bvh_read_back_matches_the_joints(
    tmp_path: Path, seed: int, unit: str, scale: float
) -> None:
    joints = make_clip(seed)
    path = tmp_path / "clip.bvh"
    bvh.write_bvh(path, joints, fps=20.0, unit=unit)
    positions = _read_positions(path, scale)
    assert set(positions) == set(skeleton.JOINT_NAMES) | _HELPERS
    read = np.stack([positions[name] for name in skeleton.JOINT_NAMES], axis=1)  # (T, 22, 3)
    assert read.shape == joints.shape
    assert np.abs(read - joints).max() < 1e-3  # metres


def test_bvh_read_back_of_a_realistic_walk(tmp_path: Path) -> None:
    from test_ik import make_motion  # same folder; an SMPL-like figure with bending limbs

    joints = make_motion(7, frames=80)
    path = tmp_path / "walk.bvh"
    bvh.write_bvh(path, joints)
    positions = _read_positions(path, 100.0)
    read = np.stack([positions[name] for name in skeleton.JOINT_NAMES], axis=1)
    assert np.abs(read - joints).max() < 1e-3


def test_hierarchy_channels_and_header(tmp_path: Path) -> None:
    joints = make_clip(2, frames=12)
    path = tmp_path / "clip.bvh"
    bvh.write_bvh(path, joints, fps=30.0)
    text = path.read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "HIERARCHY" and lines[1] == "ROOT pelvis"
    assert "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation" in lines
    assert lines.count("CHANNELS 3 Zrotation Yrotation Xrotation") == 27
    assert lines.count("End Site") == 5  # feet, head, wrists
    assert text.count("{") == text.count("}")
    motion = lines.index("MOTION")
    assert lines[motion + 1] == "Frames: 12"
    assert lines[motion + 2] == "Frame Time: 0.03333333"
    values = np.array([line.split() for line in lines[motion + 3 :]], dtype=float)
    assert values.shape == (12, 6 + 3 * 27)
    np.testing.assert_allclose(values[:, :3], joints[:, 0] * 100, atol=1e-5)  # root in cm
    # Rest offsets are the median bone lengths along the rest directions.
    layout = bvh.bvh_layout(ik.RestSkeleton.from_joints(joints))
    by_name = {j.name: j for j in layout}
    lengths = np.median(skeleton.bone_lengths(joints), axis=0)
    np.testing.assert_allclose(by_name["left_knee"].offset, [0, -lengths[4], 0])
    assert by_name["left_hip"].bone == 4 and by_name["spine3"].bone is None


def _motion_values(text: str) -> np.ndarray:
    lines = text.splitlines()
    return np.array([line.split() for line in lines[lines.index("MOTION") + 3 :]], dtype=float)


def test_angles_are_continuous() -> None:
    from test_ik import make_motion  # same folder

    angles = _motion_values(bvh.bvh_text(make_motion(3, frames=196)))[:, 3:]
    # The fastest joints (knees, elbows) turn ~30 degrees a frame; no 360 wraps or Euler flips.
    assert np.abs(np.diff(angles, axis=0)).max() < 45.0
    # Arbitrary rotations (some near gimbal lock) still never wrap, and the root keeps turning.
    angles = _motion_values(bvh.bvh_text(make_clip(3, frames=120, turns=3.0)))[:, 3:]
    assert np.abs(np.diff(angles, axis=0)).max() < 180.0
    yaw = angles[:, 2]  # root Yrotation
    assert yaw[-1] - yaw[0] > 1000.0


@pytest.mark.parametrize("order", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
def test_euler_round_trip(order: str) -> None:
    rng = np.random.default_rng(0)
    m = qto_matrix(qnormalize(rng.normal(size=(200, 4))))
    np.testing.assert_allclose(
        bvh.matrix_from_euler(bvh.euler_from_matrix(m, order), order), m, atol=1e-12
    )
    # Gimbal lock: the middle angle at exactly +-90 degrees.
    angles = rng.uniform(-3, 3, (50, 3))
    angles[:, 1] = np.where(np.arange(50) % 2 == 0, np.pi / 2, -np.pi / 2)
    locked = bvh.matrix_from_euler(angles, order)
    again = bvh.matrix_from_euler(bvh.euler_from_matrix(locked, order), order)
    np.testing.assert_allclose(again, locked, atol=1e-9)


def test_continuous_euler_takes_the_nearer_solution() -> None:
    # A rotation about X through 0..270 degrees in ZYX: X is innermost, so it just keeps going.
    t = np.linspace(0, 1.5 * np.pi, 40)
    m = qto_matrix(qfrom_axis_angle(np.array([1.0, 0.0, 0.0]), t))
    angles = bvh.continuous_euler(m[:, None], "ZYX")[:, 0]
    np.testing.assert_allclose(angles[:, 2], t, atol=1e-9)
    np.testing.assert_allclose(angles[:, :2], 0.0, atol=1e-9)
    # About Y (the middle axis) past 90 degrees: the second solution keeps it going, still Y only.
    m = qto_matrix(qfrom_axis_angle(np.array([0.0, 1.0, 0.0]), t))
    angles = bvh.continuous_euler(m[:, None], "ZYX")[:, 0]
    np.testing.assert_allclose(angles[:, 1], t, atol=1e-6)
    np.testing.assert_allclose(angles[:, [0, 2]], 0.0, atol=1e-6)


def test_write_is_atomic_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "clip.bvh"
    path.write_text("old")
    bvh.write_bvh(path, make_clip(4, frames=5))
    assert path.read_text().startswith("HIERARCHY")
    bad = make_clip(4, frames=5)
    bad[2, 7, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        bvh.write_bvh(path, bad)
    assert path.read_text().startswith("HIERARCHY")  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.bvh"]  # no temp files left


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"joints": np.zeros((5, 22, 2))}, r"shape \(T, 22, 3\)"),
        ({"unit": "inch"}, r"unit must be one of \['cm', 'm'\]"),
        ({"fps": 0.0}, "fps must be a positive number"),
        ({"fps": float("nan")}, "fps must be a positive number"),
    ],
)
def test_bad_input_raises(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"joints": make_clip(5, frames=4), "fps": 20.0, "unit": "cm", **kwargs}
    with pytest.raises(ValueError, match=message):
        bvh.write_bvh(tmp_path / "x.bvh", **args)
    assert not any(tmp_path.iterdir())
