"""Shared pieces of the corpus synthesiser: stance state, gaits, easing curves, durations.

Each action type has a generator that writes `PoseTrack` channels for its frames and advances a
small `Stance` state (where the character stands, which way it faces, where its feet are planted,
whether it is seated, how high the ground is). Locomotion goes through one footstep planner, so
walks, runs, side steps, turns, spins and circles all plant their feet and never slide. Segments
start and end in a neutral pose, which makes any composition continuous.

Durations depend only on the action, its parameters and the clip's tempo (`action_frames`), so the
program sampler can plan a clip's length before anything is synthesised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .body import ANKLE_HEIGHT, Body, PoseTrack
from .program import Action

FPS = 20.0
GRAVITY = 9.81

# Neutral arm directions (chest frame: x = body left, y = up, z = forward), left arm; the right arm
# mirrors x.
UPPER_REST = np.array([0.12, -1.0, 0.02])
FORE_REST = np.array([0.04, -1.0, 0.16])

WALK_SPEED = {"slow": 0.9, "normal": 1.3, "fast": 1.7}
JOG_SPEED = {"slow": 2.0, "normal": 2.4, "fast": 2.8}
RUN_SPEED = {"slow": 3.1, "normal": 3.5, "fast": 3.9}
BACKWARD_SPEED = {"slow": 0.6, "normal": 0.85, "fast": 1.1}


@dataclass(frozen=True)
class Gait:
    """Footstep timing and style for one kind of locomotion."""

    step_period: float  # seconds per step (one foot's swing start to the other's)
    swing_frac: float  # swing duration as a fraction of the step period (>1 gives a flight phase)
    lift: float  # swing foot clearance (m)
    bob: float  # pelvis bob amplitude (m); negative = highest in the flight phase
    lean: float  # torso lean (rad)
    arm_swing: float  # arm swing gain
    elbow_bend: float  # forearm forward component
    ref_speed: float = 0.0  # speed at which step_period holds; faster paths step more often
    heel_off: bool = False  # roll the heel up in late stance (forward and backward gaits)
    max_step: float = 10.0  # longest step (m); short fast paths take extra steps


WALK = Gait(0.55, 0.85, 0.09, 0.025, 0.05, 0.9, 0.15, ref_speed=1.3, heel_off=True, max_step=0.75)
JOG = Gait(0.36, 1.4, 0.12, -0.04, 0.12, 1.1, 0.9, ref_speed=2.4, heel_off=True, max_step=1.2)
RUN = Gait(0.31, 1.6, 0.17, -0.06, 0.2, 1.3, 1.2, ref_speed=3.7, heel_off=True, max_step=1.7)
BACKWARD = Gait(0.6, 0.85, 0.07, 0.02, -0.04, 0.6, 0.15, ref_speed=0.85, max_step=0.5)
SIDE = Gait(0.55, 0.75, 0.06, 0.015, 0.0, 0.1, 0.15)
TURN = Gait(0.45, 0.8, 0.06, 0.01, 0.0, 0.1, 0.15)
SPIN = Gait(0.3, 0.85, 0.06, 0.0, 0.0, 0.0, 0.3)


@dataclass
class Stance:
    """Where the character is between segments."""

    xz: np.ndarray  # (2,) pelvis position on the ground plane
    yaw: float
    ankle_l: np.ndarray  # (3,)
    ankle_r: np.ndarray  # (3,)
    foot_yaw_l: float
    foot_yaw_r: float
    ground: float = 0.0
    seated: bool = False


# ----------------------------------------------------------------------------------------------
# Small helpers


def smoothstep(u: np.ndarray | float) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def bump(u: np.ndarray) -> np.ndarray:
    """0 -> 1 -> 0 over u in [0, 1], with zero slope at both ends."""
    u = np.clip(u, 0.0, 1.0)
    return 0.5 * (1.0 - np.cos(2.0 * np.pi * u))


def keyframes(n: int, times: list[float], values: list[float]) -> np.ndarray:
    """Scalar curve over n frames through (time in frames, value) keys with smoothstep easing."""
    t = np.arange(n, dtype=np.float64)
    out = np.full(n, float(values[0]))
    for (t0, v0), (t1, v1) in zip(
        zip(times, values, strict=True), zip(times[1:], values[1:], strict=True), strict=False
    ):
        span = max(t1 - t0, 1e-6)
        mask = t >= t0
        out[mask] = v0 + (v1 - v0) * smoothstep((t[mask] - t0) / span)
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def direction_keys(n: int, times: list[float], dirs: list[np.ndarray]) -> np.ndarray:
    """(n, 3) unit directions through keyed directions, spherical interpolation with easing."""
    t = np.arange(n, dtype=np.float64)
    dirs = [_unit(np.asarray(d, dtype=np.float64)) for d in dirs]
    out = np.tile(dirs[0], (n, 1))
    for (t0, d0), (t1, d1) in zip(
        zip(times, dirs, strict=True), zip(times[1:], dirs[1:], strict=True), strict=False
    ):
        mask = t >= t0
        u = smoothstep((t[mask] - t0) / max(t1 - t0, 1e-6))[:, None]
        omega = math.acos(float(np.clip(np.dot(d0, d1), -1.0, 1.0)))
        if omega < 1e-4:
            out[mask] = d1
        else:
            out[mask] = (np.sin((1 - u) * omega) * d0 + np.sin(u * omega) * d1) / math.sin(omega)
    return _unit(out)


def mirror_x(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=np.float64) * np.array([-1.0, 1.0, 1.0])


def yaw_rotate(yaw: np.ndarray | float, v: np.ndarray) -> np.ndarray:
    """Rotate body-frame xz offsets (..., 3) by heading yaw (broadcast)."""
    yaw = np.asarray(yaw, dtype=np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    return np.stack(
        [c * x + s * z, np.broadcast_to(y, np.broadcast(x, c).shape), -s * x + c * z], -1
    )


def hang(lean: np.ndarray) -> np.ndarray:
    """Chest-frame direction that points straight down in the world while the torso leans."""
    lean = np.asarray(lean, dtype=np.float64)
    # the chest frame is pitched forward by `lean`; undo that pitch: R_x(-lean) @ (0, -1, 0)
    return np.stack([np.zeros_like(lean), -np.cos(lean), np.sin(lean)], -1)


def body_offset(stance: Stance, off: np.ndarray) -> np.ndarray:
    """World position of a body-frame offset (..., 3) from the pelvis's ground point."""
    world = yaw_rotate(stance.yaw, off)
    return world + np.array([stance.xz[0], 0.0, stance.xz[1]])


