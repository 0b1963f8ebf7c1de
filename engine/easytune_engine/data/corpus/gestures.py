"""In-place actions of the corpus: jumps, squats, sitting, kicks, punches, waves and the rest.

Every generator has the same signature as `locomotion.locomotion`: it starts from the neutral pose
of `stance`, writes its channels over n frames, ends neutral again (or seated, for sit_down) and
returns the track with the updated stance. Times inside a generator are fractions of n, so the
program's tempo changes speed without changing shape.
"""

from __future__ import annotations

import math

import numpy as np

from .body import ANKLE_HEIGHT, Body, PoseTrack
from .poses import (
    FORE_REST,
    GRAVITY,
    SEAT_BACK,
    SEATED_FORE,
    SEATED_UPPER,
    UPPER_REST,
    Stance,
    _seat_height,
    _unit,
    bump,
    direction_keys,
    hang,
    keyframes,
    mirror_x,
    nominal_ankles,
    smoothstep,
    standing_track,
    yaw_rotate,
)
from .program import Action

FPS = 20.0


def _body_offset(stance: Stance, off: np.ndarray) -> np.ndarray:
    """World position of a body-frame offset (..., 3) from the pelvis's ground point."""
    world = yaw_rotate(stance.yaw, off)
    return world + np.array([stance.xz[0], 0.0, stance.xz[1]])


def _set_arm(track: PoseTrack, left: bool, upper: np.ndarray, fore: np.ndarray) -> None:
    if left:
        track.upper_l[:], track.fore_l[:] = upper, fore
    else:
        track.upper_r[:], track.fore_r[:] = mirror_x(upper), mirror_x(fore)


def _arms_for(side: str) -> tuple[bool, ...]:
    return {"left": (True,), "right": (False,), "both": (True, False)}[side]


def _shift_pelvis(track: PoseTrack, stance: Stance, off_body: np.ndarray) -> None:
    """Add a body-frame offset (n, 3) to the pelvis."""
    track.pelvis += yaw_rotate(stance.yaw, off_body)


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
    _set_arm(track, True, up, fore)
    _set_arm(track, False, up, fore)


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
    _shift_pelvis(track, stance, shift)
    track.pelvis[:, 1] += offset
    stand, free = (track.ankle_l, track.ankle_r) if on_left else (track.ankle_r, track.ankle_l)
    stand[:, 1] += lift
    tuck = _body_offset(stance, np.array([-0.09 if on_left else 0.09, 0.0, -0.22]))
    tuck[1] = stance.ground + ANKLE_HEIGHT + 0.32
    free[:] = free + raise_amt[:, None] * (tuck - free) + lift[:, None] * np.array([0, 1.0, 0])
    out = _unit(UPPER_REST + raise_amt[:, None] * np.array([0.5, 0.35, 0.1]))
    _set_arm(track, True, out, np.tile(_unit(FORE_REST + np.array([0.1, 0.2, 0.3])), (n, 1)))
    _set_arm(track, False, out, np.tile(_unit(FORE_REST + np.array([0.1, 0.2, 0.3])), (n, 1)))
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
    _set_arm(track, True, upper, forearm)
    _set_arm(track, False, upper, forearm)
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
    _shift_pelvis(track, stance, np.stack([0 * down, 0 * down, -0.25 * depth * down], -1))
    track.lean += 1.1 * depth * down
    forward = np.array([0.12, -0.05, 1.0])
    upper = _unit(UPPER_REST + down[:, None] * (_unit(forward) - _unit(UPPER_REST)) * 1.0)
    fore = _unit(FORE_REST + down[:, None] * (_unit(forward) - _unit(FORE_REST)))
    _set_arm(track, True, upper, fore)
    _set_arm(track, False, upper, fore)
    return track, stance


