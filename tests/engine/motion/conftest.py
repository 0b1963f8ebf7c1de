"""Procedural test motions: a stick figure walking along a curved path while turning.

`make_walk` builds joint positions (T, 22, 3) by forward kinematics on the HumanML3D skeleton
with randomly scaled bone lengths, a root that advances along its (changing) facing direction
with some sideways drift, and swinging limbs. Deterministic for a given seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from easytune_engine.motion import skeleton
from easytune_engine.motion.quaternion import qfrom_axis_angle, qmul, qrot, qyaw

# Rough adult bone lengths (m) of the bone ending at each joint.
# fmt: off
_BASE_LENGTHS = np.array([
    0.0, 0.1, 0.1, 0.11, 0.38, 0.38, 0.13, 0.4, 0.4, 0.05, 0.12,
    0.12, 0.2, 0.08, 0.08, 0.1, 0.1, 0.1, 0.27, 0.27, 0.25, 0.25,
])
# fmt: on

_X = np.array([1.0, 0.0, 0.0])
_Y = np.array([0.0, 1.0, 0.0])
_Z = np.array([0.0, 0.0, 1.0])


def make_walk(
    seed: int = 0,
    frames: int = 120,
    turns: float = 0.0,
    speed: float = 1.2,
    start_yaw: float | None = None,
    drift: float = 0.2,
    torso: float = 1.0,
    fps: float = 20.0,
) -> np.ndarray:
    """A walking stick figure: (frames, 22, 3) metres, Y up.

    turns: full turns of the facing over the clip (positive = to the left, i.e. +Z towards +X).
    speed: forward speed (m/s). drift: amplitude (m/s) of a sideways sway of the root; when it
    is non-zero the facing also wobbles. torso: scale of the pelvis pitch and the spine's twist
    and roll, which move the shoulders against the hips and so the facing direction. drift=0
    and torso=0 give a facing that follows `turns` exactly.
    """
    rng = np.random.default_rng(seed)
    lengths = _BASE_LENGTHS * rng.uniform(0.8, 1.2, skeleton.NUM_JOINTS)
    offsets = skeleton.rest_offsets(lengths)  # (22, 3)
    t = np.arange(frames) / fps
    phase = 2 * np.pi * 0.9 * t + rng.uniform(0, 2 * np.pi)
    if start_yaw is None:
        start_yaw = rng.uniform(-np.pi, np.pi)
    yaw = start_yaw + 2 * np.pi * turns * np.arange(frames) / max(frames - 1, 1)
    if drift:
        yaw = yaw + 0.3 * np.sin(0.7 * t + rng.uniform(0, 6))

    # Root path: integrate the facing direction, plus a sideways drift.
    heading = np.stack([np.sin(yaw), np.zeros(frames), np.cos(yaw)], -1)  # (T, 3)
    side = np.stack([np.cos(yaw), np.zeros(frames), -np.sin(yaw)], -1)
    step = (speed * heading + drift * np.sin(0.5 * t)[:, None] * side) / fps
    root = np.cumsum(step, axis=0) + rng.normal(size=3) * [2.0, 0.0, 2.0]
    root[:, 1] = lengths[[4, 7]].sum() + 0.05 + 0.03 * np.cos(2 * phase) + rng.uniform(-0.3, 0.3)

    # Local rotations (T, 22, 4): legs and arms swing about X, knees bend, torso twists about Y.
    swing = 0.5 * np.sin(phase)
    local = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (frames, skeleton.NUM_JOINTS, 1))
    local[:, 0] = qmul(qyaw(yaw), qfrom_axis_angle(_X, 0.1 * torso * np.sin(2 * phase)))
    local[:, 1] = qfrom_axis_angle(_X, -swing)
    local[:, 2] = qfrom_axis_angle(_X, swing)
    local[:, 4] = qfrom_axis_angle(_X, 0.6 * np.maximum(np.sin(phase + 1.0), 0))
    local[:, 5] = qfrom_axis_angle(_X, 0.6 * np.maximum(np.sin(phase + 1.0 + np.pi), 0))
    local[:, 3] = qfrom_axis_angle(_Y, 0.25 * torso * np.sin(phase))
    local[:, 9] = qfrom_axis_angle(_Z, 0.1 * torso * np.sin(phase))
    local[:, 12] = qfrom_axis_angle(_X, 0.2 * np.sin(2 * phase))
    local[:, 13] = qfrom_axis_angle(_Z, np.full(frames, 1.2))  # shoulders out to the sides
    local[:, 14] = qfrom_axis_angle(_Z, np.full(frames, -1.2))
    local[:, 16] = qmul(qfrom_axis_angle(_Z, np.full(frames, -1.0)), qfrom_axis_angle(_X, swing))
    local[:, 17] = qmul(qfrom_axis_angle(_Z, np.full(frames, 1.0)), qfrom_axis_angle(_X, -swing))
    local[:, 18] = qfrom_axis_angle(_X, -0.4 - 0.3 * np.sin(phase))
    local[:, 19] = qfrom_axis_angle(_X, -0.4 + 0.3 * np.sin(phase))

    # Forward kinematics: joint = parent + (parent's global rotation) * (rest offset).
    glob = np.empty_like(local)
    pos = np.empty((frames, skeleton.NUM_JOINTS, 3))
    glob[:, 0], pos[:, 0] = local[:, 0], root
    for j in range(1, skeleton.NUM_JOINTS):
        p = skeleton.PARENTS[j]
        pos[:, j] = pos[:, p] + qrot(glob[:, p], offsets[j])
        glob[:, j] = qmul(glob[:, p], local[:, j])
    return pos


@pytest.fixture
def walk() -> Callable[..., np.ndarray]:
    """The `make_walk` factory."""
    return make_walk
