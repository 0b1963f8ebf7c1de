"""The corpus synthesiser: random programs and bodies, and the motion they describe.

`sample_program` draws one to three actions with parameters that fit a 2-9.8 s clip;
`synthesize` plays the program on a `Body` and returns SMPL joint positions (T, 22, 3) at 20 fps.
Both are deterministic given the random generator.
"""

from __future__ import annotations

import numpy as np

from .body import Body, PoseTrack, pose_to_joints, reachable_pelvis_height
from .gestures import gesture
from .locomotion import LOCOMOTION_ACTIONS, locomotion
from .poses import FPS, action_frames, initial_stance, standing_track
from .program import END_POSTURE, START_POSTURE, Action, Program, Segment

MIN_FRAMES = 41  # joint frames; features have one fewer (HumanML3D keeps 40 <= frames < 200)
MAX_FRAMES = 197

# How often each action is drawn (relative); locomotion is common in real captions.
ACTION_WEIGHTS: dict[str, float] = {
    "walk": 3.0,
    "jog": 1.5,
    "run": 1.5,
    "walk_backward": 1.2,
    "side_step": 1.2,
    "turn": 1.5,
    "walk_circle": 0.8,
    "spin": 0.8,
    "jump_in_place": 1.2,
    "jump_forward": 1.0,
    "hop": 1.0,
    "jumping_jacks": 1.0,
    "squat": 1.0,
    "crouch": 0.8,
    "sit_down": 0.8,
    "stand_up": 0.6,
    "step_up": 0.7,
    "kick": 1.2,
    "punch": 1.2,
    "throw": 1.0,
    "wave": 1.2,
    "raise_arms": 1.0,
    "clap": 1.0,
    "bow": 0.8,
    "stretch": 0.7,
    "idle": 0.6,
}


def sample_action(kind: str, rng: np.random.Generator) -> Action:
    """Draw parameters for one action of type `kind`."""
    side2 = ("left", "right")[int(rng.integers(2))]
    side3 = ("left", "right", "both")[int(rng.integers(3))]
    speed = ("slow", "normal", "fast")[int(rng.integers(3))]
    amplitude = float(np.round(rng.uniform(0.8, 1.2), 2))

    def dist(lo: float, hi: float) -> float:
        return float(np.round(rng.uniform(lo, hi) * 2) / 2)  # half-metre steps

    match kind:
        case "walk":
            return Action(kind, distance_m=dist(1.5, 6.0), speed=speed, amplitude=amplitude)
        case "jog":
            return Action(kind, distance_m=dist(3.0, 9.0), speed=speed, amplitude=amplitude)
        case "run":
            return Action(kind, distance_m=dist(4.0, 12.0), speed=speed, amplitude=amplitude)
        case "walk_backward":
            return Action(kind, distance_m=dist(1.0, 3.0), speed=speed, amplitude=amplitude)
        case "side_step":
            return Action(kind, side=side2, distance_m=dist(0.5, 2.0), amplitude=amplitude)
        case "turn":
            angle = float(rng.choice([45.0, 90.0, 90.0, 135.0, 180.0]))
            return Action(kind, side=side2, angle_deg=angle, amplitude=amplitude)
        case "walk_circle":
            return Action(kind, side=side2, speed=("slow", "normal")[int(rng.integers(2))])
        case "spin":
            return Action(kind, side=side2, amplitude=amplitude)
        case "jump_in_place":
            return Action(kind, reps=int(rng.integers(1, 4)), amplitude=amplitude)
        case "jump_forward":
            return Action(kind, distance_m=dist(0.5, 1.5), amplitude=amplitude)
        case "hop":
            return Action(kind, side=side2, reps=int(rng.integers(2, 6)), amplitude=amplitude)
        case "jumping_jacks":
            return Action(kind, reps=int(rng.integers(2, 5)), amplitude=amplitude)
        case "squat":
            return Action(kind, reps=int(rng.integers(1, 4)), amplitude=amplitude)
        case "punch" | "wave":
            side = side3 if kind == "wave" else side2
            return Action(kind, side=side, reps=int(rng.integers(1 if kind == "punch" else 2, 5)))
        case "kick" | "throw":
            return Action(kind, side=side2, amplitude=amplitude)
        case "raise_arms":
            return Action(kind, side=side3, amplitude=amplitude)
        case "clap":
            return Action(kind, reps=int(rng.integers(2, 7)), amplitude=amplitude)
        case _:
            return Action(kind, amplitude=amplitude)


