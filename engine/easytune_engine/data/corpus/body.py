"""A parametric human body for the procedural corpus: pose tracks in, 22 joint positions out.

The corpus synthesiser does not animate joint angles directly. It describes each frame with a few
meaningful channels (`PoseTrack`): where the pelvis is and which way it faces, how the torso
bends, where each ankle is planted, and which way each arm segment points. `pose_to_joints` turns
those into SMPL-ordered joints (T, 22, 3), solving the legs with analytic two-bone IK so that a
planted ankle target gives a planted foot: feet never slide by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

ANKLE_HEIGHT = 0.08  # ankle joint above the sole when the foot is flat (m)


@dataclass(frozen=True)
class Body:
    """Bone lengths and offsets of one corpus character (metres, standing height about 1.7 m)."""

    hip_half_width: float = 0.07
    hip_drop: float = 0.08  # hips sit below the pelvis joint
    thigh: float = 0.385
    shin: float = 0.39
    foot_forward: float = 0.13
    spine1: float = 0.10
    spine2: float = 0.13
    spine3: float = 0.05
    neck: float = 0.24
    head: float = 0.10
    collar_half_width: float = 0.075
    collar_rise: float = 0.12
    shoulder_out: float = 0.115
    upper_arm: float = 0.27
    forearm: float = 0.25
    stance_half_width: float = 0.11  # lateral distance of each ankle from the body's centre line

    @property
    def leg(self) -> float:
        return self.thigh + self.shin

    @property
    def standing_pelvis_height(self) -> float:
        """Pelvis height above the ground with the knees very slightly bent."""
        return ANKLE_HEIGHT + 0.975 * self.leg + self.hip_drop

    def scaled(self, scale: float, rng: np.random.Generator | None = None, jitter: float = 0.0):
        """A copy scaled by `scale`, each length also jittered by up to ±`jitter` (relative)."""
        values = {}
        for f in fields(self):
            factor = scale
            if rng is not None and jitter > 0:
                factor *= 1.0 + rng.uniform(-jitter, jitter)
            values[f.name] = getattr(self, f.name) * factor
        return Body(**values)


@dataclass
class PoseTrack:
    """Per-frame pose channels for T frames. Vectors are world-space unless noted.

    Arm directions are unit vectors in the chest frame (x = body left, y = up, z = forward), the
    frame of spine3 after the torso's lean, side bend and twist.
    """

    pelvis: np.ndarray  # (T, 3) pelvis joint position
    yaw: np.ndarray  # (T,) heading; 0 faces +Z, positive turns left (towards +X)
    lean: np.ndarray  # (T,) forward bend of the torso (rad), spread over the three spine joints
    side_bend: np.ndarray  # (T,) bend towards the body's left (rad)
    twist: np.ndarray  # (T,) upper-body yaw relative to the pelvis (rad)
    nod: np.ndarray  # (T,) head pitch forward (rad)
    ankle_l: np.ndarray  # (T, 3) left ankle target
    ankle_r: np.ndarray  # (T, 3)
    foot_yaw_l: np.ndarray  # (T,) foot heading
    foot_yaw_r: np.ndarray  # (T,)
    toe_l: np.ndarray  # (T,) foot pitch, positive lifts the toes (rad)
    toe_r: np.ndarray  # (T,)
    upper_l: np.ndarray  # (T, 3) left upper-arm direction, chest frame
    fore_l: np.ndarray  # (T, 3) left forearm direction, chest frame
    upper_r: np.ndarray  # (T, 3)
    fore_r: np.ndarray  # (T, 3)

    def __len__(self) -> int:
        return len(self.yaw)

    @staticmethod
    def concatenate(tracks: list[PoseTrack]) -> PoseTrack:
        return PoseTrack(
            **{
                f.name: np.concatenate([getattr(t, f.name) for t in tracks])
                for f in fields(PoseTrack)
            }
        )


def _rot_y(angle: np.ndarray) -> np.ndarray:
    """(T,) -> (T, 3, 3) rotation about +Y (positive turns +Z towards +X)."""
    c, s = np.cos(angle), np.sin(angle)
    z, o = np.zeros_like(angle), np.ones_like(angle)
    return np.stack(
        [np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2
    )


def _rot_x(angle: np.ndarray) -> np.ndarray:
    """(T,) -> (T, 3, 3) rotation about +X (positive tips +Y towards +Z: a forward bend)."""
    c, s = np.cos(angle), np.sin(angle)
    z, o = np.zeros_like(angle), np.ones_like(angle)
    return np.stack(
        [np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2
    )


def _rot_z(angle: np.ndarray) -> np.ndarray:
    """(T,) -> (T, 3, 3) rotation about +Z (positive tips +Y towards -X: bends to the right)."""
    c, s = np.cos(angle), np.sin(angle)
    z, o = np.zeros_like(angle), np.ones_like(angle)
    return np.stack(
        [np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2
    )


def _apply(rot: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(T, 3, 3) @ (T, 3) or (3,) -> (T, 3)."""
    if v.ndim == 1:
        return rot @ v
    return np.einsum("tij,tj->ti", rot, v)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def solve_two_bone(
    hip: np.ndarray, target: np.ndarray, pole: np.ndarray, upper: float, lower: float
) -> tuple[np.ndarray, np.ndarray]:
    """Analytic two-bone IK: knee and reached end point for each frame.

    hip, target, pole: (T, 3); the knee bends towards `pole`. A target out of reach is pulled in
    along the hip-target line (the caller keeps targets reachable by lowering the pelvis).
    """
    d_vec = target - hip
    dist = np.linalg.norm(d_vec, axis=-1)  # (T,)
    reach = 0.9995 * (upper + lower)
    dist_c = np.clip(dist, abs(upper - lower) + 1e-4, reach)
    axis = d_vec / np.maximum(dist, 1e-9)[:, None]
    along = (upper**2 - lower**2 + dist_c**2) / (2 * dist_c)  # distance from hip to knee foot-point
    height = np.sqrt(np.maximum(upper**2 - along**2, 0.0))
    perp = pole - np.sum(pole * axis, -1, keepdims=True) * axis
    perp = _unit(perp)
    knee = hip + along[:, None] * axis + height[:, None] * perp
    end = hip + dist_c[:, None] * axis
    return knee, end


