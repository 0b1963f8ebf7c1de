"""The corpus oracle's measurements: per-frame signals of a clip and their summaries over spans.

`Frames` computes, once per clip, signals in a frame that does not depend on where the clip starts
or which way it faces: the floor (from the feet), the body's heading (from the hips), the pelvis
path, foot clearance over the local ground, leg extension, trunk pitch and side bend, wrist
positions in the body frame; and discrete events (flight phases, squat dips, punches, claps,
waves, ...). Lengths are divided by the measured leg or arm length, so thresholds hold for any body
size. `Span` summarises them over many candidate frame spans [s, e) at once (range-max tables and
prefix sums), so the oracle's split search is cheap. See `oracle.py` for how they are used.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

FPS = 20.0

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


class Frames:
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


class Span:
    """Summaries of a clip over K candidate spans [s, e), each an array (K,)."""

    def __init__(self, f: Frames, s: np.ndarray, e: np.ndarray):
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
