"""In-place actions of the corpus: jumps, squats, sitting, kicks, punches, waves and the rest.

Every generator has the same signature as `locomotion.locomotion`: it starts from the neutral pose
of `stance`, writes its channels over n frames, ends neutral again (or seated, for sit_down) and
returns the track with the updated stance. Times inside a generator are fractions of n, so the
program's tempo changes speed without changing shape.

The actions led by the arms and trunk are here; those led by the legs (jumps, hops, jumping jacks,
squats, crouching, sitting, stepping up, kicks) are in `lower_body.py`.
"""

from __future__ import annotations

import numpy as np

from .body import Body
from .lower_body import (
    crouch,
    hop,
    jump_forward,
    jump_in_place,
    jumping_jacks,
    kick,
    sit_down,
    squat,
    stand_up,
    step_up,
)
from .poses import (
    FORE_REST,
    FPS,
    UPPER_REST,
    Stance,
    _unit,
    arms_for,
    direction_keys,
    hang,
    keyframes,
    set_arm,
    shift_pelvis,
    smoothstep,
    standing_track,
)
from .program import Action

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
        set_arm(track, arm_left, up, fo)
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
    set_arm(track, left, upper, fore)
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
    for arm_left in arms_for(action.side):
        up = direction_keys(n, [0, lead], [UPPER_REST, up_raised])
        up = _unit(UPPER_REST + raised[:, None] * (up_raised - UPPER_REST))
        fo_target = np.stack([-0.05 + 0.45 * osc, np.ones(n), np.full(n, 0.15)], -1)
        # through "forearm forward" so the blend never passes near the zero vector
        via = np.array([0.0, 0.0, 1.0])
        first = np.clip(2 * raised, 0, 1)[:, None]
        second = np.clip(2 * raised - 1, 0, 1)[:, None]
        fo = _unit(_unit(FORE_REST + first * (via - FORE_REST)) * (1 - second) + second * fo_target)
        set_arm(track, arm_left, up, fo)
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
    for arm_left in arms_for(action.side):
        set_arm(track, arm_left, direction_keys(n, t, ups), direction_keys(n, t, fores))
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
    set_arm(track, True, up, fo)
    set_arm(track, False, up, fo)
    return track, stance


def bow(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    depth = rng.uniform(0.6, 1.0) * min(action.amplitude, 1.1)
    amt = keyframes(n, [0, 0.1 * n, 0.4 * n, 0.62 * n, 0.92 * n, n - 1], [0, 0, 1, 1, 0, 0])
    track.lean[:] = depth * amt
    track.nod[:] = 0.25 * amt
    shift_pelvis(track, stance, np.stack([0 * amt, 0 * amt, -0.08 * amt], -1))
    down = hang(track.lean)
    rest = np.tile(_unit(UPPER_REST), (n, 1))
    upper = _unit(rest + amt[:, None] * (down + np.array([0.1, 0, 0]) - rest))
    fore = _unit(np.tile(_unit(FORE_REST), (n, 1)) + amt[:, None] * (down - _unit(FORE_REST)))
    set_arm(track, True, upper, fore)
    set_arm(track, False, upper, fore)
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
    set_arm(track, True, up, fore)
    set_arm(track, False, up, fore)
    return track, stance


def idle(stance, body, action, n, rng):
    track = standing_track(stance, body, n)
    f = np.arange(n) / FPS
    phase = rng.uniform(0, 2 * np.pi, size=4)
    env = smoothstep(np.minimum(np.minimum(f / 0.5, (f[-1] - f) / 0.5), 1.0))
    sway = 0.025 * np.sin(2 * np.pi * 0.35 * f + phase[0]) * env
    shift_pelvis(track, stance, np.stack([sway, 0 * sway, 0 * sway], -1))
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
