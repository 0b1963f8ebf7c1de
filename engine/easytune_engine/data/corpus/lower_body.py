"""In-place actions of the corpus led by the legs: jumps, squats, sitting, stepping up, kicks.

jump_in_place, jump_forward, hop, jumping_jacks, squat, crouch, sit_down, stand_up, step_up and
kick. Same generator signature and conventions as `gestures.py`, which dispatches to them.
"""

from __future__ import annotations

import math

import numpy as np

from .body import ANKLE_HEIGHT, Body, PoseTrack
from .poses import (
    FORE_REST,
    FPS,
    GRAVITY,
    SEAT_BACK,
    SEATED_FORE,
    SEATED_UPPER,
    UPPER_REST,
    Stance,
    _seat_height,
    _unit,
    body_offset,
    bump,
    direction_keys,
    keyframes,
    nominal_ankles,
    set_arm,
    shift_pelvis,
    smoothstep,
    standing_track,
    yaw_rotate,
)


def _ballistic(n_flight: int, apex: float) -> np.ndarray:
    """Pelvis rise over a flight phase of n_flight frames peaking at `apex`: (n_flight,)."""
    u = np.linspace(0.0, 1.0, n_flight)
    return 4.0 * apex * u * (1.0 - u)


def _jump_profile(n: int, reps: int, apex: float, crouch: float) -> tuple[np.ndarray, np.ndarray]:
    """Pelvis height offset and foot lift over n frames for `reps` jumps, plus flight mask."""
    offset = np.zeros(n)
    flight = np.zeros(n, dtype=bool)
    per = n / reps
    t_flight = 2.0 * math.sqrt(2.0 * apex / GRAVITY)
    n_fl = max(int(round(t_flight * FPS)), 4)
    for r in range(reps):
        a = int(round(r * per))
        b = int(round((r + 1) * per))
        length = b - a
        takeoff = a + max(int(0.38 * length) - n_fl // 2, 3)
        land = min(takeoff + n_fl, b - 3)
        local = np.arange(a, b)
        # crouch before take-off, rise, flight, absorb, recover
        pre = keyframes(takeoff - a, [0, 0.6 * (takeoff - a), takeoff - a - 1], [0, -crouch, 0.02])
        offset[a:takeoff] = pre
        offset[takeoff:land] = 0.02 + _ballistic(land - takeoff, apex)
        post_n = b - land
        offset[land:b] = keyframes(
            post_n, [0, 0.35 * post_n, post_n - 1], [0.02, -0.8 * crouch, 0.0]
        )
        flight[takeoff:land] = True
        del local
    lift = np.where(flight, offset - 0.02, 0.0)
    return offset, np.maximum(lift, 0.0)


def _arms_up_on_jump(track: PoseTrack, lift: np.ndarray, amount: float = 1.0) -> None:
    raise_ = np.clip(lift / max(lift.max(), 1e-6), 0.0, 1.0)
    kernel = np.hanning(9) / np.hanning(9).sum()  # spread the swing over the push-off and landing
    raise_ = np.convolve(np.pad(raise_, 4, mode="edge"), kernel, mode="valid")[:, None] * amount
    up = _unit(UPPER_REST + raise_ * np.array([0.1, 0.9, 0.9]))
    fore = _unit(FORE_REST + raise_ * np.array([0.0, 1.0, 0.6]))
    set_arm(track, True, up, fore)
    set_arm(track, False, up, fore)


def jump_in_place(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    apex = rng.uniform(0.15, 0.3) * action.amplitude
    offset, lift = _jump_profile(n, action.reps, apex, 0.12)
    track.pelvis[:, 1] += offset
    track.ankle_l[:, 1] += lift
    track.ankle_r[:, 1] += lift
    track.lean += 0.3 * np.clip(-offset, 0, None) / 0.12 * 0.5
    _arms_up_on_jump(track, lift)
    return track, stance


def jump_forward(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    apex = rng.uniform(0.15, 0.25) * action.amplitude
    offset, lift = _jump_profile(n, 1, apex, 0.14)
    track.pelvis[:, 1] += offset
    track.ankle_l[:, 1] += lift
    track.ankle_r[:, 1] += lift
    air = np.nonzero(lift > 0)[0]
    a, b = (air[0] - 1, air[-1] + 1) if len(air) else (n // 3, n // 2)
    progress = np.clip((np.arange(n) - a) / max(b - a, 1), 0.0, 1.0)
    travel = yaw_rotate(stance.yaw, np.array([0.0, 0.0, action.distance_m]))
    track.pelvis += progress[:, None] * travel
    feet_progress = smoothstep(progress)[:, None]
    track.ankle_l[:, [0, 2]] += feet_progress * travel[[0, 2]]
    track.ankle_r[:, [0, 2]] += feet_progress * travel[[0, 2]]
    track.lean += 0.35 * bump(np.clip(np.arange(n) / max(b, 1), 0, 1))
    _arms_up_on_jump(track, lift)
    end = Stance(
        xz=stance.xz + travel[[0, 2]],
        yaw=stance.yaw,
        ankle_l=track.ankle_l[-1].copy(),
        ankle_r=track.ankle_r[-1].copy(),
        foot_yaw_l=stance.foot_yaw_l,
        foot_yaw_r=stance.foot_yaw_r,
        ground=stance.ground,
    )
    return track, end


def hop(stance, body, action, n, rng):
    """Hop on the `side` leg; the other foot is held up behind."""
    track = standing_track(stance, body, n)
    on_left = action.side == "left"
    lead = int(0.2 * n / (1 + 0.1 * action.reps))
    lead = max(min(lead, 8), 5)
    core = n - 2 * lead
    apex = rng.uniform(0.06, 0.12) * action.amplitude
    offset_core, lift_core = _jump_profile(core, action.reps, apex, 0.06)
    offset = np.concatenate([np.zeros(lead), offset_core, np.zeros(lead)])
    lift = np.concatenate([np.zeros(lead), lift_core, np.zeros(lead)])
    raise_amt = keyframes(n, [0, lead, n - lead - 1, n - 1], [0, 1, 1, 0])
    # the pelvis shifts over the standing leg
    shift = np.zeros((n, 3))
    shift[:, 0] = (0.06 if on_left else -0.06) * raise_amt
    shift_pelvis(track, stance, shift)
    track.pelvis[:, 1] += offset
    stand, free = (track.ankle_l, track.ankle_r) if on_left else (track.ankle_r, track.ankle_l)
    stand[:, 1] += lift
    tuck = body_offset(stance, np.array([-0.09 if on_left else 0.09, 0.0, -0.22]))
    tuck[1] = stance.ground + ANKLE_HEIGHT + 0.32
    free[:] = free + raise_amt[:, None] * (tuck - free) + lift[:, None] * np.array([0, 1.0, 0])
    out = _unit(UPPER_REST + raise_amt[:, None] * np.array([0.5, 0.35, 0.1]))
    set_arm(track, True, out, np.tile(_unit(FORE_REST + np.array([0.1, 0.2, 0.3])), (n, 1)))
    set_arm(track, False, out, np.tile(_unit(FORE_REST + np.array([0.1, 0.2, 0.3])), (n, 1)))
    return track, stance


def jumping_jacks(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    reps = action.reps
    apex = rng.uniform(0.06, 0.1)
    offset, lift = _jump_profile(n, 2 * reps, apex, 0.05)
    track.pelvis[:, 1] += offset
    # open (wide, arms up) during the first jump of each rep, close on the second
    opened = np.zeros(n)
    per = n / (2 * reps)
    for r in range(2 * reps):
        a, b = int(round(r * per)), int(round((r + 1) * per))
        air = np.nonzero(lift[a:b] > 0)[0]
        s, e = (a + air[0], a + air[-1]) if len(air) else (a, b)
        target = 1.0 if r % 2 == 0 else 0.0
        opened[s:] = target
        opened[s : e + 1] = (1 - target) + (2 * target - 1) * smoothstep(
            np.linspace(0, 1, e + 1 - s)
        )
    wide_l, wide_r = nominal_ankles(stance.xz, np.float64(stance.yaw), stance.ground, body, 2.8)
    for ankle, wide in ((track.ankle_l, wide_l), (track.ankle_r, wide_r)):
        ankle[:] = ankle + opened[:, None] * (wide - ankle)
        ankle[:, 1] += lift
    arms = np.zeros(n)  # arms move over each whole half-rep, not only in the air
    for r in range(2 * reps):
        a, b = int(round(r * per)), int(round((r + 1) * per))
        go = smoothstep(np.linspace(0, 1, b - a))
        arms[a:b] = go if r % 2 == 0 else 1 - go
    up = direction_keys(2, [0, 1], [UPPER_REST, [0.55, 0.85, 0.0]])
    fore = direction_keys(2, [0, 1], [FORE_REST, [0.2, 1.0, 0.0]])
    o = arms[:, None]
    upper = _unit(
        np.where(
            o < 0.5,
            up[0] + 2 * o * (np.array([1.0, 0.0, 0.0]) - up[0]),
            np.array([1.0, 0.0, 0.0]) + (2 * o - 1) * (up[1] - np.array([1.0, 0, 0])),
        )
    )
    forearm = _unit(
        fore[0] + o * (fore[1] - fore[0]) + np.array([0.6, 0, 0]) * bump(o[:, 0] / 1.0)[:, None]
    )
    set_arm(track, True, upper, forearm)
    set_arm(track, False, upper, forearm)
    return track, stance


def squat(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    depth = rng.uniform(0.3, 0.42) * action.amplitude
    down = np.zeros(n)
    per = (n - 4) / action.reps
    for r in range(action.reps):
        a, b = 2 + int(round(r * per)), 2 + int(round((r + 1) * per))
        down[a:b] = bump(np.linspace(0, 1, b - a)) ** 0.8
    track.pelvis[:, 1] -= depth * down
    shift_pelvis(track, stance, np.stack([0 * down, 0 * down, -0.25 * depth * down], -1))
    track.lean += 1.1 * depth * down
    forward = np.array([0.12, -0.05, 1.0])
    upper = _unit(UPPER_REST + down[:, None] * (_unit(forward) - _unit(UPPER_REST)) * 1.0)
    fore = _unit(FORE_REST + down[:, None] * (_unit(forward) - _unit(FORE_REST)))
    set_arm(track, True, upper, fore)
    set_arm(track, False, upper, fore)
    return track, stance


def crouch(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    depth = rng.uniform(0.42, 0.52) * min(action.amplitude, 1.1)
    amt = keyframes(n, [0, 0.22 * n, 0.75 * n, n - 1], [0, 1, 1, 0])
    amt = amt + 0.03 * np.sin(np.linspace(0, 3 * np.pi, n)) * (amt > 0.9)
    track.pelvis[:, 1] -= depth * amt
    shift_pelvis(track, stance, np.stack([0 * amt, 0 * amt, -0.2 * depth * amt], -1))
    track.lean += 0.9 * amt
    rest_u, rest_f = np.tile(UPPER_REST, (n, 1)), np.tile(FORE_REST, (n, 1))
    knees_u = np.array([0.1, -0.2, 1.0])
    knees_f = np.array([0.0, -0.5, 1.0])
    set_arm(
        track,
        True,
        _unit(rest_u + amt[:, None] * (knees_u - rest_u)),
        _unit(rest_f + amt[:, None] * (knees_f - rest_f)),
    )
    set_arm(
        track,
        False,
        _unit(rest_u + amt[:, None] * (knees_u - rest_u)),
        _unit(rest_f + amt[:, None] * (knees_f - rest_f)),
    )
    return track, stance


def _sit_channels(stance: Stance, body: Body, n: int, sitting_down: bool):
    """Pelvis, lean and arm channels for sitting down (or, reversed, standing up)."""
    stand_h = body.standing_pelvis_height
    seat_h = _seat_height(body)
    amt = keyframes(n, [0, 0.15 * n, 0.7 * n, n - 1], [0, 0, 1, 1])  # 0 standing -> 1 seated
    if not sitting_down:
        amt = amt[::-1].copy()
    lean = 0.08 * amt + 0.45 * bump(np.clip((amt - 0.0) / 1.0, 0, 1))
    track = standing_track(replace_seated(stance, False), body, n)
    track.pelvis[:, 1] = stance.ground + stand_h + (seat_h - stand_h) * amt
    shift_pelvis(track, stance, np.stack([0 * amt, 0 * amt, -SEAT_BACK * amt], -1))
    track.lean[:] = lean
    upper = _unit(UPPER_REST + amt[:, None] * (SEATED_UPPER - UPPER_REST))
    fore = _unit(FORE_REST + amt[:, None] * (SEATED_FORE - FORE_REST))
    set_arm(track, True, upper, fore)
    set_arm(track, False, upper, fore)
    return track


def replace_seated(stance: Stance, seated: bool) -> Stance:
    return Stance(
        stance.xz,
        stance.yaw,
        stance.ankle_l,
        stance.ankle_r,
        stance.foot_yaw_l,
        stance.foot_yaw_r,
        stance.ground,
        seated,
    )


def sit_down(stance, body, action, n, rng):
    return _sit_channels(stance, body, n, True), replace_seated(stance, True)


def stand_up(stance, body, action, n, rng):
    return _sit_channels(stance, body, n, False), replace_seated(stance, False)


def step_up(stance, body, action, n, rng):
    """Step forward onto a platform `height` high; the ground stays raised afterwards."""
    track = standing_track(stance, body, n)
    height = rng.uniform(0.18, 0.3)
    forward = 0.45
    lead_left = bool(rng.integers(2))
    f = np.arange(n, dtype=np.float64)
    travel = yaw_rotate(stance.yaw, np.array([0.0, 0.0, forward]))
    lead, trail = (track.ankle_l, track.ankle_r) if lead_left else (track.ankle_r, track.ankle_l)
    for ankle, (s, e) in ((lead, (0.1 * n, 0.42 * n)), (trail, (0.55 * n, 0.88 * n))):
        u = np.clip((f - s) / (e - s), 0, 1)
        start = ankle[0].copy()
        goal = start + travel + np.array([0.0, height, 0.0])
        # lift first, then travel, so the foot never scrapes along the floor or the step
        ankle[:] = start + smoothstep((u - 0.15) / 0.7)[:, None] * (goal - start)
        ankle[:, 1] = start[1] + height * smoothstep(u / 0.6) + 0.1 * np.sin(np.pi * u)
    body_u = keyframes(n, [0, 0.3 * n, 0.75 * n, n - 1], [0, 0, 1, 1])
    track.pelvis += body_u[:, None] * (travel + np.array([0.0, height, 0.0]))
    track.lean += 0.25 * bump(body_u)
    end = Stance(
        stance.xz + travel[[0, 2]],
        stance.yaw,
        track.ankle_l[-1].copy(),
        track.ankle_r[-1].copy(),
        stance.foot_yaw_l,
        stance.foot_yaw_r,
        stance.ground + height,
    )
    return track, end


def kick(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    left = action.side == "left"
    foot = track.ankle_l if left else track.ankle_r
    height = rng.uniform(0.45, 0.75) * action.amplitude
    base = foot[0].copy()
    back = body_offset(stance, np.array([0.0, 0.0, -0.25])) - body_offset(stance, np.zeros(3))
    front = body_offset(stance, np.array([0.0, 0.0, 0.6])) - body_offset(stance, np.zeros(3))
    t = [0, 0.12 * n, 0.32 * n, 0.47 * n, 0.55 * n, 0.85 * n, n - 1]
    # the foot leaves the ground before it travels and lands after it has come back
    w_back = keyframes(n, [0, 0.17 * n, 0.32 * n, 0.47 * n], [0, 0, 1, 0])
    w_front = keyframes(n, [0, 0.32 * n, 0.47 * n, 0.55 * n, 0.78 * n], [0, 0, 1, 1, 0])
    up = keyframes(n, t, [0, 0, 0.15, height, height, 0.0, 0.0])
    foot[:] = base + w_back[:, None] * back + w_front[:, None] * front
    foot[:, 1] = base[1] + up
    toe = track.toe_l if left else track.toe_r
    toe[:] = -0.5 * w_front
    shift = keyframes(n, [0, 0.12 * n, 0.85 * n, n - 1], [0, 1, 1, 0])
    shift_pelvis(
        track, stance, np.stack([(-0.06 if left else 0.06) * shift, 0 * shift, 0 * shift], -1)
    )
    track.lean -= 0.25 * w_front
    arms = _unit(UPPER_REST + shift[:, None] * np.array([0.6, 0.3, 0.2]))
    set_arm(track, True, arms, np.tile(FORE_REST, (n, 1)))
    set_arm(track, False, arms, np.tile(FORE_REST, (n, 1)))
    return track, stance
