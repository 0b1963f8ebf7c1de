"""Motion programs: what a corpus clip does, as data.

A program is an ordered list of segments; each segment is one action with typed parameters and the
frame span it occupies in the clip. The corpus synthesiser turns a program into joint positions, the
caption writer turns it into text, and the oracle checks joint positions against it. Programs are
saved beside every clip as JSON (see `program_to_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Literal

PROGRAM_FORMAT_VERSION = 1

Side = Literal["left", "right", "both"]
Speed = Literal["slow", "normal", "fast"]

# Every action type with the parameters it uses. `side` means: the limb used (kick, punch, wave,
# raise_arms, hop, throw) or the turning direction (turn, spin, walk_circle, side_step).
ACTION_PARAMS: dict[str, tuple[str, ...]] = {
    "walk": ("distance_m", "speed"),
    "jog": ("distance_m", "speed"),
    "run": ("distance_m", "speed"),
    "walk_backward": ("distance_m", "speed"),
    "side_step": ("side", "distance_m"),
    "turn": ("side", "angle_deg"),
    "walk_circle": ("side", "speed"),
    "spin": ("side",),
    "jump_in_place": ("reps",),
    "jump_forward": ("distance_m",),
    "hop": ("side", "reps"),
    "jumping_jacks": ("reps",),
    "squat": ("reps",),
    "crouch": (),
    "sit_down": (),
    "stand_up": (),
    "step_up": (),
    "kick": ("side",),
    "punch": ("side", "reps"),
    "throw": ("side",),
    "wave": ("side", "reps"),
    "raise_arms": ("side",),
    "clap": ("reps",),
    "bow": (),
    "stretch": (),
    "idle": (),
}
ACTION_TYPES: tuple[str, ...] = tuple(ACTION_PARAMS)

# Posture an action starts from and ends in; compositions must chain postures.
START_POSTURE: dict[str, str] = {a: "standing" for a in ACTION_TYPES} | {"stand_up": "seated"}
END_POSTURE: dict[str, str] = {a: "standing" for a in ACTION_TYPES} | {"sit_down": "seated"}


@dataclass(frozen=True)
class Action:
    """One action and its parameters; parameters an action does not use stay None."""

    kind: str
    side: Side | None = None  # limb or turning direction
    reps: int | None = None  # repetitions (jumps, squats, punches, waves, claps, hops)
    distance_m: float | None = None  # travel distance for locomotion and forward jumps
    angle_deg: float | None = None  # turn angle, positive magnitude; direction is `side`
    speed: Speed | None = None  # tempo of locomotion
    amplitude: float = 1.0  # style: how big the movement is (0.7 .. 1.3)

    def __post_init__(self) -> None:
        if self.kind not in ACTION_PARAMS:
            raise ValueError(f"unknown action {self.kind!r}; valid: {', '.join(ACTION_TYPES)}")
        used = ACTION_PARAMS[self.kind]
        for f in fields(self):
            if f.name in ("kind", "amplitude"):
                continue
            value = getattr(self, f.name)
            if f.name in used and value is None:
                raise ValueError(f"action {self.kind!r} needs parameter {f.name!r}")
            if f.name not in used and value is not None:
                raise ValueError(
                    f"action {self.kind!r} takes no {f.name!r}; it takes {used or 'no parameters'}"
                )
        if self.side is not None and self.side not in ("left", "right", "both"):
            raise ValueError(f"side must be 'left', 'right' or 'both', got {self.side!r}")
        if self.speed is not None and self.speed not in ("slow", "normal", "fast"):
            raise ValueError(f"speed must be 'slow', 'normal' or 'fast', got {self.speed!r}")
        if self.reps is not None and self.reps < 1:
            raise ValueError(f"reps must be >= 1, got {self.reps}")


@dataclass(frozen=True)
class Segment:
    """An action placed on the clip's timeline: frames [start, end) at 20 fps."""

    action: Action
    start: int
    end: int


@dataclass(frozen=True)
class Program:
    """A clip's description: segments in time order plus the body and style it was made with."""

    segments: tuple[Segment, ...]
    frames: int = 0  # total joint frames of the clip (>= the last segment's end); 0 = that end
    body_scale: float = 1.0  # overall height factor
    tempo: float = 1.0  # >1 is faster
    seed: int = 0
    extras: dict[str, float] = field(default_factory=dict)  # per-clip style knobs, for the record

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(s.action for s in self.segments)

    @property
    def num_frames(self) -> int:
        return max(self.frames, self.segments[-1].end if self.segments else 0)


def program_to_dict(program: Program) -> dict:
    """JSON-ready dict (the sidecar format); `program_from_dict` inverts it."""
    return {
        "version": PROGRAM_FORMAT_VERSION,
        "segments": [
            {"start": s.start, "end": s.end}
            | {k: v for k, v in asdict(s.action).items() if v is not None}
            for s in program.segments
        ],
        "frames": program.num_frames,
        "body_scale": program.body_scale,
        "tempo": program.tempo,
        "seed": program.seed,
        "extras": dict(program.extras),
    }


def program_from_dict(data: dict) -> Program:
    """Parse a sidecar dict; raises ValueError naming the problem."""
    if data.get("version") != PROGRAM_FORMAT_VERSION:
        raise ValueError(
            f"program format version {data.get('version')!r} is not supported "
            f"(expected {PROGRAM_FORMAT_VERSION})"
        )
    segments = []
    action_fields = {f.name for f in fields(Action)}
    for raw in data["segments"]:
        unknown = set(raw) - action_fields - {"start", "end"}
        if unknown:
            raise ValueError(f"unknown segment keys {sorted(unknown)}")
        kwargs = {k: v for k, v in raw.items() if k in action_fields}
        segments.append(Segment(Action(**kwargs), int(raw["start"]), int(raw["end"])))
    return Program(
        segments=tuple(segments),
        frames=int(data.get("frames", 0)),
        body_scale=float(data.get("body_scale", 1.0)),
        tempo=float(data.get("tempo", 1.0)),
        seed=int(data.get("seed", 0)),
        extras={k: float(v) for k, v in data.get("extras", {}).items()},
    )
