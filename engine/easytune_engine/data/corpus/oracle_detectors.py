"""The corpus oracle's detectors: one per action type, each a list of named checks on a span.

An action passes on a span when every check passes. Besides what the action must do (travel,
turn, count, side), every detector also checks that nothing else conspicuous happens (the "quiet"
channels: no flight in a walk, no hands overhead in a squat, ...): that is what rejects a clip whose
program leaves an action out. Checks are boolean arrays, one value per candidate span.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from easytune_engine.data.corpus.locomotion import SPEED_TABLES
from easytune_engine.data.corpus.oracle_signals import FPS, Span
from easytune_engine.data.corpus.program import ACTION_TYPES, Action

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


def _quiet_value(sp: Span, channel: str) -> np.ndarray:
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


def _quiet(sp: Span, m: Measured, checks: Checks, allow: Sequence[str] = (), **caps) -> None:
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


def _gait(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _side_step(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _turn(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _walk_circle(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _jumps(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _hop(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _jumping_jacks(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _squat(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _crouch(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _sit(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _step_up(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _kick(sp: Span, a: Action) -> tuple[Measured, Checks]:
    h = "l" if a.side == "left" else "r"
    kicks, others = sp.count(f"kick_{h}"), sp.count(f"kick_{_other(h)}")
    m = {"kicks": kicks, "other_foot_kicks": others, "foot_height": sp.max(f"clear_{h}")}
    checks = [
        (f"one kick with the {a.side} foot", kicks == 1),
        ("the other foot stays down", sp.max(f"clear_{_other(h)}") <= 0.1),
    ]
    _quiet(sp, m, checks, ("foot_up", "kicks"))
    return m, checks


def _punch(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _throw(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _wave(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _raise_arms(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _clap(sp: Span, a: Action) -> tuple[Measured, Checks]:
    claps = sp.count("clap")
    m = {"claps": claps, "closest_hands": sp.min("hand_gap")}
    checks = [(f"{a.reps} claps", claps == a.reps)]
    _quiet(sp, m, checks, ("arms_forward", "claps"))
    return m, checks


def _bow(sp: Span, a: Action) -> tuple[Measured, Checks]:
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


def _stretch(sp: Span, a: Action) -> tuple[Measured, Checks]:
    up = np.minimum(sp.max("hand_over_head_l"), sp.max("hand_over_head_r"))
    left, right = sp.max("bend"), -sp.min("bend")
    m = {"hands_over_head": up, "bend_left": left, "bend_right": right}
    checks = [
        ("both hands above the head", up >= 0.3),
        ("bend to both sides", (left >= 0.15) & (right >= 0.15)),
    ]
    _quiet(sp, m, checks, ("hands_up", "bend"), waves=1)  # the forearms sway overhead
    return m, checks


def _idle(sp: Span, a: Action) -> tuple[Measured, Checks]:
    speed = np.maximum(sp.max("hand_speed_l"), sp.max("hand_speed_r"))
    m = {"hand_speed": speed, "seconds": sp.seconds}
    checks = [("hands still", speed <= 1.5), ("at least a second", sp.seconds >= 1.0)]
    _quiet(sp, m, checks, ("still",), arms_forward=0.5, low=0.1, pitch=0.2)
    return m, checks


Detector = Callable[[Span, Action], tuple[Measured, Checks]]
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
