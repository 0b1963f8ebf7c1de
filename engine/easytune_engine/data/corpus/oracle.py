"""Rule-based judge of motion against a program: does this clip do what its text says?

`judge(joints, actions)` looks only at joint positions (T, 22, 3) (metres, Y up, 20 fps, SMPL
order; see docs/motion.md): no segment timing and no body parameters. It is meant to grade
generated motion, so it is deliberately hand-written rather than learned; nothing a generator
could fit to.

How it works, in reading order:
1. `_Frames`: per-frame signals computed once per clip, in a frame that does not depend on where
   the clip starts or which way it faces: the floor (from the feet), the body's heading (from the
   hips), the pelvis path, foot clearance over the local ground, leg extension, trunk pitch and
   side bend, wrist positions in the body frame; and discrete events (flight phases, squat dips,
   punches, claps, waves, ...). Lengths are divided by the measured leg or arm length, so
   thresholds hold for any body size.
2. `_Span`: the same quantities summarised over candidate frame spans [s, e), vectorised over
   many spans at once (range-max tables and prefix sums), so the split search below is cheap.
3. Detectors, one per action type (`DETECTORS`): a list of named checks on a span, each a
   boolean array. An action passes on a span when every check passes. Besides what the action
   must do (travel, turn, count, side), every detector also checks that nothing else conspicuous
   happens (no flight in a walk, no hands overhead in a squat, ...): that is what rejects a clip
   whose program leaves an action out.
4. `judge`: a program of 2-3 actions is accepted when some ordered split of the clip, on a
   4-frame grid with every part at least half a second long, satisfies each action on its part.

`evaluate_oracle(n_clips, seed)` measures acceptance of clips with their own program and
rejection of clips paired with another clip's program, on freshly synthesised corpus clips.

Tolerances: distances within 35%, turn angles within 30 degrees, counts exact, speed labels
within -32%/+30% of the corpus's speed tables; verdicts do not change under rotation about Y,
translation, a floor offset or 5 mm of per-joint jitter. Limits: two consecutive actions of the
same kind (walk + walk) can be split anywhere, so their distances are only checked in total;
up to 1.8 s of standing still is allowed inside any action, so a short idle between two actions
can go unnoticed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from easytune_engine.data.corpus.locomotion import SPEED_TABLES
from easytune_engine.data.corpus.program import ACTION_TYPES, Action
from easytune_engine.motion import skeleton

FPS = 20.0
GRID = 4  # split points lie on multiples of this many frames
MIN_PART = 10  # frames: every part of a split lasts at least half a second

# Joint indices (docs/motion.md).
PELVIS, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 0, 1, 2, 4, 5, 7, 8
L_FOOT, R_FOOT, NECK, HEAD = 10, 11, 12, 15
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 16, 17, 18, 19, 20, 21

GROUND_WINDOW = 12  # frames: the local ground is the lowest foot point within 0.6 s
FLIGHT_CLEARANCE = 0.035  # leg lengths: both feet at least this high = airborne (about 2.7 cm)


# ----------------------------------------------------------------------------------------------
# Small helpers


def _smooth(x: np.ndarray, radius: int) -> np.ndarray:
    """Moving average along axis 0 over 2 * radius + 1 frames, edges padded: same shape."""
    if radius <= 0:
        return x
    pad = [(radius, radius)] + [(0, 0)] * (x.ndim - 1)
    c = np.cumsum(np.pad(x, pad, mode="edge"), axis=0)
    c = np.concatenate([np.zeros_like(c[:1]), c], axis=0)
    return (c[2 * radius + 1 :] - c[: -2 * radius - 1]) / (2 * radius + 1)


def _window_low(x: np.ndarray, back: int, ahead: int, rank: int) -> np.ndarray:
    """The rank-th smallest (0 = min) of x[t - back : t + ahead + 1] per frame t: (T, C) -> (T,).

    A low rank rather than the minimum, so that one jittery frame does not set the level.
    The clip's first and last frames stand in for frames beyond its ends.
    """
    padded = np.pad(x, [(back, ahead), (0, 0)], mode="edge")  # (T + back + ahead, C)
    win = np.lib.stride_tricks.sliding_window_view(padded, back + ahead + 1, axis=0)
    win = win.reshape(len(x), -1)  # (T, C * window)
    rank = min(rank, win.shape[1] - 1)
    return np.partition(win, rank, axis=1)[:, rank]


def _window_range(x: np.ndarray, radius: int) -> np.ndarray:
    """max - min of x over t +- radius frames, edges padded: (T,) -> (T,)."""
    win = np.lib.stride_tricks.sliding_window_view(np.pad(x, radius, mode="edge"), 2 * radius + 1)
    return win.max(axis=1) - win.min(axis=1)


def _masked_mean(x: np.ndarray, mask: np.ndarray, radius: int) -> np.ndarray:
    """Mean of x over the frames in `mask` within t +- radius (x itself where there are none)."""
    kernel = np.ones(2 * radius + 1)
    total = np.convolve(np.where(mask, x, 0.0), kernel, mode="same")
    count = np.convolve(mask.astype(np.float64), kernel, mode="same")
    return np.where(count > 0, total / np.maximum(count, 1.0), x)


def _runs(mask: np.ndarray, min_len: int = 1, max_gap: int = 0) -> np.ndarray:
    """[start, end) frame pairs (n, 2) of True runs, merging gaps <= max_gap, keeping >= min_len."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    runs = edges.reshape(-1, 2)
    if len(runs) > 1 and max_gap > 0:
        keep = [runs[0].copy()]
        for a, b in runs[1:]:
            if a - keep[-1][1] <= max_gap:
                keep[-1][1] = b
            else:
                keep.append(np.array([a, b]))
        runs = np.array(keep)
    return runs[(runs[:, 1] - runs[:, 0]) >= min_len] if len(runs) else runs.reshape(0, 2)


def _schmitt(
    x: np.ndarray, high: float, low: float, armed: bool = True, reset: np.ndarray | None = None
) -> np.ndarray:
    """Frames where x rises above `high` after having been below `low` (hysteresis): (n,) ints.

    With armed=False the first event also needs x below `low` first; frames in `reset` disarm.
    """
    above, below = x > high, x < low
    reset = np.zeros(len(x), dtype=bool) if reset is None else reset
    events = []
    for t in np.flatnonzero(above | below | reset):
        if reset[t]:
            armed = False
        elif below[t]:
            armed = True
        elif armed:
            events.append(t)
            armed = False
    return np.array(events, dtype=np.int64)


