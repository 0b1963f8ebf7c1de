"""Rule-based judge of motion against a program: does this clip do what its text says?

`judge(joints, actions)` looks only at joint positions (T, 22, 3) (metres, Y up, 20 fps, SMPL
order; see docs/motion.md): no segment timing and no body parameters. It is meant to grade
generated motion, so it is deliberately hand-written rather than learned; nothing a generator
could fit to.

How it works, in reading order:
1. `Frames` (`oracle_signals.py`): per-frame signals computed once per clip, in a frame that does
   not depend on where the clip starts or which way it faces: the floor (from the feet), the
   body's heading (from the hips), the pelvis path, foot clearance over the local ground, leg
   extension, trunk pitch and side bend, wrist positions in the body frame; and discrete events
   (flight phases, squat dips, punches, claps, waves, ...). Lengths are divided by the measured
   leg or arm length, so thresholds hold for any body size.
2. `Span` (`oracle_signals.py`): the same quantities summarised over candidate frame spans
   [s, e), vectorised over many spans at once (range-max tables and prefix sums), so the split
   search below is cheap.
3. Detectors (`oracle_detectors.py`), one per action type (`DETECTORS`): a list of named checks
   on a span, each a boolean array. An action passes on a span when every check passes. Besides
   what the action must do (travel, turn, count, side), every detector also checks that nothing
   else conspicuous happens (no flight in a walk, no hands overhead in a squat, ...): that is
   what rejects a clip whose program leaves an action out.
4. `judge` (here): a program of 2-3 actions is accepted when some ordered split of the clip, on
   a 4-frame grid with every part at least half a second long, satisfies each action on its part.

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
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from easytune_engine.data.corpus.oracle_detectors import (
    DETECTORS,
    Checks,
    Measured,
    detector_names,
)
from easytune_engine.data.corpus.oracle_signals import Frames, Span
from easytune_engine.data.corpus.program import Action
from easytune_engine.motion import skeleton

__all__ = ["DETECTORS", "SegmentVerdict", "Verdict", "detector_names", "evaluate_oracle", "judge"]

GRID = 4  # split points lie on multiples of this many frames
MIN_PART = 10  # frames: every part of a split lasts at least half a second


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


def _evaluate(f: Frames, a: Action, s: np.ndarray, e: np.ndarray) -> tuple[Measured, Checks]:
    return DETECTORS[a.kind](Span(f, s, e), a)


def _segment(f: Frames, a: Action, s: int, e: int) -> SegmentVerdict:
    m, checks = _evaluate(f, a, np.array([s]), np.array([e]))
    failed = tuple(label for label, ok in checks if not ok[0])
    measured = {k: round(float(v[0]), 3) for k, v in m.items()}
    return SegmentVerdict(a.kind, not failed, s, e, measured, failed)


def _best_split(f: Frames, actions: Sequence[Action]) -> list[tuple[int, int]]:
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
    f = Frames(j)
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
