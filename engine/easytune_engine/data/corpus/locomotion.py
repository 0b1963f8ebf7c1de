"""Corpus locomotion: one footstep planner behind walks, runs, side steps, turns and circles.

The caller gives the pelvis path on the ground (xz and heading per frame); the planner places
alternating footsteps along it. A foot lands where the path will carry the body half a stance later,
and stays exactly there until its next swing, so planted feet never slide.
"""

from __future__ import annotations

import math

import numpy as np

from .body import ANKLE_HEIGHT, Body, PoseTrack
from .poses import (
    BACKWARD,
    BACKWARD_SPEED,
    CIRCLE_RADIUS,
    FORE_REST,
    FPS,
    JOG,
    JOG_SPEED,
    RUN,
    RUN_SPEED,
    SIDE,
    SPIN,
    TURN,
    UPPER_REST,
    WALK,
    WALK_SPEED,
    Gait,
    Stance,
    _unit,
    mirror_x,
    nominal_ankles,
    smoothstep,
    standing_track,
    yaw_rotate,
)
from .program import Action


def _ramp_profile(n: int, ramp: int) -> np.ndarray:
    """Progress 0 -> 1 over n frames with smooth acceleration and deceleration ramps."""
    ramp = max(1, min(ramp, n // 3))
    weight = np.ones(n)
    up = smoothstep(np.linspace(0.0, 1.0, ramp + 2)[1:-1])
    weight[:ramp] = up
    weight[-ramp:] = up[::-1]
    weight[0] = 0.0
    progress = np.cumsum(weight)
    return progress / progress[-1]


def _envelope(n: int, ramp: int = 6) -> np.ndarray:
    f = np.arange(n, dtype=np.float64)
    return smoothstep(np.minimum(np.minimum(f / ramp, (n - 1 - f) / ramp), 1.0))


def plan_steps(
    stance: Stance,
    body: Body,
    xz: np.ndarray,
    yaw: np.ndarray,
    gait: Gait,
    tempo: float,
    first_left: bool,
    lift_scale: float = 1.0,
) -> PoseTrack:
    """Footsteps along a pelvis path. xz: (n, 2), yaw: (n,) -> a PoseTrack with legs and arms."""
    n = len(yaw)
    track = standing_track(stance, body, n)
    track.pelvis[:, 0], track.pelvis[:, 2] = xz[:, 0], xz[:, 1]
    track.yaw[:] = yaw

    span = float(n - 1)
    step_period = gait.step_period / tempo
    if gait.ref_speed > 0:  # cadence rises with speed (about as the square root, as in people)
        speed = float(np.sum(np.linalg.norm(np.diff(xz, axis=0), axis=-1))) / (n / FPS)
        step_period = gait.step_period * np.sqrt(gait.ref_speed / max(speed, 0.3))
    path_length = float(np.sum(np.linalg.norm(np.diff(xz, axis=0), axis=-1)))
    steps = max(
        2, int(round((n / FPS) / step_period)), int(np.ceil(path_length / gait.max_step)) + 1
    )
    period = span / steps
    swing = min(gait.swing_frac * period, 1.9 * period)
    frames = np.arange(n, dtype=np.float64)
    ground_y = stance.ground + ANKLE_HEIGHT
    nominal_l, nominal_r = nominal_ankles(xz, yaw, stance.ground, body)

    planted = {True: stance.ankle_l.copy(), False: stance.ankle_r.copy()}
    planted_yaw = {True: stance.foot_yaw_l, False: stance.foot_yaw_r}
    ankles = {True: track.ankle_l, False: track.ankle_r}
    foot_yaws = {True: track.foot_yaw_l, False: track.foot_yaw_r}
    toes = {True: track.toe_l, False: track.toe_r}
    swinging = {True: np.full(n, -1.0), False: np.full(n, -1.0)}  # swing phase u, -1 in stance
    first_landing = 0.0
    for k in range(steps):
        left = (k % 2 == 0) == first_left
        centre = (k + 0.5) * period
        start, end = max(centre - swing / 2, 0.0), min(centre + swing / 2, span)
        if k == 0:  # gait initiation: the first foot leaves at once ...
            start, end = 0.0, min(swing, span)
            first_landing = end
        elif k == 1:  # ... and the trailing foot follows as soon as it has landed
            start = min(first_landing + 1.0, start)
        # land a little before mid-stance: short reach in front, the heel roll covers the back
        land = n - 1 if k >= steps - 2 else int(round(min(centre + 0.8 * period, span)))
        target = (nominal_l if left else nominal_r)[land].copy()
        target_yaw = float(yaw[land])
        old, old_yaw = planted[left], planted_yaw[left]
        during = (frames >= start) & (frames <= end)
        u = (frames[during] - start) / max(end - start, 1e-6)
        # lift first, then travel: the foot is off the ground whenever it moves horizontally
        s = smoothstep((u - 0.08) / 0.84)[:, None]
        pos = old + (target - old) * s
        pos[:, 1] = ground_y + gait.lift * lift_scale * np.sin(np.pi * u)
        ankles[left][during] = pos
        foot_yaws[left][during] = old_yaw + (target_yaw - old_yaw) * s[:, 0]
        toes[left][during] = 0.25 * np.sin(np.pi * u)
        swinging[left][during] = u
        after = frames > end
        ankles[left][after] = target
        foot_yaws[left][after] = target_yaw
        planted[left], planted_yaw[left] = target, target_yaw

    if gait.heel_off:
        for left in (True, False):
            _heel_off(track, body, left, swinging[left])
    env = _envelope(n)
    phase = 2 * np.pi * (frames - 0.5 * period) / period
    if gait.bob >= 0:  # walking: highest in single support (mid-swing)
        bob = -gait.bob * 0.5 * (1 - np.cos(phase))
    else:  # running: highest in the flight phase
        bob = gait.bob * 0.5 * (1 + np.cos(phase))
    track.pelvis[:, 1] += bob * env
    track.lean[:] = gait.lean * env

    # Arms swing against the legs: the left arm follows the right foot and vice versa.
    forward = yaw_rotate(yaw, np.array([0.0, 0.0, 1.0]))  # (n, 3)
    for arm_left, upper, fore in (
        (True, track.upper_l, track.fore_l),
        (False, track.upper_r, track.fore_r),
    ):
        other = track.ankle_r if arm_left else track.ankle_l
        reach = np.sum((other - track.pelvis) * forward, axis=-1)
        swing_amt = np.clip(gait.arm_swing * reach / 0.45, -1.0, 1.0) * env
        up = np.stack([np.full(n, UPPER_REST[0]), np.full(n, -1.0), 0.65 * swing_amt], -1)
        bend = gait.elbow_bend * env
        fo = np.stack(
            [np.full(n, FORE_REST[0]), -1.0 + 0.5 * bend, FORE_REST[2] + bend + 0.7 * swing_amt], -1
        )
        if not arm_left:
            up, fo = mirror_x(up), mirror_x(fo)
        upper[:] = _unit(up)
        fore[:] = _unit(fo)
    return track


HEEL_OFF_MAX = 0.9  # rad: how far the heel rolls up over the planted toes in late stance


def _heel_off(track: PoseTrack, body: Body, left: bool, swing_u: np.ndarray) -> None:
    """Roll the foot over its planted toes while the body passes it (late stance, early swing).

    The toe joint stays where it is; the ankle rises and moves slightly forward. This lets the leg
    reach a trailing foot without dropping the pelvis, as heel lift does in human gait.
    """
    ankle = track.ankle_l if left else track.ankle_r
    foot_yaw = track.foot_yaw_l if left else track.foot_yaw_r
    toe = track.toe_l if left else track.toe_r
    forward = np.stack([np.sin(track.yaw), np.zeros_like(track.yaw), np.cos(track.yaw)], -1)
    behind = np.sum((track.pelvis - ankle) * forward, axis=-1)  # (n,) hip ahead of the ankle
    roll = HEEL_OFF_MAX * smoothstep((behind - 0.05) / 0.4)
    stance = swing_u < 0
    # hold the roll reached at lift-off and release it over the first part of the swing
    lift_off = np.zeros_like(roll)
    current = 0.0
    for f in range(len(roll)):
        if stance[f]:
            current = roll[f]
            lift_off[f] = current
        else:
            lift_off[f] = current * (1.0 - smoothstep(swing_u[f] / 0.6))
    flat = np.array([0.0, -0.06, body.foot_forward])
    c, s = np.cos(lift_off), np.sin(lift_off)
    # foot vector pitched toes-down by `lift_off`, in the foot's own frame
    pitched = np.stack([np.zeros_like(c), flat[1] * c - flat[2] * s, flat[1] * s + flat[2] * c], -1)
    delta = yaw_rotate(foot_yaw, np.broadcast_to(flat, pitched.shape) - pitched)  # ankle shift
    ankle += delta
    toe -= lift_off


def _end_stance(stance: Stance, track: PoseTrack, xz: np.ndarray) -> Stance:
    return Stance(
        xz=xz[-1].copy(),
        yaw=float(track.yaw[-1]),
        ankle_l=track.ankle_l[-1].copy(),
        ankle_r=track.ankle_r[-1].copy(),
        foot_yaw_l=float(track.foot_yaw_l[-1]),
        foot_yaw_r=float(track.foot_yaw_r[-1]),
        ground=stance.ground,
        seated=False,
    )


def _straight(stance: Stance, n: int, distance: float, direction: np.ndarray, ramp: int):
    progress = _ramp_profile(n, ramp)
    step = yaw_rotate(stance.yaw, direction)[[0, 2]]
    xz = stance.xz[None, :] + (distance * progress)[:, None] * step[None, :]
    return xz, np.full(n, stance.yaw)


def locomotion(
    stance: Stance, body: Body, action: Action, n: int, tempo: float, rng: np.random.Generator
) -> tuple[PoseTrack, Stance]:
    """Generate any locomotion action over n frames, starting from and updating `stance`."""
    kind = action.kind
    first_left = bool(rng.integers(2))
    lift = 1.0
    if kind in ("walk", "jog", "run", "walk_backward"):
        gait = {"walk": WALK, "jog": JOG, "run": RUN, "walk_backward": BACKWARD}[kind]
        direction = np.array([0.0, 0.0, -1.0 if kind == "walk_backward" else 1.0])
        ramp = {"walk": 12, "jog": 14, "run": 16, "walk_backward": 12}[kind]
        xz, yaw = _straight(stance, n, action.distance_m, direction, ramp)
        lift = action.amplitude
    elif kind == "side_step":
        gait = SIDE
        sign = 1.0 if action.side == "left" else -1.0
        xz, yaw = _straight(stance, n, action.distance_m, np.array([sign, 0.0, 0.0]), 8)
        first_left = action.side == "left"
    elif kind in ("turn", "spin"):
        gait = TURN if kind == "turn" else SPIN
        sign = 1.0 if action.side == "left" else -1.0
        angle = math.radians(action.angle_deg) if kind == "turn" else 2 * math.pi
        yaw = stance.yaw + sign * angle * _ramp_profile(n, 6)
        xz = np.tile(stance.xz, (n, 1))
        first_left = action.side == "left"
    elif kind == "walk_circle":
        gait = WALK
        sign = 1.0 if action.side == "left" else -1.0
        arc = 2 * math.pi * CIRCLE_RADIUS * _ramp_profile(n, 8)  # arc length walked
        yaw = stance.yaw + sign * arc / CIRCLE_RADIUS
        ds = np.diff(arc, prepend=0.0)
        heading = np.stack([np.sin(yaw), np.cos(yaw)], -1)  # (n, 2) forward in xz
        xz = stance.xz[None, :] + np.cumsum(heading * ds[:, None], axis=0)
        first_left = action.side != "left"
    else:
        raise ValueError(f"{kind!r} is not a locomotion action")
    track = plan_steps(stance, body, xz, yaw, gait, tempo, first_left, lift)
    return track, _end_stance(stance, track, xz)


LOCOMOTION_ACTIONS = (
    "walk",
    "jog",
    "run",
    "walk_backward",
    "side_step",
    "turn",
    "spin",
    "walk_circle",
)
SPEED_TABLES = {
    "walk": WALK_SPEED,
    "jog": JOG_SPEED,
    "run": RUN_SPEED,
    "walk_backward": BACKWARD_SPEED,
}