def reachable_pelvis_height(track: PoseTrack, body: Body) -> np.ndarray:
    """Highest pelvis height per frame (T,) at which every planted ankle can still be reached.

    Only feet on the ground constrain the pelvis: a swinging foot that is out of reach is simply
    pulled in by the leg IK (it reads as a foot tucked up behind). Frames where neither foot is
    planted get +inf.
    """
    limit = 0.995 * body.leg
    out = np.full(len(track), np.inf)
    for ankle, sign in ((track.ankle_l, 1.0), (track.ankle_r, -1.0)):
        step = np.linalg.norm(np.diff(ankle[:, [0, 2]], axis=0), axis=-1)  # (T-1,)
        moving = np.zeros(len(ankle), dtype=bool)
        moving[1:] |= step > 0.002
        moving[:-1] |= step > 0.002
        # lifted: well above the lowest this ankle gets within +-1 s (the ground may rise: step_up)
        padded = np.pad(ankle[:, 1], 20, mode="edge")
        ground = np.min(np.stack([padded[i : i + len(ankle)] for i in range(41)]), axis=0)
        moving |= ankle[:, 1] > ground + 0.12
        hip_xz = track.pelvis + _apply(
            _rot_y(track.yaw), np.array([sign * body.hip_half_width, 0.0, 0.0])
        )
        horizontal = np.linalg.norm((ankle - hip_xz)[:, [0, 2]], axis=-1)
        rise = np.sqrt(np.maximum(limit**2 - horizontal**2, 0.0))
        height = ankle[:, 1] + rise + body.hip_drop
        out = np.where(moving, out, np.minimum(out, height))
    return out