def set_arm(track: PoseTrack, left: bool, upper: np.ndarray, fore: np.ndarray) -> None:
    """Set one arm's (upper, fore) directions, given for the left arm; the right one mirrors x."""
    if left:
        track.upper_l[:], track.fore_l[:] = upper, fore
    else:
        track.upper_r[:], track.fore_r[:] = mirror_x(upper), mirror_x(fore)


def arms_for(side: str) -> tuple[bool, ...]:
    """The arms (True = left) an action with this side uses."""
    return {"left": (True,), "right": (False,), "both": (True, False)}[side]


def shift_pelvis(track: PoseTrack, stance: Stance, off_body: np.ndarray) -> None:
    """Add a body-frame offset (n, 3) to the pelvis."""
    track.pelvis += yaw_rotate(stance.yaw, off_body)


def action_frames(action: Action, tempo: float) -> int:
    """Frames an action lasts at 20 fps, from its parameters and the clip's tempo (>1 = faster)."""
    k = action.kind
    seconds: float
    if k in ("walk", "jog", "run", "walk_backward"):
        table = {
            "walk": WALK_SPEED,
            "jog": JOG_SPEED,
            "run": RUN_SPEED,
            "walk_backward": BACKWARD_SPEED,
        }
        speed = table[k][action.speed or "normal"] * tempo
        seconds = action.distance_m / speed + 0.7
    elif k == "side_step":
        seconds = action.distance_m / (0.55 * tempo) + 0.6
    elif k == "turn":
        seconds = 0.6 + action.angle_deg / (150.0 * tempo)
    elif k == "walk_circle":
        speed = WALK_SPEED[action.speed or "normal"] * 0.85 * tempo
        seconds = 2 * math.pi * CIRCLE_RADIUS / speed + 0.6
    elif k == "spin":
        seconds = 1.6 / tempo
    elif k in ("jump_in_place",):
        seconds = action.reps * 1.0 / tempo + 0.3
    elif k == "jump_forward":
        seconds = 1.5 / tempo
    elif k == "hop":
        seconds = 0.9 + action.reps * 0.5 / tempo
    elif k == "jumping_jacks":
        seconds = action.reps * 1.1 / tempo + 0.3
    elif k == "squat":
        seconds = action.reps * 1.8 / tempo + 0.2
    elif k == "crouch":
        seconds = 3.2 / tempo
    elif k in ("sit_down", "stand_up"):
        seconds = 2.2 / tempo
    elif k == "step_up":
        seconds = 1.8 / tempo
    elif k == "kick":
        seconds = 1.7 / tempo
    elif k == "punch":
        seconds = 0.8 + action.reps * 0.6 / tempo
    elif k == "throw":
        seconds = 2.0 / tempo
    elif k == "wave":
        seconds = 1.2 + action.reps * 0.5 / tempo
    elif k == "raise_arms":
        seconds = 2.4 / tempo
    elif k == "clap":
        seconds = 0.9 + action.reps * 0.45 / tempo
    elif k == "bow":
        seconds = 2.4 / tempo
    elif k == "stretch":
        seconds = 5.0 / tempo
    elif k == "idle":
        seconds = 3.0 / tempo
    else:  # pragma: no cover - program.Action validates kinds
        raise ValueError(f"no duration rule for action {k!r}")
    return max(int(round(seconds * FPS)), 8)


