"""Caption slot phrases: what fills `{dist}`, `{reps}`, `{side}`, `{angle}`, ... for an action.

Every option must be true of the parameter value (a caption may say less than the program, never
something different). `corpus_slots` gives the corpus's phrases, `held_out_slots` the held-out
wording used by `captions.paraphrase_program`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from easytune_engine.data.corpus import lexicon as lx
from easytune_engine.data.corpus.caption_templates import Parts, angle_bucket, compile_template
from easytune_engine.data.corpus.program import Action

# ---------------------------------------------------------------------------------------------
# Slot phrases: every option must be true of the parameter value. A slot is (options, omit) where
# omit is the chance a `{slot?}` is left out (0: it never is).

Slots = dict[str, tuple[tuple[Parts, ...], float]]


def _slot(options: Sequence[str], omit: float = 0.0, held_out: bool = False):
    return tuple(compile_template(o, held_out) for o in options), omit


def _number(n: int) -> str:
    return lx.NUMBER_WORDS[n] if 0 < n < len(lx.NUMBER_WORDS) else str(n)


@functools.lru_cache(maxsize=256)
def _reps_slots(n: int) -> Slots:
    w = _number(n)
    if n == 1:
        reps = ["once", "one time", "a single time"]
    elif n == 2:
        reps = ["twice", "two times", "2 times", "a couple of times"]
    else:
        reps = [f"{w} times", f"{n} times", f"{w} times", "repeatedly"]
        reps += (
            ["a few times"] * (n <= 5) + ["several times"] * (n <= 9) + ["many times"] * (n >= 6)
        )
    slots = {"reps": _slot(reps, 0.3)}
    if n >= 2:
        det = ["two", "2", "a couple of", "a pair of"] if n == 2 else [w, str(n), w]
        det += ["a few"] * (3 <= n <= 5) + ["several"] * (3 <= n <= 9) + ["many"] * (n >= 6)
        slots["nreps"] = _slot(det)
    return slots


@functools.lru_cache(maxsize=16)
def _speed_slots(speed: str) -> Slots:
    if speed == "slow":
        post = ["slowly", "slowly", "at a slow pace", "at a leisurely pace", "leisurely"]
        return {
            "speed": _slot(post, 0.35),
            "speedpre": _slot(["slowly"]),
            "speedadj": _slot(["slow", "leisurely:ADJ"]),
        }
    if speed == "fast":
        post = ["quickly", "quickly", "fast", "briskly", "rapidly", "at a fast:ADJ pace"]
        post += ["at a quick pace", "in a hurry", "hurriedly"]
        return {
            "speed": _slot(post, 0.35),
            "speedpre": _slot(["quickly", "rapidly", "briskly", "hurriedly"]),
            "speedadj": _slot(["quick", "fast:ADJ", "brisk", "rapid", "hurried"]),
        }
    post = ["at a normal pace", "at a steady pace", "at a moderate pace", "at an average pace"]
    post += ["at a regular pace", "steadily"]
    return {
        "speed": _slot(post, 0.8),
        "speedpre": _slot(["steadily"]),
        "speedadj": _slot(["steady", "moderate", "regular"]),
    }


def _meters(d: float) -> list[str]:
    """Numeric distance phrases, approximately right."""
    if d < 0.35:
        return []
    if d < 0.75:
        return ["about half a meter"] if d < 0.65 else []
    if abs(d - int(d) - 0.5) <= 0.1:
        w, half = _number(int(d)), f"{int(d)}.5"
        return [f"about {w} and a half meters", f"about {half} meters", f"about {half} metres"]
    n = int(d + 0.5)
    if n == 1:
        out = ["about a meter", "about one meter", "about 1 meter", "around a meter"]
        return out + ["one meter"] * (abs(d - 1) <= 0.05)
    w = _number(n)
    out = [f"about {w} meters", f"about {n} meters", f"about {w} metres", f"around {n} meters"]
    return out + [f"{w} meters", f"{n} meters"] * (abs(d - n) <= 0.05)


_STEP_LENGTH = {"walk": 0.7, "walk_backward": 0.5, "side_step": 0.45}


def _distance_slots(kind: str, d: float) -> Slots:
    if kind == "jump_forward":
        dist = ["a short distance", "a little:ADJ"] * (d < 0.8) + _meters(d)
        return {"dist": _slot(dist or ["a little:ADJ"], 0.5)}
    dist = ["a short distance", "a little:ADJ way"] * (d < 2.0) + ["a little:ADJ"] * (d < 1.0)
    dist += ["a few meters"] * (2.5 <= d <= 6) + ["several meters"] * (3 <= d <= 9)
    dist += ["a long way", "a long distance"] * (d >= 5) + _meters(d)
    slots = {"dist": _slot(dist, 0.5)}
    if kind in _STEP_LENGTH:
        s = d / _STEP_LENGTH[kind]
        steps = ["a step", "a single step", "one step"] * (s < 1.6)
        steps += ["a couple of steps", "a step or two"] * (1.0 <= s < 2.6)
        steps += ["a few steps"] * (2.4 <= s < 6) + ["several steps"] * (3 <= s < 10)
        steps += ["many steps"] * (s >= 6)
        slots["steps"] = _slot(steps)
    return slots


@functools.lru_cache(maxsize=8)
def _side_slots(side: str) -> Slots:
    if side == "both":
        return {
            "leg": _slot(["both legs", "both feet"], 0.3),
            "fist": _slot(["both hands", "both fists", "both arms"], 0.3),
            "hand": _slot(["both hands", "both arms", "{poss} hands"], 0.3),
            "arm": _slot(["both arms", "both hands", "{poss} arms", "{poss} hands"], 0.3),
            # a turn "both ways" has no direction to name
            "dir": _slot([""]),
            "sdir": _slot([""]),
            "cdir": _slot([""]),
        }
    s = side

    def limb(*nouns: str) -> tuple[tuple[Parts, ...], float]:
        return _slot([f"{d} {s}:ADJ {n}" for n in nouns for d in ("the", "{poss}")], 0.3)

    return {
        "side": _slot([f"{s}:ADJ"]),
        "sidenoun": _slot([f"{s}:NOUN"]),  # "to the left"
        "legword": _slot(["leg", "foot"]),
        "leg": limb("leg", "foot"),
        "fist": limb("hand", "fist", "arm"),
        "hand": limb("hand", "arm"),
        "arm": limb("arm", "hand"),
        "dir": _slot([f"{s}:ADV", f"to the {s}:NOUN", f"to {{poss}} {s}:NOUN"], 0.25),
        "sdir": _slot([f"{s}:ADV", f"to the {s}:NOUN", f"to {{poss}} {s}:NOUN"]),
        "cdir": _slot([f"to the {s}:NOUN", f"turning {s}:ADV", f"curving to the {s}:NOUN"], 0.4),
    }


_CANONICAL_ANGLES = {45: "forty five", 90: "ninety", 135: "", 180: "", 270: "", 360: ""}


@functools.lru_cache(maxsize=1024)
def _angle_slots(angle: float) -> Slots:
    bucket = angle_bucket(angle)
    near = [c for c in _CANONICAL_ANGLES if abs(angle - c) <= 3]
    if near:
        c = near[0]
        numeric = [f"{c} degrees"] + [f"{_CANONICAL_ANGLES[c]} degrees"] * bool(
            _CANONICAL_ANGLES[c]
        )
        adjective = [f"{c} degree"]
    else:
        numeric, adjective = [f"about {5 * round(angle / 5)} degrees"], []
    adverb = {
        "slight": ["slightly", "a little:ADJ", "a bit"],
        "quarter": [],
        "sharp": ["sharply", "more than 90 degrees"],
        "half": ["around", "halfway around"],
        "threeq": ["three quarters of the way around"],
        "full": ["all the way around", "a full circle"],
    }[bucket]
    noun = {
        "slight": ["slight", "small"],
        "quarter": ["quarter"],
        "sharp": ["sharp"],
        "half": ["half:ADJ"],
        "threeq": ["three quarter"],
        "full": ["full", "complete"],
    }[bucket]
    return {
        "angle": _slot(adverb + numeric, 0.4 if bucket in ("slight", "quarter") else 0.0),
        "anglenp": _slot(noun + adjective),
        "degrees": _slot(numeric),
    }


def corpus_slots(action: Action) -> Slots:
    slots: Slots = {}
    if action.speed is not None:
        slots |= _speed_slots(action.speed)
    if action.reps is not None:
        slots |= _reps_slots(action.reps)
    if action.distance_m is not None:
        slots |= _distance_slots(action.kind, action.distance_m)
    if action.side is not None:
        slots |= _side_slots(action.side)
    if action.angle_deg is not None:
        slots |= _angle_slots(action.angle_deg)
    return slots


# ---------------------------------------------------------------------------------------------
# Held-out slot phrases: words no corpus caption uses (tests check the overlap).


@functools.lru_cache(maxsize=256)
def _held_out_reps(n: int) -> Slots:
    w = _number(n)
    if n == 1:
        reps = ["just once", "a single time"]
    elif n == 2:
        reps = ["on two occasions", "2x", "two times over"]
    else:
        reps = [f"{w} times over", f"{n}x"] + ["thrice"] * (n == 3) + ["over and over"]
    det = ["a pair of", "two"] if n == 2 else [w] + ["a handful of"] * (3 <= n <= 6)
    return {"reps": _slot(reps, 0.3, True), "nreps": _slot(det, 0.0, True)}


def _held_out_distance(kind: str, d: float) -> Slots:
    n = int(d + 0.5)
    if abs(d - int(d) - 0.5) <= 0.1:
        numeric = [f"roughly {_number(int(d))} and a half meters"]
    elif n >= 1:
        numeric = [f"roughly {_number(n)} meters" if n > 1 else "roughly a meter"]
    else:
        numeric = ["roughly half a meter"]
    if kind == "jump_forward":
        dist = numeric + ["a tiny bit"] * (d < 0.8) + ["quite a ways"] * (d >= 1.5)
    else:
        dist = numeric + ["a little ways"] * (d < 2) + ["a handful of paces"] * (2.5 <= d <= 6)
        dist += ["a good ways"] * (d >= 5)
    return {"dist": _slot(dist, 0.5, True)}


@functools.lru_cache(maxsize=8)
def _held_out_side(side: str) -> Slots:
    if side == "both":
        empty = _slot([""])
        return {
            "leg": _slot(["both feet"], 0.3, True),
            "fist": _slot(["both fists"], 0.3, True),
            "hand": _slot(["both hands"], 0.3, True),
            "arm": _slot(["both arms"], 0.3, True),
            "dir": empty,
            "cdir": empty,
        }
    s = side
    return {
        "side": _slot([s], 0.0, True),
        "leg": _slot([f"the {s} leg", f"the {s} foot", f"{{poss}} {s} limb"], 0.3, True),
        "fist": _slot([f"the {s} hand", f"the {s} fist"], 0.3, True),
        "hand": _slot([f"the {s} hand", f"{{poss}} {s} palm"], 0.3, True),
        "arm": _slot([f"the {s} arm", f"{{poss}} {s} limb"], 0.3, True),
        "dir": _slot([f"toward the {s}", f"to the {s}"], 0.25, True),
        "cdir": _slot([f"veering {s}", f"bearing {s}"], 0.4, True),
    }


@functools.lru_cache(maxsize=1024)
def _held_out_angle(angle: float) -> Slots:
    bucket = angle_bucket(angle)
    words = {
        "slight": ["a touch", "a smidge", "marginally"],
        "quarter": ["a quarter rotation"],
        "sharp": ["steeply"],
        "half": ["half a revolution", "a half rotation"],
        "threeq": ["three quarters of a revolution"],
        "full": ["a full revolution", "one whole revolution"],
    }[bucket]
    numeric = [f"roughly {5 * round(angle / 5)} degrees"]
    omit = 0.4 if bucket in ("slight", "quarter") else 0.0
    return {"angle": _slot(words + numeric, omit, True)}


_HELD_OUT_SPEED = {
    "slow": ["unhurriedly", "sluggishly", "at a crawl", "lazily"],
    "fast": ["swiftly", "speedily", "hastily", "at full tilt"],
    "normal": ["at an ordinary tempo", "at a comfortable clip"],
}


def held_out_slots(action: Action) -> Slots:
    slots: Slots = {}
    if action.speed is not None:
        omit = 0.7 if action.speed == "normal" else 0.4
        slots["speed"] = _slot(_HELD_OUT_SPEED[action.speed], omit, True)
    if action.reps is not None:
        slots |= _held_out_reps(action.reps)
    if action.distance_m is not None:
        slots |= _held_out_distance(action.kind, action.distance_m)
    if action.side is not None:
        slots |= _held_out_side(action.side)
    if action.angle_deg is not None:
        slots |= _held_out_angle(action.angle_deg)
    return slots