def pose_to_joints(track: PoseTrack, body: Body) -> np.ndarray:
    """Forward kinematics of the pose channels: (T, 22, 3) joint positions in SMPL order."""
    n = len(track)
    joints = np.zeros((n, 22, 3))
    r_yaw = _rot_y(track.yaw)  # (T, 3, 3) pelvis frame
    pelvis = track.pelvis
    joints[:, 0] = pelvis

    # Spine: each of the three spine joints takes a third of the lean, side bend and twist.
    frame = r_yaw
    prev = pelvis
    spine_frames = []
    for joint, length in ((3, body.spine1), (6, body.spine2), (9, body.spine3)):
        step = _rot_y(track.twist / 3) @ _rot_x(track.lean / 3) @ _rot_z(-track.side_bend / 3)
        frame = frame @ step
        prev = prev + _apply(frame, np.array([0.0, length, 0.0]))
        joints[:, joint] = prev
        spine_frames.append(frame)
    chest = spine_frames[-1]  # (T, 3, 3)
    spine3 = joints[:, 9]
    joints[:, 12] = spine3 + _apply(chest, np.array([0.0, body.neck, -0.01]))
    head_frame = chest @ _rot_x(track.nod)
    joints[:, 15] = joints[:, 12] + _apply(head_frame, np.array([0.0, body.head, 0.03]))

    # Arms: collar and shoulder ride on the chest; arm segments follow the given directions.
    for side, sign, collar, shoulder, elbow, wrist, up_dir, fore_dir in (
        ("l", 1.0, 13, 16, 18, 20, track.upper_l, track.fore_l),
        ("r", -1.0, 14, 17, 19, 21, track.upper_r, track.fore_r),
    ):
        del side
        joints[:, collar] = spine3 + _apply(
            chest, np.array([sign * body.collar_half_width, body.collar_rise, -0.02])
        )
        joints[:, shoulder] = joints[:, collar] + _apply(
            chest, np.array([sign * body.shoulder_out, 0.03, 0.0])
        )
        joints[:, elbow] = joints[:, shoulder] + body.upper_arm * _apply(chest, _unit(up_dir))
        joints[:, wrist] = joints[:, elbow] + body.forearm * _apply(chest, _unit(fore_dir))

    # Legs: hips hang from the pelvis; knees and ankles from two-bone IK towards the ankle targets.
    for sign, hip, knee, ankle, foot, target, foot_yaw, toe in (
        (1.0, 1, 4, 7, 10, track.ankle_l, track.foot_yaw_l, track.toe_l),
        (-1.0, 2, 5, 8, 11, track.ankle_r, track.foot_yaw_r, track.toe_r),
    ):
        joints[:, hip] = pelvis + _apply(
            r_yaw, np.array([sign * body.hip_half_width, -body.hip_drop, 0.0])
        )
        foot_frame = _rot_y(foot_yaw)
        # knee direction: perpendicular to the hip->ankle line within the leg's sagittal plane,
        # forward of it (a hanging leg bends its knee forward, a kicking one upward, a trailing one
        # forward-down), so the knee never flips sideways whatever the leg's pitch
        forward = _apply(foot_frame, np.array([0.0, 0.0, 1.0]))
        lateral = _apply(foot_frame, np.array([1.0, 0.0, 0.0]))
        leg = _unit(target - joints[:, hip])
        d_fwd = np.sum(leg * forward, -1, keepdims=True)
        d_up = leg[:, 1:2]
        pole = -d_up * forward + d_fwd * np.array([0.0, 1.0, 0.0]) + 0.15 * sign * lateral
        knee_pos, ankle_pos = solve_two_bone(joints[:, hip], target, pole, body.thigh, body.shin)
        joints[:, knee] = knee_pos
        joints[:, ankle] = ankle_pos
        toe_dir = _apply(foot_frame @ _rot_x(-toe), np.array([0.0, -0.06, body.foot_forward]))
        joints[:, foot] = ankle_pos + toe_dir
    return joints