CIRCLE_RADIUS = 1.0


# ----------------------------------------------------------------------------------------------
# The neutral pose and stationary tracks


def standing_track(stance: Stance, body: Body, n: int) -> PoseTrack:
    """n frames of the character standing (or sitting) still where `stance` says."""
    pelvis_y = stance.ground + (
        _seat_height(body) if stance.seated else body.standing_pelvis_height
    )
    xz = stance.xz
    if stance.seated:
        xz = xz + yaw_rotate(stance.yaw, np.array([0.0, 0.0, -SEAT_BACK]))[[0, 2]]
    pelvis = np.tile([xz[0], pelvis_y, xz[1]], (n, 1))
    zeros = np.zeros(n)
    upper_l, fore_l = np.tile(UPPER_REST, (n, 1)), np.tile(FORE_REST, (n, 1))
    if stance.seated:
        upper_l, fore_l = np.tile(SEATED_UPPER, (n, 1)), np.tile(SEATED_FORE, (n, 1))
    return PoseTrack(
        pelvis=pelvis,
        yaw=np.full(n, stance.yaw),
        lean=zeros.copy() + (0.08 if stance.seated else 0.0),
        side_bend=zeros.copy(),
        twist=zeros.copy(),
        nod=zeros.copy(),
        ankle_l=np.tile(stance.ankle_l, (n, 1)),
        ankle_r=np.tile(stance.ankle_r, (n, 1)),
        foot_yaw_l=np.full(n, stance.foot_yaw_l),
        foot_yaw_r=np.full(n, stance.foot_yaw_r),
        toe_l=zeros.copy(),
        toe_r=zeros.copy(),
        upper_l=upper_l,
        fore_l=fore_l,
        upper_r=mirror_x(upper_l),
        fore_r=mirror_x(fore_l),
    )


SEAT_BACK = 0.28  # the pelvis moves this far back when sitting down (m)
SEATED_UPPER = np.array([0.08, -0.75, 0.65])
SEATED_FORE = np.array([0.0, -0.35, 1.0])


def _seat_height(body: Body) -> float:
    return 0.55 * body.standing_pelvis_height


def nominal_ankles(xz: np.ndarray, yaw: np.ndarray, ground: float, body: Body, width: float = 1.0):
    """Ankle positions of a relaxed stance around pelvis xz (..., 2) facing yaw (...,)."""
    out = []
    for sign in (1.0, -1.0):
        off = np.array([sign * body.stance_half_width * width, 0.0, 0.0])
        pos = yaw_rotate(yaw, off)
        pos = pos + np.stack([xz[..., 0], np.zeros_like(xz[..., 0]), xz[..., 1]], -1)
        pos[..., 1] = ground + ANKLE_HEIGHT
        out.append(pos)
    return out[0], out[1]


def initial_stance(body: Body, seated: bool = False) -> Stance:
    xz = np.zeros(2)
    left, right = nominal_ankles(xz, np.float64(0.0), 0.0, body)
    return Stance(xz, 0.0, left, right, 0.0, 0.0, 0.0, seated)