def sample_body(rng: np.random.Generator) -> tuple[Body, float]:
    """A character: overall scale 0.88-1.1 with per-bone jitter of up to 4%."""
    scale = float(np.round(rng.uniform(0.88, 1.1), 3))
    return Body().scaled(scale, rng, jitter=0.04), scale


def sample_program(rng: np.random.Generator, max_tries: int = 200) -> Program:
    """Draw a program of 1-3 chained actions lasting MIN_FRAMES..MAX_FRAMES joint frames."""
    kinds = list(ACTION_WEIGHTS)
    weights = np.array([ACTION_WEIGHTS[k] for k in kinds])
    weights = weights / weights.sum()
    for _ in range(max_tries):
        tempo = float(np.round(rng.uniform(0.85, 1.15), 3))
        count = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2]))
        actions: list[Action] = []
        posture = "seated" if rng.random() < 0.5 else "standing"
        for i in range(count):
            kind = str(rng.choice(kinds, p=weights))
            if i == 0 and START_POSTURE[kind] == "seated":
                posture = "seated"
            elif i == 0:
                posture = "standing"
            if START_POSTURE[kind] != posture:
                break
            actions.append(sample_action(kind, rng))
            posture = END_POSTURE[kind]
        if not actions:
            continue
        lead_in, lead_out = int(rng.integers(0, 9)), int(rng.integers(0, 9))
        lengths = [action_frames(a, tempo) for a in actions]
        total = lead_in + sum(lengths) + lead_out
        if not MIN_FRAMES <= total <= MAX_FRAMES:
            continue
        segments, start = [], lead_in
        for action, length in zip(actions, lengths, strict=True):
            segments.append(Segment(action, start, start + length))
            start += length
        return Program(segments=tuple(segments), frames=total, tempo=tempo)
    raise RuntimeError(f"could not draw a program that fits in {max_tries} tries")


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along time (axis 0) with edge padding."""
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    pad = [(radius, radius)] + [(0, 0)] * (x.ndim - 1)
    padded = np.pad(x, pad, mode="edge")
    out = np.zeros_like(x, dtype=np.float64)
    for i, w in enumerate(kernel):
        out += w * padded[i : i + len(x)]
    return out


def _noise(n: int, dims: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Slow random drift (n, dims): white noise smoothed over about a second."""
    return _smooth(rng.normal(size=(n, dims)), 6.0) * scale * 4.0


def _smooth_ceiling(height: np.ndarray, limit: np.ndarray, radius: int = 4) -> np.ndarray:
    """min(height, limit), with the limit eroded over +-radius frames and smoothed, so the
    pelvis dips gently instead of snapping where a leg would overstretch."""
    limit = np.minimum(limit, height + 1.0)  # frames with no planted foot impose nothing
    padded = np.pad(limit, radius, mode="edge")
    eroded = np.min(np.stack([padded[i : i + len(limit)] for i in range(2 * radius + 1)]), axis=0)
    return _smooth(np.minimum(height, eroded), radius / 2)


def synthesize(program: Program, body: Body, rng: np.random.Generator) -> np.ndarray:
    """Joint positions (T, 22, 3) of `body` performing `program` at 20 fps."""
    first = program.segments[0].action.kind
    stance = initial_stance(body, seated=START_POSTURE[first] == "seated")
    tracks: list[PoseTrack] = [standing_track(stance, body, program.segments[0].start)]
    for seg in program.segments:
        n = seg.end - seg.start
        if seg.action.kind in LOCOMOTION_ACTIONS:
            track, stance = locomotion(stance, body, seg.action, n, program.tempo, rng)
        else:
            track, stance = gesture(stance, body, seg.action, n, rng)
        tracks.append(track)
    tracks.append(standing_track(stance, body, program.num_frames - program.segments[-1].end))
    track = PoseTrack.concatenate([t for t in tracks if len(t)])
    n = len(track)

    # Style: slow drift in the upper body, then smooth the joins between segments.
    for name in ("upper_l", "fore_l", "upper_r", "fore_r"):
        value = getattr(track, name) + _noise(n, 3, rng, 0.04)
        setattr(track, name, _smooth(value, 1.5))
    for name in ("lean", "side_bend", "twist", "nod"):
        value = getattr(track, name) + _noise(n, 1, rng, 0.02)[:, 0]
        setattr(track, name, _smooth(value, 1.5))

    # Keep both ankles reachable: lower the pelvis smoothly where the legs would overstretch.
    limit = reachable_pelvis_height(track, body)
    below = _smooth_ceiling(track.pelvis[:, 1], limit)
    track.pelvis[:, 1] = np.minimum(track.pelvis[:, 1], below)
    return pose_to_joints(track, body)


def frames_to_seconds(frames: int) -> float:
    return frames / FPS