class _RangeTable:
    """O(1) max (or min) of x over any [s, e) after an O(T log T) sparse-table build."""

    def __init__(self, x: np.ndarray, high: bool = True):
        self.op = np.maximum if high else np.minimum
        pad = -np.inf if high else np.inf
        x = np.asarray(x, dtype=np.float64)
        rows = [x]  # row k: op over x[t : t + 2**k]
        k = 1
        while 2 * k <= len(x):
            rows.append(self.op(rows[-1][:-k], rows[-1][k:]))
            k *= 2
        self.table = np.full((len(rows), len(x)), pad)  # (levels, T)
        for i, row in enumerate(rows):
            self.table[i, : len(row)] = row

    def __call__(self, s: np.ndarray, e: np.ndarray) -> np.ndarray:
        k = np.floor(np.log2(np.maximum(e - s, 1))).astype(np.int64)
        return self.op(self.table[k, s], self.table[k, e - (1 << k)])


def _count_in(events: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """How many event frames fall in each [s, e)."""
    return np.searchsorted(events, e) - np.searchsorted(events, s)


# ----------------------------------------------------------------------------------------------
# 1. Per-frame signals


class _Frames:
    """Per-frame signals of one clip (T frames), invariant to the clip's start point and facing."""

    def __init__(self, joints: np.ndarray):
        j = joints  # (T, 22, 3) float64
        self.n = len(j)

        def length(a: int, b: int) -> np.ndarray:
            return np.linalg.norm(j[:, a] - j[:, b], axis=-1)

        # Body size: leg (hip-knee-ankle) and arm (shoulder-elbow-wrist) lengths.
        self.leg = float(np.median(length(L_HIP, L_KNEE) + length(L_KNEE, L_ANKLE)) / 2) + float(
            np.median(length(R_HIP, R_KNEE) + length(R_KNEE, R_ANKLE)) / 2
        )
        self.arm = float(np.median(length(L_SHOULDER, L_ELBOW) + length(L_ELBOW, L_WRIST)) / 2) + (
            float(np.median(length(R_SHOULDER, R_ELBOW) + length(R_ELBOW, R_WRIST)) / 2)
        )
        leg, arm = self.leg, self.arm

        # Heading from the hips (the upper body twists in punches and throws), averaged over
        # 7 frames against jitter; 0 faces +Z and positive yaw turns towards +X, the body's left.
        across = _smooth(j[:, R_HIP] - j[:, L_HIP], 3)  # (T, 3)
        self.yaw = np.unwrap(np.arctan2(across[:, 2], -across[:, 0]))  # (T,)
        self.fwd = np.stack([np.sin(self.yaw), np.cos(self.yaw)], -1)  # (T, 2) forward in xz
        self.left = np.stack([np.cos(self.yaw), -np.sin(self.yaw)], -1)  # (T, 2) body's left

        self.pelvis = j[:, PELVIS][:, [0, 2]]  # (T, 2)
        self.feet = 0.5 * (j[:, L_ANKLE] + j[:, R_ANKLE])[:, [0, 2]]  # (T, 2)
        step = np.linalg.norm(np.diff(self.pelvis, axis=0), axis=-1)
        self.path = np.concatenate([[0.0], np.cumsum(step)])  # (T,) pelvis path length
        self.speed = _smooth(np.concatenate([step[:1], step]) * FPS, 5)  # (T,) m/s over 0.55 s

        # Feet: lowest point of each foot over the local ground (lowest foot point nearby, so a
        # step onto a platform is not mistaken for flight), in leg lengths.
        low_l = np.minimum(j[:, L_ANKLE, 1], j[:, L_FOOT, 1])
        low_r = np.minimum(j[:, R_ANKLE, 1], j[:, R_FOOT, 1])
        low = np.stack([low_l, low_r], -1)  # (T, 2)
        w = GROUND_WINDOW
        # The ground under the body: the level both feet come back to within 0.6 s, looking back
        # and ahead; the higher of the two, so that stepping up onto a platform raises it.
        self.ground = np.maximum(_window_low(low, w, 0, 2), _window_low(low, 0, w, 2))  # (T,)
        self.clear_l = (low_l - self.ground) / leg  # (T,)
        self.clear_r = (low_r - self.ground) / leg
        self.flight = (self.clear_l > FLIGHT_CLEARANCE) & (self.clear_r > FLIGHT_CLEARANCE)
        self.foot_asym = np.abs(self.clear_l - self.clear_r)
        self.both_clear = np.minimum(self.clear_l, self.clear_r)
        # Feet in the body frame relative to the pelvis, in leg lengths: forward and lateral.
        rel_l = j[:, L_ANKLE][:, [0, 2]] - self.pelvis
        rel_r = j[:, R_ANKLE][:, [0, 2]] - self.pelvis
        self.ankle_fwd_l = np.sum(rel_l * self.fwd, -1) / leg
        self.ankle_fwd_r = np.sum(rel_r * self.fwd, -1) / leg
        self.spread = np.sum((j[:, L_ANKLE] - j[:, R_ANKLE])[:, [0, 2]] * self.left, -1) / leg

        # Legs: vertical hip-to-lowest-ankle distance in leg lengths (about 0.97 standing).
        hip_y = 0.5 * (j[:, L_HIP, 1] + j[:, R_HIP, 1])
        self.extension = (hip_y - np.minimum(j[:, L_ANKLE, 1], j[:, R_ANKLE, 1])) / leg
        # Staying low: the pelvis drop averaged over half a second (strides dip only briefly).
        self.low_hold = 1.0 - _smooth(self.extension, 5)
        # Pelvis horizontally behind the ankles (sitting back), leg lengths.
        self.sit_back = -np.sum((self.pelvis - self.feet) * self.fwd, -1) / leg

        # Trunk (pelvis -> neck) pitch forward and bend to the left, radians.
        trunk = _smooth(j[:, NECK] - j[:, PELVIS], 2)  # (T, 3), 5-frame average against jitter
        self.pitch = np.arctan2(np.sum(trunk[:, [0, 2]] * self.fwd, -1), trunk[:, 1])
        self.bend = np.arctan2(np.sum(trunk[:, [0, 2]] * self.left, -1), trunk[:, 1])
        # Bending forward with straight legs (a bow), as opposed to leaning into a squat.
        self.straight_pitch = np.where(self.extension > 0.85, self.pitch, 0.0)

        # Wrists relative to their shoulders, in arm lengths: up, forward, outward; (T, 2) with
        # column 0 the left hand and 1 the right.
        sh = j[:, [L_SHOULDER, R_SHOULDER]]
        wr = j[:, [L_WRIST, R_WRIST]]
        rel = wr - sh  # (T, 2, 3)
        self.hand_up = rel[..., 1] / arm
        self.hand_fwd = np.sum(rel[..., [0, 2]] * self.fwd[:, None], -1) / arm
        self.hand_over_head = (wr[..., 1] - j[:, HEAD, 1][:, None]) / arm  # (T, 2)
        self.hand_gap = np.linalg.norm(wr[:, 0] - wr[:, 1], axis=-1) / arm  # (T,)
        # Forearm across the body relative to the elbow (waving), arm lengths, + = outward.
        fore = wr - j[:, [L_ELBOW, R_ELBOW]]
        self.fore_out = np.sum(fore[..., [0, 2]] * self.left[:, None], -1) / arm * [1.0, -1.0]
        wrist_step = np.linalg.norm(np.diff(_smooth(wr, 2), axis=0), axis=-1) * FPS  # (T-1, 2)
        self.hand_speed = np.concatenate([wrist_step[:1], wrist_step]) / arm  # arm lengths / s

        # Standing still: upright, and no joint moving faster than 15 cm/s (5-frame average).
        moving = np.linalg.norm(np.diff(_smooth(j, 2), axis=0), axis=-1).max(axis=1) * FPS
        still = np.concatenate([moving[:1], moving]) < 0.15
        self.standing_still = still & (self.extension > 0.85) & (self.pitch < 0.2)  # (T,)

        self._events()
        self._tables: dict[tuple[str, bool], _RangeTable] = {}

    def _events(self) -> None:
        """Discrete events (frame numbers, sorted), each counted by the span it starts in."""
        ev: dict[str, np.ndarray] = {}
        flights = _runs(self.flight, min_len=1, max_gap=1)
        ev["flight"] = flights[:, 0]
        self.flight_runs = flights
        ev["still_flight"] = flights[self.speed[flights[:, 0]] < 0.5, 0]  # jumps, not strides
        ev["dip"] = _schmitt(-self.extension, -0.75, -0.88)
        for i, h in enumerate("lr"):
            # Gated frames get a value inside the hysteresis band: they neither count nor re-arm.
            level = np.abs(self.hand_up[:, i]) < 0.4
            ev[f"punch_{h}"] = _schmitt(np.where(level, self.hand_fwd[:, i], 0.8), 0.85, 0.72)
            ev[f"overhead_{h}"] = _schmitt(self.hand_over_head[:, i], 0.1, -0.2)
            # a wave: the forearm of a hand held up (and still) swings out and back in by 0.05
            # arm lengths either side of its average over about one wave (half a second)
            held = (self.hand_up[:, i] > 0.3) & (_window_range(self.hand_up[:, i], 4) < 0.15)
            sway = self.fore_out[:, i] - _masked_mean(self.fore_out[:, i], held, 5)
            ev[f"wave_{h}"] = _schmitt(-sway, 0.05, -0.05, False, ~held)
            # a kick: a foot high up in front while the body stays put (not a running stride)
            clear = (self.clear_l, self.clear_r)[i]
            fwd = (self.ankle_fwd_l, self.ankle_fwd_r)[i]
            still = self.speed < 0.6
            ev[f"kick_{h}"] = _schmitt(np.where(still, np.minimum(clear, fwd), 0.2), 0.3, 0.1)
        # a clap: hands in front come within half an arm after being apart by almost an arm
        front = np.minimum(self.hand_fwd[:, 0], self.hand_fwd[:, 1]) > 0.6
        ev["clap"] = _schmitt(np.where(front, -self.hand_gap, -0.7), -0.5, -0.95, False)
        ev["spread"] = _schmitt(self.spread, 0.55, 0.4)
        self.events = ev

    def signal(self, name: str) -> np.ndarray:
        """A per-frame signal by name; a `_l` / `_r` suffix picks the left / right column."""
        if name[-2:] in ("_l", "_r") and not hasattr(self, name):
            return getattr(self, name[:-2])[:, "lr".index(name[-1])]
        return getattr(self, name)

    def table(self, name: str, high: bool) -> _RangeTable:
        key = (name, high)
        if key not in self._tables:
            self._tables[key] = _RangeTable(self.signal(name), high)
        return self._tables[key]


# ----------------------------------------------------------------------------------------------
# 2. Quantities over spans


class _Span:
    """Summaries of a clip over K candidate spans [s, e), each an array (K,)."""

    def __init__(self, f: _Frames, s: np.ndarray, e: np.ndarray):
        self.f, self.s, self.e = f, np.asarray(s, np.int64), np.asarray(e, np.int64)
        self.last = self.e - 1

    def max(self, name: str) -> np.ndarray:
        return self.f.table(name, True)(self.s, self.e)

    def min(self, name: str) -> np.ndarray:
        return self.f.table(name, False)(self.s, self.e)

    def count(self, event: str) -> np.ndarray:
        return _count_in(self.f.events[event], self.s, self.e)

    def at_start(self, name: str, frames: int = 3) -> np.ndarray:
        """Mean of a signal over the span's first frames."""
        x = self.f.signal(name)
        idx = np.minimum(self.s[:, None] + np.arange(frames), self.last[:, None])
        return x[idx].mean(axis=1)

    def at_end(self, name: str, frames: int = 3) -> np.ndarray:
        x = self.f.signal(name)
        idx = np.maximum(self.last[:, None] - np.arange(frames), self.s[:, None])
        return x[idx].mean(axis=1)

    def count_below(self, name: str, threshold: np.ndarray) -> np.ndarray:
        """Frames of each span where a signal is below that span's threshold."""
        x = self.f.signal(name)
        t = np.arange(self.f.n)
        inside = (t >= self.s[:, None]) & (t < self.e[:, None])  # (K, T)
        return np.sum(inside & (x[None, :] < threshold[:, None]), axis=1)

    @cached_property
    def seconds(self) -> np.ndarray:
        return (self.e - self.s) / FPS

    def _displacement(self, xz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Net (forward, leftward) travel over the span, in the heading it starts with (m)."""
        d = xz[self.last] - xz[self.s]  # (K, 2)
        heading = self.f.fwd[self.s], self.f.left[self.s]
        return np.sum(d * heading[0], -1), np.sum(d * heading[1], -1)

    @cached_property
    def travel(self) -> tuple[np.ndarray, np.ndarray]:
        return self._displacement(self.f.pelvis)

    @cached_property
    def feet_travel(self) -> tuple[np.ndarray, np.ndarray]:
        return self._displacement(self.f.feet)

    @cached_property
    def turn(self) -> np.ndarray:
        """Net heading change, degrees, positive = to the left."""
        return np.degrees(self.f.yaw[self.last] - self.f.yaw[self.s])

    @cached_property
    def turn_spread(self) -> np.ndarray:
        """Largest heading deviation from the start heading within the span, degrees."""
        y0 = self.f.yaw[self.s]
        return np.degrees(np.maximum(self.max("yaw") - y0, y0 - self.min("yaw")))

    @cached_property
    def path(self) -> np.ndarray:
        return self.f.path[self.last] - self.f.path[self.s]

    def _frames_where(self, mask: np.ndarray) -> np.ndarray:
        c = np.concatenate([[0], np.cumsum(mask)])
        return c[self.e] - c[self.s]

    @cached_property
    def flight_frames(self) -> np.ndarray:
        return self._frames_where(self.f.flight)

    @cached_property
    def still_seconds(self) -> np.ndarray:
        return self._frames_where(self.f.standing_still) / FPS

    @cached_property
    def ground_travel(self) -> np.ndarray:
        """Feet travel (m) before the span's first flight and after its last (all if none)."""
        f = self.f
        runs = f.flight_runs
        first = np.searchsorted(runs[:, 0], self.s)  # first flight starting in the span
        last = np.searchsorted(runs[:, 0], self.e) - 1  # last one starting in it
        has = last >= first
        take_off = np.where(has, runs[np.minimum(first, len(runs) - 1), 0] if len(runs) else 0, 0)
        landing = np.where(has, runs[np.maximum(last, 0), 1] if len(runs) else 0, 0)
        take_off = np.clip(np.where(has, take_off, self.last), self.s, self.last)
        landing = np.clip(
            np.where(has, np.minimum(landing, self.last), self.last), self.s, self.last
        )
        before = np.linalg.norm(f.feet[take_off] - f.feet[self.s], axis=-1)
        after = np.linalg.norm(f.feet[self.last] - f.feet[landing], axis=-1)
        return before + after

    @cached_property
    def flight_share(self) -> np.ndarray:
        """Airborne fraction of the time spent moving at full speed (runs > jogs > walks)."""
        vmax = np.maximum(self.max("speed"), 0.3)
        cruising = np.maximum(self.path / vmax * FPS, 1.0)  # frames at full speed, equivalently
        return self.flight_frames / cruising


# ----------------------------------------------------------------------------------------------
# 3. Detectors

Checks = list[tuple[str, np.ndarray]]  # (what must hold, passes per span)
Measured = dict[str, np.ndarray]

# "Quiet" channels: things that happen in some actions and must not happen in the others, with
# the largest value an action that does not do them reaches. Detectors exempt what they do.
QUIET: dict[str, tuple[str, float]] = {
    "travel": ("net travel (m)", 0.2),
    "turning": ("heading deviation (deg)", 10.0),
    "flight": ("airborne frames", 1.0),
    "hands_up": ("hand height above the shoulder (arm lengths)", 0.05),
    "arms_forward": ("hand reach in front (arm lengths)", 0.8),
    "low": ("pelvis drop held for half a second (leg lengths)", 0.2),
    "pitch": ("trunk pitch with straight legs (rad)", 0.3),
    "foot_up": ("one foot raised (leg lengths)", 0.25),
    "spread": ("feet spread (leg lengths)", 0.5),
    "bend": ("trunk side bend (rad)", 0.15),
    "rise": ("ground level change (m)", 0.08),
    "claps": ("claps", 0.0),
    "waves": ("waves of a hand", 0.0),
    "kicks": ("kicks", 0.0),
    "still": ("time standing still (s)", 1.8),  # idle is longer; lead-ins and holds are shorter
}


def _quiet_value(sp: _Span, channel: str) -> np.ndarray:
    match channel:
        case "travel":
            return np.hypot(*sp.feet_travel)
        case "turning":
            return sp.turn_spread
        case "flight":
            return sp.flight_frames.astype(np.float64)
        case "hands_up":
            return np.maximum(sp.max("hand_up_l"), sp.max("hand_up_r"))
        case "arms_forward":
            return np.maximum(sp.max("hand_fwd_l"), sp.max("hand_fwd_r"))
        case "low":
            return sp.max("low_hold")
        case "pitch":
            return sp.max("straight_pitch")
        case "foot_up":
            return sp.max("foot_asym")
        case "spread":
            return sp.max("spread")
        case "bend":
            return np.maximum(sp.max("bend"), -sp.min("bend"))
        case "rise":
            f = sp.f
            return np.abs(f.ground[sp.last] - f.ground[sp.s])
        case "claps":
            return sp.count("clap").astype(np.float64)
        case "still":
            return sp.still_seconds
        case "kicks":
            return (sp.count("kick_l") + sp.count("kick_r")).astype(np.float64)
        case "waves":
            return np.maximum(sp.count("wave_l"), sp.count("wave_r")).astype(np.float64)
    raise ValueError(f"unknown quiet channel {channel!r}; valid: {', '.join(QUIET)}")


def _quiet(sp: _Span, m: Measured, checks: Checks, allow: Sequence[str] = (), **caps) -> None:
    """Append 'nothing else happens' checks for every channel not in `allow`."""
    for channel, (label, cap) in QUIET.items():
        if channel in allow:
            continue
        cap = caps.get(channel, cap)
        value = _quiet_value(sp, channel)
        m[f"quiet_{channel}"] = value
        checks.append((f"no {label} above {cap:g}", value <= cap))


def _within(x: np.ndarray, target: float, rel: float, floor: float = 0.0) -> np.ndarray:
    """|x - target| <= max(rel * |target|, floor)."""
    return np.abs(x - target) <= max(rel * abs(target), floor)


def _hands(side: str | None) -> tuple[str, ...]:
    return {"left": ("l",), "right": ("r",), "both": ("l", "r")}[side or "both"]


def _other(h: str) -> str:
    return "r" if h == "l" else "l"


DISTANCE_TOLERANCE = 0.35  # relative
ANGLE_TOLERANCE = 30.0  # degrees
SPIN_TOLERANCE = 40.0  # degrees either side of a full turn

# What the speed labels mean, m/s at tempo 1: the corpus's own locomotion tables. A clip's peak
# speed may be a third slower (short, fast stretches never reach full speed) or 30% faster
# (tempo) than its label says.
SPEEDS = SPEED_TABLES
SPEED_BAND = (0.68, 1.3)
CIRCLE_SPEED = 0.85  # circles are walked at this fraction of the walking speed
# A walk may show a few frames with both feet barely off the ground (a foot landing as the other
# lifts; corpus walks on a raised platform do this); jogs are airborne for 5 or more frames even
# over 3 m.
WALK_AIRBORNE_FRAMES = 3
RUN_SCORE = 0.73  # airborne share of the stride + 3 x trunk pitch (rad): runs above, jogs below


def _gait(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    """walk, jog, run, walk_backward: straight travel along (or against) the facing direction."""
    fwd, lat = sp.travel
    sign = -1.0 if a.kind == "walk_backward" else 1.0
    speed = sp.max("speed")
    nominal = SPEEDS[a.kind][a.speed or "normal"]
    m = {"forward_m": fwd, "lateral_m": lat, "peak_speed": speed}
    m |= {"flight_frames": sp.flight_frames, "flight_share": sp.flight_share}
    checks = [
        (
            f"travel {sign * a.distance_m:+g} m along the facing",
            _within(sign * fwd, a.distance_m, DISTANCE_TOLERANCE),
        ),
        ("little sideways travel", np.abs(lat) <= 0.2 * np.abs(fwd) + 0.3),
        ("one way only", sp.path <= 1.1 * np.abs(fwd) + 0.25),
        ("trunk upright", sp.max("pitch") <= 0.35),
        (
            f"{a.speed} speed ({nominal:g} m/s)",
            (speed >= SPEED_BAND[0] * nominal) & (speed <= SPEED_BAND[1] * nominal),
        ),
    ]
    if a.kind in ("walk", "walk_backward"):
        checks.append(("no flight phase", sp.flight_frames <= WALK_AIRBORNE_FRAMES))
        allow: tuple[str, ...] = ("travel", "flight")
        caps = {"foot_up": 0.3, "low": 0.4}
    else:
        # Runs spend more of each stride in the air and lean further forward than jogs.
        score = sp.flight_share + 3.0 * sp.max("pitch")
        m["run_score"] = score
        checks.append(("flight phases in the stride", sp.flight_frames >= 4))
        checks.append(("no jumps on the spot", sp.count("still_flight") == 0))
        m["ground_travel_m"] = sp.ground_travel
        checks.append(("airborne strides from start to end", sp.ground_travel <= 1.4))
        if a.kind == "jog":
            checks.append(("a jog, not a run", score < RUN_SCORE))
        else:
            checks.append(("a run, not a jog", score >= RUN_SCORE))
        allow = ("travel", "flight")
        caps = {"foot_up": 0.5, "low": 0.4 if a.kind == "jog" else 0.45}
    _quiet(sp, m, checks, allow, **caps)
    return m, checks


def _side_step(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    """Sideways travel towards `side` (left = the body's +X) without turning."""
    fwd, lat = sp.travel
    sign = 1.0 if a.side == "left" else -1.0
    m = {"lateral_m": lat, "forward_m": fwd}
    checks = [
        (
            f"travel {a.distance_m:g} m to the {a.side}",
            _within(sign * lat, a.distance_m, DISTANCE_TOLERANCE),
        ),
        ("little forward travel", np.abs(fwd) <= 0.1 * np.abs(lat) + 0.15),
    ]
    _quiet(sp, m, checks, ("travel", "spread"))
    return m, checks


def _turn(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    """turn, spin: heading change of `angle` (spin: 360) towards `side`, on the spot."""
    sign = 1.0 if a.side == "left" else -1.0
    angle = a.angle_deg if a.kind == "turn" else 360.0
    tol = ANGLE_TOLERANCE if a.kind == "turn" else SPIN_TOLERANCE
    m = {"turn_deg": sp.turn, "path_m": sp.path}
    checks = [
        (f"turn {angle:g} deg to the {a.side}", np.abs(sign * sp.turn - angle) <= tol),
        ("on the spot", sp.path <= 0.6),
    ]
    _quiet(sp, m, checks, ("turning", "spread"), travel=0.25)
    return m, checks


def _walk_circle(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    """A full circle (about 1 m radius) turning towards `side`, ending near the start."""
    sign = 1.0 if a.side == "left" else -1.0
    speed = sp.max("speed")
    nominal = CIRCLE_SPEED * SPEEDS["walk"][a.speed or "normal"]
    back = np.hypot(*sp.travel)
    m = {"turn_deg": sp.turn, "path_m": sp.path, "end_to_start_m": back, "peak_speed": speed}
    checks = [
        (f"turn a full circle to the {a.side}", np.abs(sign * sp.turn - 360.0) <= 60.0),
        ("walk about 2 pi m", (sp.path >= 4.0) & (sp.path <= 9.0)),
        ("end near the start", back <= 0.8),
        (
            f"{a.speed} speed",
            (speed >= SPEED_BAND[0] * nominal) & (speed <= SPEED_BAND[1] * nominal),
        ),
        ("no flight phase", sp.flight_frames <= WALK_AIRBORNE_FRAMES),
    ]
    _quiet(sp, m, checks, ("travel", "turning", "spread", "foot_up", "flight"), low=0.4)
    return m, checks


def _jumps(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    """jump_in_place, jump_forward: `reps` (forward: one) two-footed flights."""
    reps = a.reps if a.kind == "jump_in_place" else 1
    flights = sp.count("flight")
    clear = sp.max("both_clear")
    fwd, lat = sp.feet_travel
    m = {"flights": flights, "clearance": clear, "forward_m": fwd, "lateral_m": lat}
    checks = [
        (f"{reps} jump(s)", flights == reps),
        ("both feet clearly off the ground", clear >= 0.1),
        ("feet together (not hopping)", sp.max("foot_asym") <= 0.15),
        ("no more crouches than jumps", sp.count("dip") <= reps),
    ]
    if a.kind == "jump_forward":
        on_ground = sp.ground_travel
        m["travel_on_ground_m"] = on_ground
        checks.append(
            (f"land {a.distance_m:g} m forward", _within(fwd, a.distance_m, DISTANCE_TOLERANCE))
        )
        checks.append(("little sideways travel", np.abs(lat) <= 0.25))
        checks.append(("travel in the air only", on_ground <= 0.2))
        allow: tuple[str, ...] = ("flight", "travel", "arms_forward")
    else:
        allow = ("flight", "arms_forward")
    _quiet(sp, m, checks, allow, low=0.35)
    return m, checks


def _hop(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    """`reps` hops on the `side` foot while the other foot is held up."""
    stand, free = ("l", "r") if a.side == "left" else ("r", "l")
    flights = sp.count("flight")
    free_up = sp.max(f"clear_{free}")
    stand_up = sp.max(f"clear_{stand}")
    m = {"hops": flights, f"clearance_{free}": free_up, f"clearance_{stand}": stand_up}
    checks = [
        (f"{a.reps} hops", flights == a.reps),
        (f"the {'right' if free == 'r' else 'left'} foot held up", free_up >= 0.25),
        (f"hopping on the {a.side} foot", stand_up <= 0.25),
    ]
    _quiet(sp, m, checks, ("flight", "foot_up"), low=0.25)
    return m, checks


def _jumping_jacks(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    """`reps` jacks: each a jump out (feet apart, hands overhead) and a jump back in."""
    flights, spreads = sp.count("flight"), sp.count("spread")
    up = np.minimum(sp.count("overhead_l"), sp.count("overhead_r"))
    m = {"flights": flights, "spreads": spreads, "hands_overhead": up}
    checks = [
        (f"{2 * a.reps} jumps", flights == 2 * a.reps),
        (f"feet apart {a.reps} times", spreads == a.reps),
        (f"hands overhead {a.reps} times", up == a.reps),
    ]
    _quiet(sp, m, checks, ("flight", "hands_up", "spread"), low=0.25)
    return m, checks


def _squat(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    dips = sp.count("dip")
    m = {"dips": dips, "lowest_extension": sp.min("extension"), "pitch": sp.max("pitch")}
    checks = [
        (f"{a.reps} squat(s)", dips == a.reps),
        ("start standing", sp.at_start("extension") >= 0.85),
        ("trunk fairly upright (not a crouch)", sp.max("pitch") <= 0.55),
        ("stand up at the end", sp.at_end("extension") >= 0.85),
    ]
    _quiet(sp, m, checks, ("low", "arms_forward"), travel=0.35)
    return m, checks


def _crouch(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    low = sp.min("extension")
    m = {"lowest_extension": low, "pitch": sp.max("pitch"), "dips": sp.count("dip")}
    held = sp.count_below("extension", low + 0.12) / FPS
    m["low_hold_s"] = held
    checks = [
        ("go down low", low <= 0.6),
        ("once", sp.count("dip") == 1),
        ("hold it for a second", held >= 1.0),
        ("lean over the knees", sp.max("pitch") >= 0.5),
        ("stand up at the end", sp.at_end("extension") >= 0.85),
    ]
    _quiet(sp, m, checks, ("low",))
    return m, checks


def _sit(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    """sit_down / stand_up: from standing to seated (pelvis low and back, trunk upright) or back."""
    start, end = sp.at_start("extension"), sp.at_end("extension")
    seated_end = (end <= 0.65) & (sp.at_end("sit_back") >= 0.2) & (sp.at_end("pitch") <= 0.25)
    seated_start = (
        (start <= 0.65) & (sp.at_start("sit_back") >= 0.2) & (sp.at_start("pitch") <= 0.25)
    )
    m = {"start_extension": start, "end_extension": end}
    if a.kind == "sit_down":
        checks = [("start standing", start >= 0.85), ("end seated", seated_end)]
    else:
        checks = [("start seated", seated_start), ("end standing", end >= 0.85)]
    # the dip is counted where the pelvis goes down: not in a stand_up after a sit_down
    dips = sp.count("dip")
    checks.append(("one change of posture", (dips == 1) | ((dips == 0) & (a.kind == "stand_up"))))
    _quiet(sp, m, checks, ("low", "arms_forward"), travel=0.45)
    return m, checks


def _step_up(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    f = sp.f
    rise = f.ground[sp.last] - f.ground[sp.s]
    fwd, lat = sp.feet_travel
    m = {"rise_m": rise, "forward_m": fwd}
    checks = [
        ("both feet end on higher ground", rise >= 0.1),
        ("step forward", (fwd >= 0.15) & (fwd <= 0.9) & (np.abs(lat) <= 0.25)),
    ]
    _quiet(sp, m, checks, ("rise", "travel", "foot_up"), low=0.25, kicks=1)  # foot up in front
    return m, checks


def _kick(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    h = "l" if a.side == "left" else "r"
    kicks, others = sp.count(f"kick_{h}"), sp.count(f"kick_{_other(h)}")
    m = {"kicks": kicks, "other_foot_kicks": others, "foot_height": sp.max(f"clear_{h}")}
    checks = [
        (f"one kick with the {a.side} foot", kicks == 1),
        ("the other foot stays down", sp.max(f"clear_{_other(h)}") <= 0.1),
    ]
    _quiet(sp, m, checks, ("foot_up", "kicks"))
    return m, checks


def _punch(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    m: Measured = {}
    checks: Checks = []
    for h in "lr":
        n = sp.count(f"punch_{h}")
        m[f"punches_{h}"] = n
        want = a.reps if h in _hands(a.side) else 0
        checks.append(
            (f"{want} punch(es) with the {'left' if h == 'l' else 'right'} hand", n == want)
        )
    over_head = np.maximum(sp.max("hand_over_head_l"), sp.max("hand_over_head_r"))
    m["hand_over_head"] = over_head
    checks.append(("fists below the head", over_head <= -0.05))
    _quiet(sp, m, checks, ("arms_forward", "hands_up"))  # fists up in guard
    return m, checks


def _throw(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    h = "l" if a.side == "left" else "r"
    up, back = sp.max(f"hand_over_head_{h}"), sp.min(f"hand_fwd_{h}")
    ahead, fast = sp.max(f"hand_fwd_{h}"), sp.max(f"hand_speed_{h}")
    other = sp.max(f"hand_up_{_other(h)}")
    m = {"hand_over_head": up, "hand_behind": back, "hand_ahead": ahead, "hand_speed": fast}
    checks = [
        (f"{a.side} hand drawn back above the head", (up >= 0.1) & (back <= -0.4)),
        (f"{a.side} hand thrown forward fast", (ahead >= 0.7) & (fast >= 6.0)),
        ("the other hand stays down", other <= -0.5),
        ("one throw", sp.count(f"overhead_{h}") == 1),
    ]
    _quiet(sp, m, checks, ("hands_up", "arms_forward"), waves=1)  # the arm swings across
    return m, checks


def _wave(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    m: Measured = {}
    checks: Checks = []
    for h in "lr":
        name = "left" if h == "l" else "right"
        waves, up = sp.count(f"wave_{h}"), sp.max(f"hand_up_{h}")
        m[f"waves_{h}"], m[f"hand_up_{h}"] = waves, up
        if h in _hands(a.side):
            checks.append((f"{name} hand raised", (up >= 0.4) & (sp.count(f"overhead_{h}") <= 1)))
            checks.append((f"{a.reps} waves of the {name} hand", waves == a.reps))
        else:
            checks.append((f"{name} hand stays down", up <= -0.5))
    _quiet(sp, m, checks, ("hands_up", "waves"))
    return m, checks


def _raise_arms(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    m: Measured = {}
    checks: Checks = []
    for h in "lr":
        name = "left" if h == "l" else "right"
        up = sp.max(f"hand_over_head_{h}")
        m[f"over_head_{h}"] = up
        if h in _hands(a.side):
            checks.append((f"{name} hand above the head", up >= 0.3))
            checks.append((f"{name} hand raised once", sp.count(f"overhead_{h}") == 1))
            checks.append((f"{name} hand not waving", sp.count(f"wave_{h}") == 0))
            checks.append((f"{name} hand not drawn back", sp.min(f"hand_fwd_{h}") >= -0.3))
        else:
            checks.append((f"{name} hand stays down", sp.max(f"hand_up_{h}") <= -0.5))
    _quiet(sp, m, checks, ("hands_up", "arms_forward"))
    return m, checks


def _clap(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    claps = sp.count("clap")
    m = {"claps": claps, "closest_hands": sp.min("hand_gap")}
    checks = [(f"{a.reps} claps", claps == a.reps)]
    _quiet(sp, m, checks, ("arms_forward", "claps"))
    return m, checks


def _bow(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    pitch = sp.max("pitch")
    m = {"pitch": pitch, "lowest_extension": sp.min("extension")}
    checks = [
        ("bend the trunk forward", pitch >= 0.33),
        ("upright again at the end", sp.at_end("pitch") <= 0.15),
    ]
    # hands_up is exempt: the corpus's bows swing the arms back and up behind the body
    # (poses.hang turns them by twice the lean instead of letting them hang).
    _quiet(sp, m, checks, ("pitch", "hands_up"), low=0.12)
    return m, checks


def _stretch(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    up = np.minimum(sp.max("hand_over_head_l"), sp.max("hand_over_head_r"))
    left, right = sp.max("bend"), -sp.min("bend")
    m = {"hands_over_head": up, "bend_left": left, "bend_right": right}
    checks = [
        ("both hands above the head", up >= 0.3),
        ("bend to both sides", (left >= 0.15) & (right >= 0.15)),
    ]
    _quiet(sp, m, checks, ("hands_up", "bend"), waves=1)  # the forearms sway overhead
    return m, checks


def _idle(sp: _Span, a: Action) -> tuple[Measured, Checks]:
    speed = np.maximum(sp.max("hand_speed_l"), sp.max("hand_speed_r"))
    m = {"hand_speed": speed, "seconds": sp.seconds}
    checks = [("hands still", speed <= 1.5), ("at least a second", sp.seconds >= 1.0)]
    _quiet(sp, m, checks, ("still",), arms_forward=0.5, low=0.1, pitch=0.2)
    return m, checks


Detector = Callable[[_Span, Action], tuple[Measured, Checks]]
DETECTORS: dict[str, Detector] = {
    "walk": _gait,
    "jog": _gait,
    "run": _gait,
    "walk_backward": _gait,
    "side_step": _side_step,
    "turn": _turn,
    "walk_circle": _walk_circle,
    "spin": _turn,
    "jump_in_place": _jumps,
    "jump_forward": _jumps,
    "hop": _hop,
    "jumping_jacks": _jumping_jacks,
    "squat": _squat,
    "crouch": _crouch,
    "sit_down": _sit,
    "stand_up": _sit,
    "step_up": _step_up,
    "kick": _kick,
    "punch": _punch,
    "throw": _throw,
    "wave": _wave,
    "raise_arms": _raise_arms,
    "clap": _clap,
    "bow": _bow,
    "stretch": _stretch,
    "idle": _idle,
}


def detector_names() -> tuple[str, ...]:
    """Action types the oracle can judge (all of program.ACTION_TYPES)."""
    return tuple(k for k in ACTION_TYPES if k in DETECTORS)


# ----------------------------------------------------------------------------------------------
# 4. Judging a clip


@dataclass(frozen=True)
class SegmentVerdict:
    """How one action fared on its part of the clip."""

    name: str  # the action type
    passed: bool
    start: int  # frame span [start, end) of the clip used for this action
    end: int
    measured: dict[str, float] = field(default_factory=dict)
    failed: tuple[str, ...] = ()  # the checks that did not hold


@dataclass(frozen=True)
class Verdict:
    """The oracle's decision on a clip; `segments` follow the program's order."""

    accepted: bool
    segments: tuple[SegmentVerdict, ...]
    reason: str = ""  # empty when accepted


def _check_input(joints: np.ndarray, actions: Sequence[Action]) -> np.ndarray:
    j = np.asarray(joints)
    if j.ndim != 3 or j.shape[1:] != (skeleton.NUM_JOINTS, 3):
        raise ValueError(f"joints must have shape (T, {skeleton.NUM_JOINTS}, 3), got {j.shape}")
    if not (np.issubdtype(j.dtype, np.floating) or np.issubdtype(j.dtype, np.integer)):
        raise ValueError(f"joints must be real numbers, got dtype {j.dtype}")
    if not np.all(np.isfinite(j)):
        raise ValueError("joints contain NaN or infinite values")
    if len(actions) == 0:
        raise ValueError("actions must name at least one action")
    for a in actions:
        if not isinstance(a, Action):
            raise ValueError(f"actions must be program.Action values, got {type(a).__name__}")
    if len(j) < MIN_PART * len(actions):
        raise ValueError(
            f"{len(actions)} action(s) need at least {MIN_PART * len(actions)} frames, got {len(j)}"
        )
    return j.astype(np.float64)


def _evaluate(f: _Frames, a: Action, s: np.ndarray, e: np.ndarray) -> tuple[Measured, Checks]:
    return DETECTORS[a.kind](_Span(f, s, e), a)


def _segment(f: _Frames, a: Action, s: int, e: int) -> SegmentVerdict:
    m, checks = _evaluate(f, a, np.array([s]), np.array([e]))
    failed = tuple(label for label, ok in checks if not ok[0])
    measured = {k: round(float(v[0]), 3) for k, v in m.items()}
    return SegmentVerdict(a.kind, not failed, s, e, measured, failed)


def _best_split(f: _Frames, actions: Sequence[Action]) -> list[tuple[int, int]]:
    """The ordered split of the clip that passes the most actions (then the most checks).

    Dynamic programming over split points: best[b] scores the best split of the actions so far
    that ends at bounds[b]; a part that passes outweighs any number of passed checks.
    """
    n, t = len(actions), f.n
    if n == 1:
        return [(0, t)]
    # Candidate boundaries: the clip's ends and grid points leaving MIN_PART on either side,
    # never inside a flight phase.
    bounds = np.unique([0, *range(GRID * -(-MIN_PART // GRID), t - MIN_PART + 1, GRID), t])
    airborne = f.flight[np.minimum(bounds, t - 1)] & f.flight[np.maximum(bounds - 1, 0)]
    bounds = bounds[~airborne | (bounds == 0) | (bounds == t)]
    nb = len(bounds)
    p_idx, q_idx = np.triu_indices(nb, k=1)  # every span [bounds[p], bounds[q])
    long_enough = bounds[q_idx] - bounds[p_idx] >= MIN_PART
    even = [(t * i // n, t * (i + 1) // n) for i in range(n)]  # when no split fits at all

    best = np.full(nb, -np.inf)
    best[0] = 0.0
    parents = []
    for i, a in enumerate(actions):
        ok = long_enough & np.isfinite(best[p_idx])
        ok &= t - bounds[q_idx] >= (n - 1 - i) * MIN_PART
        ok &= (bounds[q_idx] == t) if i == n - 1 else (bounds[q_idx] < t)
        p, q = p_idx[ok], q_idx[ok]
        if len(p) == 0:
            return even
        _, checks = _evaluate(f, a, bounds[p], bounds[q])
        passed = np.stack([c for _, c in checks]).astype(np.float64)  # (checks, K)
        score = best[p] + 1000.0 * passed.all(axis=0) + passed.mean(axis=0)
        order = np.lexsort((score, q))  # by end point, then score: the last of each end wins
        last = order[np.r_[q[order][1:] != q[order][:-1], True]]
        best = np.full(nb, -np.inf)
        best[q[last]] = score[last]
        parent = np.zeros(nb, dtype=np.int64)
        parent[q[last]] = p[last]
        parents.append(parent)
    if not np.isfinite(best[-1]):
        return even

    ends, b = [], nb - 1  # walk back from the clip's end
    for parent in reversed(parents):
        ends.append(b)
        b = parent[b]
    ends.reverse()
    starts = [0, *ends[:-1]]
    return [(int(bounds[s]), int(bounds[e])) for s, e in zip(starts, ends, strict=True)]


def judge(joints: np.ndarray, actions: Sequence[Action]) -> Verdict:
    """Does the clip (T, 22, 3) perform `actions` in this order? See the module docstring.

    Raises ValueError for joints that are not (T, 22, 3) finite numbers, for an empty program
    and for a clip too short to give every action half a second.
    """
    j = _check_input(joints, actions)
    f = _Frames(j)
    segments = tuple(
        _segment(f, a, s, e) for a, (s, e) in zip(actions, _best_split(f, actions), strict=True)
    )
    accepted = all(s.passed for s in segments)
    reason = "; ".join(
        f"{s.name} (frames {s.start}-{s.end}): {', '.join(s.failed)}"
        for s in segments
        if not s.passed
    )
    return Verdict(accepted, segments, reason)


# ----------------------------------------------------------------------------------------------
# 5. Measuring the oracle on the corpus


def _perturbed(actions: Sequence[Action], rng: np.random.Generator) -> list[Action] | None:
    """The same action kinds with one side, count, angle or distance changed (None if none can)."""
    options = [
        (i, name)
        for i, a in enumerate(actions)
        for name in ("side", "reps", "angle_deg", "distance_m")
        if getattr(a, name) is not None
    ]
    if not options:
        return None
    i, name = options[int(rng.integers(len(options)))]
    a = actions[i]
    match name:
        case "side":
            flip = {"left": "right", "right": "left"}
            value = flip.get(a.side) or ("left", "right")[int(rng.integers(2))]
        case "reps":
            value = a.reps + 1 if a.reps == 1 or rng.random() < 0.5 else a.reps - 1
        case "angle_deg":
            value = float(rng.choice([x for x in (45.0, 90.0, 135.0, 180.0) if x != a.angle_deg]))
        case _:
            value = a.distance_m * (2.0 if rng.random() < 0.5 else 0.5)
    out = list(actions)
    out[i] = replace(a, **{name: value})
    return out


def evaluate_oracle(n_clips: int, seed: int) -> dict:
    """Acceptance and rejection rates of `judge` on `n_clips` freshly synthesised corpus clips.

    Each clip (stored as the corpus stores it: float32, through the 263-d feature round trip) is
    judged against its own program (accept_rate), against the program of another clip whose
    sequence of action kinds differs (reject_rate), and against its own program with one side,
    count, angle or distance changed (hard_reject_rate). `per_action` breaks the three rates down
    by the action types the clip contains.
    """
    from easytune_engine.data.corpus.synth import sample_body, sample_program, synthesize

    try:
        from easytune_engine.motion.features import features_to_joints, joints_to_features
    except ImportError:  # pragma: no cover - the feature code ships with the engine
        features_to_joints = joints_to_features = None
    if n_clips < 2:
        raise ValueError(f"n_clips must be at least 2 (clips are paired), got {n_clips}")

    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(n_clips):
        program = sample_program(rng)
        body, _ = sample_body(rng)
        joints = synthesize(program, body, rng).astype(np.float32)
        if joints_to_features is not None:
            joints = features_to_joints(joints_to_features(joints))
        clips.append((program.actions, joints))

    pair_rng = np.random.default_rng(seed + 1)
    kinds = [tuple(a.kind for a in actions) for actions, _ in clips]
    tally: dict[str, dict[str, list[int]]] = {}  # action -> rate -> [passes, trials]
    totals = {"accept": [0, 0], "reject": [0, 0], "hard_reject": [0, 0]}
    start = time.perf_counter()
    judged = 0
    for i, (actions, joints) in enumerate(clips):
        trials = {"accept": (list(actions), True)}
        others = [k for k in range(n_clips) if kinds[k] != kinds[i]]
        if others:
            trials["reject"] = (list(clips[others[int(pair_rng.integers(len(others)))]][0]), False)
        hard = _perturbed(actions, pair_rng)
        if hard is not None:
            trials["hard_reject"] = (hard, False)
        for rate, (program, expected) in trials.items():
            ok = judge(joints, program).accepted == expected
            judged += 1
            totals[rate][0] += ok
            totals[rate][1] += 1
            for kind in set(kinds[i]):
                cell = tally.setdefault(kind, {r: [0, 0] for r in totals})[rate]
                cell[0] += ok
                cell[1] += 1
    elapsed = time.perf_counter() - start

    def rate(cell: list[int]) -> float:
        return cell[0] / cell[1] if cell[1] else float("nan")

    return {
        "clips": n_clips,
        "accept_rate": rate(totals["accept"]),
        "reject_rate": rate(totals["reject"]),
        "hard_reject_rate": rate(totals["hard_reject"]),
        "per_action": {
            kind: {r: rate(cells[r]) for r in totals} | {"clips": cells["accept"][1]}
            for kind, cells in sorted(tally.items())
        },
        "ms_per_judgement": 1000.0 * elapsed / max(judged, 1),
    }