def crouch(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    depth = rng.uniform(0.42, 0.52) * min(action.amplitude, 1.1)
    amt = keyframes(n, [0, 0.22 * n, 0.75 * n, n - 1], [0, 1, 1, 0])
    amt = amt + 0.03 * np.sin(np.linspace(0, 3 * np.pi, n)) * (amt > 0.9)
    track.pelvis[:, 1] -= depth * amt
    _shift_pelvis(track, stance, np.stack([0 * amt, 0 * amt, -0.2 * depth * amt], -1))
    track.lean += 0.9 * amt
    rest_u, rest_f = np.tile(UPPER_REST, (n, 1)), np.tile(FORE_REST, (n, 1))
    knees_u = np.array([0.1, -0.2, 1.0])
    knees_f = np.array([0.0, -0.5, 1.0])
    _set_arm(
        track,
        True,
        _unit(rest_u + amt[:, None] * (knees_u - rest_u)),
        _unit(rest_f + amt[:, None] * (knees_f - rest_f)),
    )
    _set_arm(
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
    _shift_pelvis(track, stance, np.stack([0 * amt, 0 * amt, -SEAT_BACK * amt], -1))
    track.lean[:] = lean
    upper = _unit(UPPER_REST + amt[:, None] * (SEATED_UPPER - UPPER_REST))
    fore = _unit(FORE_REST + amt[:, None] * (SEATED_FORE - FORE_REST))
    _set_arm(track, True, upper, fore)
    _set_arm(track, False, upper, fore)
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
    back = _body_offset(stance, np.array([0.0, 0.0, -0.25])) - _body_offset(stance, np.zeros(3))
    front = _body_offset(stance, np.array([0.0, 0.0, 0.6])) - _body_offset(stance, np.zeros(3))
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
    _shift_pelvis(
        track, stance, np.stack([(-0.06 if left else 0.06) * shift, 0 * shift, 0 * shift], -1)
    )
    track.lean -= 0.25 * w_front
    arms = _unit(UPPER_REST + shift[:, None] * np.array([0.6, 0.3, 0.2]))
    _set_arm(track, True, arms, np.tile(FORE_REST, (n, 1)))
    _set_arm(track, False, arms, np.tile(FORE_REST, (n, 1)))
    return track, stance


GUARD_UPPER = np.array([0.25, -0.55, 0.6])
GUARD_FORE = np.array([-0.2, 0.9, 0.3])


def punch(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    guard = keyframes(n, [0, 0.15 * n, 0.85 * n, n - 1], [0, 1, 1, 0])
    lead = int(0.15 * n) + 1
    tail = int(0.15 * n) + 1
    per = (n - lead - tail) / action.reps
    extend = np.zeros(n)
    for r in range(action.reps):
        a = lead + int(round(r * per))
        b = lead + int(round((r + 1) * per))
        m = b - a
        extend[a:b] = keyframes(m, [0, 0.1 * m, 0.35 * m, 0.45 * m, 0.9 * m], [0, 0, 1, 1, 0])
    punch_dir = np.array([-0.1, 0.02, 1.0])
    for arm_left in (True, False):
        active = arm_left == (action.side == "left") or action.side == "both"
        up = _unit(UPPER_REST + guard[:, None] * (GUARD_UPPER - UPPER_REST))
        fo = _unit(FORE_REST + guard[:, None] * (GUARD_FORE - FORE_REST))
        if active:
            up = _unit(up + extend[:, None] * (punch_dir - up) * 1.0)
            fo = _unit(fo + extend[:, None] * (punch_dir - fo) * 1.0)
        _set_arm(track, arm_left, up, fo)
    sign = 1.0 if action.side == "left" else -1.0
    if action.side != "both":
        track.twist -= sign * 0.3 * extend
    return track, stance


def throw(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    left = action.side == "left"
    t = [0, 0.3 * n, 0.42 * n, 0.5 * n, 0.65 * n, n - 1]
    upper = direction_keys(
        n,
        t,
        [
            UPPER_REST,
            [0.5, 0.55, -0.65],
            [0.45, 0.7, -0.4],
            [0.15, 0.35, 1.0],
            [-0.05, -0.6, 0.8],
            UPPER_REST,
        ],
    )
    fore = direction_keys(
        n,
        t,
        [
            FORE_REST,
            [0.0, 0.75, -0.6],
            [0.0, 0.9, 0.1],
            [0.0, 0.25, 1.0],
            [-0.3, -0.8, 0.5],
            FORE_REST,
        ],
    )
    _set_arm(track, left, upper, fore)
    sign = 1.0 if left else -1.0
    track.twist += sign * keyframes(n, t, [0, 0.45, 0.4, -0.35, -0.3, 0])
    track.lean += keyframes(n, t, [0, -0.1, -0.05, 0.25, 0.3, 0])
    return track, stance


def wave(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    lead = int(0.22 * n / (1 + 0.05 * action.reps))
    lead = max(lead, 8)
    raised = keyframes(n, [0, lead, n - lead, n - 1], [0, 1, 1, 0])
    wave_n = n - 2 * lead
    osc = np.zeros(n)
    osc[lead : n - lead] = np.sin(np.linspace(0, 2 * np.pi * action.reps, wave_n))
    up_raised = np.array([0.75, 0.55, 0.15])
    for arm_left in _arms_for(action.side):
        up = direction_keys(n, [0, lead], [UPPER_REST, up_raised])
        up = _unit(UPPER_REST + raised[:, None] * (up_raised - UPPER_REST))
        fo_target = np.stack([-0.05 + 0.45 * osc, np.ones(n), np.full(n, 0.15)], -1)
        # through "forearm forward" so the blend never passes near the zero vector
        via = np.array([0.0, 0.0, 1.0])
        first = np.clip(2 * raised, 0, 1)[:, None]
        second = np.clip(2 * raised - 1, 0, 1)[:, None]
        fo = _unit(_unit(FORE_REST + first * (via - FORE_REST)) * (1 - second) + second * fo_target)
        _set_arm(track, arm_left, up, fo)
    return track, stance


def raise_arms(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    t = [0, 0.15 * n, 0.3 * n, 0.45 * n, 0.62 * n, 0.78 * n, n - 1]
    ups = [
        UPPER_REST,
        [0.12, -0.1, 1.0],
        [0.12, 1.0, 0.05],
        [0.12, 1.0, 0.05],
        [0.12, 1.0, 0.05],
        [0.12, -0.1, 1.0],
        UPPER_REST,
    ]
    fores = [
        FORE_REST,
        [0.05, 0.0, 1.0],
        [0.05, 1.0, 0.05],
        [0.05, 1.0, 0.05],
        [0.05, 1.0, 0.05],
        [0.05, 0.0, 1.0],
        FORE_REST,
    ]
    for arm_left in _arms_for(action.side):
        _set_arm(track, arm_left, direction_keys(n, t, ups), direction_keys(n, t, fores))
    return track, stance


def clap(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    lead = max(int(0.2 * n / (1 + 0.1 * action.reps)), 7)
    ready = keyframes(n, [0, lead, n - lead, n - 1], [0, 1, 1, 0])
    closed = np.zeros(n)
    closed[lead : n - lead] = 0.5 * (
        1 - np.cos(np.linspace(0, 2 * np.pi * action.reps, n - 2 * lead))
    )
    up_ready = np.array([0.3, -0.3, 0.9])
    fo_open = np.array([0.35, 0.15, 0.95])
    fo_closed = np.array([-0.9, 0.12, 0.45])
    up = _unit(UPPER_REST + ready[:, None] * (up_ready - UPPER_REST))
    fo_target = fo_open + closed[:, None] * (fo_closed - fo_open)
    fo = _unit(FORE_REST + ready[:, None] * (fo_target - FORE_REST))
    _set_arm(track, True, up, fo)
    _set_arm(track, False, up, fo)
    return track, stance


def bow(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    depth = rng.uniform(0.6, 1.0) * min(action.amplitude, 1.1)
    amt = keyframes(n, [0, 0.1 * n, 0.4 * n, 0.62 * n, 0.92 * n, n - 1], [0, 0, 1, 1, 0, 0])
    track.lean[:] = depth * amt
    track.nod[:] = 0.25 * amt
    _shift_pelvis(track, stance, np.stack([0 * amt, 0 * amt, -0.08 * amt], -1))
    down = hang(track.lean)
    rest = np.tile(_unit(UPPER_REST), (n, 1))
    upper = _unit(rest + amt[:, None] * (down + np.array([0.1, 0, 0]) - rest))
    fore = _unit(np.tile(_unit(FORE_REST), (n, 1)) + amt[:, None] * (down - _unit(FORE_REST)))
    _set_arm(track, True, upper, fore)
    _set_arm(track, False, upper, fore)
    return track, stance


def stretch(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    t = [0, 0.15 * n, 0.3 * n, 0.45 * n, 0.6 * n, 0.75 * n, 0.87 * n, n - 1]
    arms_up = keyframes(n, t, [0, 1, 1, 1, 1, 1, 0, 0])
    first = 1.0 if rng.integers(2) else -1.0
    track.side_bend[:] = first * keyframes(n, t, [0, 0, 0.35, 0, -0.35, 0, 0, 0])
    overhead = np.array([0.15, 1.0, 0.0])
    up = _unit(UPPER_REST + arms_up[:, None] * (overhead - UPPER_REST))
    up = direction_keys(
        n, [0, 0.15 * n, 0.75 * n, 0.87 * n], [UPPER_REST, overhead, overhead, UPPER_REST]
    )
    fore = direction_keys(
        n, [0, 0.15 * n, 0.75 * n, 0.87 * n], [FORE_REST, [-0.25, 1, 0], [-0.25, 1, 0], FORE_REST]
    )
    _set_arm(track, True, up, fore)
    _set_arm(track, False, up, fore)
    return track, stance


def idle(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    f = np.arange(n) / FPS
    phase = rng.uniform(0, 2 * np.pi, size=4)
    env = smoothstep(np.minimum(np.minimum(f / 0.5, (f[-1] - f) / 0.5), 1.0))
    sway = 0.025 * np.sin(2 * np.pi * 0.35 * f + phase[0]) * env
    _shift_pelvis(track, stance, np.stack([sway, 0 * sway, 0 * sway], -1))
    track.side_bend += 0.03 * np.sin(2 * np.pi * 0.35 * f + phase[0]) * env
    track.nod += 0.1 * np.sin(2 * np.pi * 0.2 * f + phase[1]) * env
    track.twist += 0.08 * np.sin(2 * np.pi * 0.15 * f + phase[2]) * env
    return track, stance


GESTURES = {
    "jump_in_place": jump_in_place,
    "jump_forward": jump_forward,
    "hop": hop,
    "jumping_jacks": jumping_jacks,
    "squat": squat,
    "crouch": crouch,
    "sit_down": sit_down,
    "stand_up": stand_up,
    "step_up": step_up,
    "kick": kick,
    "punch": punch,
    "throw": throw,
    "wave": wave,
    "raise_arms": raise_arms,
    "clap": clap,
    "bow": bow,
    "stretch": stretch,
    "idle": idle,
}


def gesture(stance: Stance, body: Body, action: Action, n: int, rng: np.random.Generator):
    return GESTURES[action.kind](stance, body, action, n, rng)
