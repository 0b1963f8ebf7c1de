"""Caption writer: motion programs -> HumanML3D-style captions, plus held-out paraphrases.

    caps = caption_program(program, np.random.default_rng(0), n=3)
    open("texts/000001.txt", "w").write("\\n".join(c.to_line() for c in caps))

A caption line is `text#lemma/POS lemma/POS ...#start#end` (start = end = 0.0 for the whole clip;
otherwise a sub-span in seconds that HumanML3D loaders cut out as its own sample).

How a caption is made: each segment's action picks a verb-phrase template (lexicon.VERB_PHRASES)
whose conditions hold for its parameters; its slots ({dist}, {reps}, {leg}, {angle}, ...) are filled
with phrases that are true of the parameter values, or left out where the template allows. A
composition structure (plain chain, "first ... then", "X after Ying", gerund chain, noun phrases
after "does") joins the clauses with connectors. Every word comes with its (lemma, POS) from the
lexicon at compile time, so tokens cost nothing at render time. Faithfulness rule: a caption may
say less than the program, never something different.

`paraphrase_program` describes a program with held-out wording (lexicon.HELD_OUT_VERBS,
lexicon.PARAPHRASES): words no corpus caption uses, for testing generalisation beyond the training
vocabulary.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from easytune_engine.data.corpus import lexicon as lx
from easytune_engine.data.corpus.program import ACTION_TYPES, Action, Program, Segment

FPS = 20
MIN_SPAN_FRAMES = 40  # 2 s: HumanML3D loaders drop shorter samples
MAX_SPAN_FRAMES = 200  # loaders keep clips of fewer than 200 frames


@dataclass(frozen=True, slots=True)
class Caption:
    """One caption line: text, its `lemma/POS` tokens, and the span it describes (0, 0 = whole)."""

    text: str
    tokens: tuple[str, ...]
    start: float = 0.0
    end: float = 0.0

    def to_line(self) -> str:
        """`text#tokens#start#end`, the HumanML3D texts/<id>.txt line."""
        return f"{self.text}#{' '.join(self.tokens)}#{self.start!r}#{self.end!r}"


def parse_caption_line(line: str) -> Caption:
    """Inverse of `Caption.to_line`; raises ValueError on a malformed line."""
    fields = line.rstrip("\n").split("#")
    if len(fields) != 4:
        raise ValueError(f"caption line needs 4 '#'-separated fields, got {len(fields)}: {line!r}")
    text, tokens, start, end = fields
    return Caption(text, tuple(tokens.split()), float(start), float(end))


# ---------------------------------------------------------------------------------------------
# Randomness: one batch of uniforms at a time (a numpy call per draw would dominate the runtime).


class _Dice:
    __slots__ = ("_i", "_rng", "_u")

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._u: list[float] = rng.random(64).tolist()
        self._i = 0

    def u(self) -> float:
        i = self._i
        if i == 64:
            self._u = self._rng.random(64).tolist()
            i = 0
        self._i = i + 1
        return self._u[i]

    def pick(self, seq: Sequence):
        return seq[int(self.u() * len(seq))]


# ---------------------------------------------------------------------------------------------
# Compiling templates. A compiled template is a tuple of parts:
#   (0, text, tokens)        literal words
#   (1, forms)               verb: forms[form] = (text, token), form 0 3sg, 1 past, 2 gerund, 3 base
#   (2, slot, optional)      phrase slot
#   (3, which)               pronoun: 0 possessive, 1 reflexive, 2 the subject's anaphor

Parts = tuple[tuple, ...]
_PRONOUN_SLOTS = {"poss": 0, "refl": 1, "pron": 2}
_SLOT = re.compile(r"^\{(\w+)(\??)\}$")
_VERB = re.compile(r"^<(\w+)>$")
_CORPUS_VERBS = lx.verb_table()
_HELD_OUT_VERBS = _CORPUS_VERBS | lx.held_out_verb_table()  # "does", "gets" stay available


def _analysis(word: str) -> str:
    surface, _, pos = word.partition(":")
    found = lx.analyses(surface)
    if not found:
        raise ValueError(f"word {surface!r} is not in the caption lexicon")
    for lemma, tag in found:
        if not pos or tag == pos:
            return f"{lemma}/{tag}"
    raise ValueError(f"lexicon has no {pos} analysis of {surface!r}: {found}")


@functools.lru_cache(maxsize=16384)
def _compile(template: str, held_out: bool = False) -> Parts:
    """Compile one template (without its @conditions). Held-out text has no tokens."""
    verbs = _HELD_OUT_VERBS if held_out else _CORPUS_VERBS
    parts: list[tuple] = []
    texts: list[str] = []
    toks: list[str] = []

    def flush() -> None:
        if texts:
            parts.append((0, " ".join(texts), tuple(toks)))
            texts.clear()
            toks.clear()

    for word in template.split():
        if m := _SLOT.match(word):
            flush()
            name = m.group(1)
            if name in _PRONOUN_SLOTS:
                parts.append((3, _PRONOUN_SLOTS[name]))
            else:
                parts.append((2, name, m.group(2) == "?"))
        elif m := _VERB.match(word):
            flush()
            lemma = m.group(1)
            if lemma not in verbs:
                raise ValueError(f"verb {lemma!r} has no forms in the verb table")
            third, past, ger = verbs[lemma]
            forms = tuple((f, f"{lemma}/VERB") for f in (third, past, ger, lemma))
            parts.append((1, forms))
        elif word in (",", ".", ";"):
            texts.append(word)
        else:
            texts.append(word.partition(":")[0])
            if not held_out:
                toks.append(_analysis(word))
    flush()
    return tuple(parts)


def _parse_block(
    block: str, held_out: bool = False, flags: Collection[str] | None = None
) -> tuple[tuple[tuple[str, ...], Parts], ...]:
    """Template lines -> ((conditions, parts), ...); `flags` = the allowed @names (CONDITIONS)."""
    allowed = CONDITIONS if flags is None else flags
    out = []
    for line in block.strip().splitlines():
        line = line.strip()
        if not line:
            continue
        conds: tuple[str, ...] = ()
        if line.startswith("@"):
            head, _, line = line.partition(" ")
            conds = tuple(head[1:].split(","))
            unknown = set(conds) - set(allowed)
            if unknown:
                raise ValueError(f"unknown template flags {sorted(unknown)} in {line!r}")
        out.append((conds, _compile(line, held_out)))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Conditions on an action's parameters, used by `@cond` template prefixes.


def _angle_bucket(angle: float) -> str:
    for limit, name in ((67.5, "slight"), (112.5, "quarter"), (157.5, "sharp"), (225, "half")):
        if angle < limit:
            return name
    return "threeq" if angle < 315 else "full"


CONDITIONS: dict[str, Callable[[Action], bool]] = {
    "slow": lambda a: a.speed == "slow",
    "fast": lambda a: a.speed == "fast",
    "normal": lambda a: a.speed == "normal",
    "notfast": lambda a: a.speed != "fast",
    "one": lambda a: a.reps == 1,
    "many": lambda a: a.reps is not None and a.reps >= 2,
    "lots": lambda a: a.reps is not None and a.reps >= 3,
    "lr": lambda a: a.side in ("left", "right"),
    "both": lambda a: a.side == "both",
    "near": lambda a: a.distance_m is not None and a.distance_m < 2.0,
    "far": lambda a: a.distance_m is not None and a.distance_m >= 5.0,
    "jnear": lambda a: a.distance_m is not None and a.distance_m < 0.8,
    "jfar": lambda a: a.distance_m is not None and a.distance_m >= 1.5,
    # a bare "turns left" reads as at most a quarter turn; larger turns must say how far
    "plain": lambda a: a.angle_deg is not None and a.angle_deg < 112.5,
    **{
        b: (lambda a, b=b: a.angle_deg is not None and _angle_bucket(a.angle_deg) == b)
        for b in ("slight", "quarter", "sharp", "half", "threeq", "full")
    },
}

# ---------------------------------------------------------------------------------------------
# Slot phrases: every option must be true of the parameter value. A slot is (options, omit) where
# omit is the chance a `{slot?}` is left out (0: it never is).

Slots = dict[str, tuple[tuple[Parts, ...], float]]


def _slot(options: Sequence[str], omit: float = 0.0, held_out: bool = False):
    return tuple(_compile(o, held_out) for o in options), omit


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
    bucket = _angle_bucket(angle)
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


def _slots(action: Action) -> Slots:
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
# Per-action plans: the templates whose conditions hold, and the slot phrases.

_VP = {k: _parse_block(lx.VERB_PHRASES[k]) for k in ACTION_TYPES}
_NP = {k: _parse_block(lx.NOUN_PHRASES[k]) for k in ACTION_TYPES}


@dataclass(frozen=True, slots=True)
class _Plan:
    kind: str
    vps: tuple[Parts, ...]
    nps: tuple[Parts, ...]
    slots: Slots


def _slot_names(parts: Parts) -> set[str]:
    return {p[1] for p in parts if p[0] == 2}


def _applicable(templates, action: Action, slots: Slots) -> tuple[Parts, ...]:
    out = []
    for conds, parts in templates:
        if all(CONDITIONS[c](action) for c in conds):
            missing = _slot_names(parts) - set(slots)
            if missing:
                raise ValueError(f"{action.kind} template uses slots {sorted(missing)} it lacks")
            out.append(parts)
    return tuple(out)


@functools.lru_cache(maxsize=8192)
def _plan(action: Action) -> _Plan:
    slots = _slots(action)
    vps = _applicable(_VP[action.kind], action, slots)
    if not vps:
        raise ValueError(f"no caption template fits {action}")
    return _Plan(action.kind, vps, _applicable(_NP[action.kind], action, slots), slots)


# ---------------------------------------------------------------------------------------------
# Rendering and composition.

_FINITE, _PAST, _GERUND, _BASE = 0, 1, 2, 3
_SUBJECTS = tuple((_compile(t), g, _compile(a)) for t, g, a in lx.SUBJECTS)
_POSS = tuple(_compile(w) for w in lx.POSSESSIVE)
_REFL = tuple(_compile(w) for w in lx.REFLEXIVE)


_CONNECTOR_FLAGS = ("last", "ger", "base", "np", "pron")


def _parse_connectors(block: str, held_out: bool = False):
    """-> (connectors usable before a middle clause, before the last one); each (next, parts)."""
    inner, last = [], []
    for conds, parts in _parse_block(block, held_out, _CONNECTOR_FLAGS):
        nxt = next((c for c in conds if c != "last"), "")
        (last if "last" in conds else inner).append((nxt, parts))
    return tuple(inner), tuple(inner + last)


_CONN_FINITE = _parse_connectors(lx.CONNECTORS_FINITE)
_CONN_BARE = _parse_connectors(lx.CONNECTORS_BARE)
_CONN_NOUN = _parse_connectors(lx.CONNECTORS_NOUN)
_DOES = (_compile("<do>"), _compile("<perform>"))
_AUX = {_FINITE: _compile("is"), _PAST: _compile("was")}
_FIRST = _compile("first")
_FIRST_COMMA = _compile("first ,")
_STARTS_BY = (_compile("<start> by"), _compile("<begin> by"))
_AFTER = _compile("after")
_BEFORE = _compile("before")
_COMMA = _compile(",")


class _Writer:
    """Accumulates one caption's words and tokens."""

    __slots__ = ("anaphor", "dice", "form", "gender", "omit_extra", "text", "toks")

    def __init__(self, dice: _Dice, omit_extra: float) -> None:
        self.dice = dice
        self.omit_extra = omit_extra
        self.form = _FINITE
        self.gender = 0
        self.anaphor: Parts = ()
        self.text: list[str] = []
        self.toks: list[str] = []

    def put(self, parts: Parts, slots: Slots | None = None) -> None:
        for part in parts:
            tag = part[0]
            if tag == 0:
                self.text.append(part[1])
                self.toks.extend(part[2])
            elif tag == 1:
                text, tok = part[1][self.form]
                self.text.append(text)
                self.toks.append(tok)
            elif tag == 2:
                options, omit = slots[part[1]]
                if part[2] and omit and self.dice.u() < omit + self.omit_extra:
                    continue
                self.put(self.dice.pick(options), slots)
            else:
                which = part[1]
                if which == 2:
                    self.put(self.anaphor)
                else:
                    self.put((_POSS if which == 0 else _REFL)[self.gender])

    def subject(self, put: bool = True) -> Parts:
        """Choose the subject (its pronouns apply from now on) and write it unless put=False."""
        text, self.gender, self.anaphor = self.dice.pick(_SUBJECTS)
        if put:
            self.put(text)
        return text

    def clause(self, plan: _Plan, form: int) -> None:
        saved, self.form = self.form, form
        self.put(self.dice.pick(plan.vps), plan.slots)
        self.form = saved

    def noun(self, plan: _Plan) -> None:
        if plan.nps:
            self.put(self.dice.pick(plan.nps), plan.slots)
        else:
            self.clause(plan, _GERUND)

    def chain(self, plans: Sequence[_Plan], connectors, form: int, noun: bool = False) -> None:
        """Clauses 2.. of a composition, each after a connector."""
        inner, last = connectors
        self.form = form  # verbs inside connectors ("proceeds to") agree with the clauses
        for i, plan in enumerate(plans):
            nxt, parts = self.dice.pick(last if i == len(plans) - 1 else inner)
            self.put(parts)
            if noun or nxt == "np":
                self.noun(plan)
            else:  # after "pron" the connector has named the subject again
                self.clause(plan, {"ger": _GERUND, "base": _BASE}.get(nxt, form))


# Composition structures: (name, weight, fewest clauses, most clauses, needs noun phrases).
def _s_simple(w: _Writer, plans, tense):
    w.subject()
    w.clause(plans[0], tense)
    w.chain(plans[1:], _CONN_FINITE, tense)


def _s_first(w: _Writer, plans, tense):
    if w.dice.u() < 0.5:
        w.subject()
        w.put(_FIRST)
    else:
        w.put(_FIRST_COMMA)
        w.subject()
    w.clause(plans[0], tense)
    w.chain(plans[1:], _CONN_FINITE, tense)


def _s_starts_by(w: _Writer, plans, tense):
    w.subject()
    w.form = tense
    w.put(w.dice.pick(_STARTS_BY))
    w.clause(plans[0], _GERUND)
    w.chain(plans[1:], _CONN_FINITE, tense)


def _s_after(w: _Writer, plans, tense):  # "a person turns left after walking forward"
    w.subject()
    w.clause(plans[1], tense)
    w.put(_AFTER)
    w.clause(plans[0], _GERUND)
    w.chain(plans[2:], _CONN_FINITE, tense)


def _s_after_front(w: _Writer, plans, tense):  # "after walking forward, a person turns left"
    subject = w.subject(put=False)  # "after raising her arm, a woman ...": pronouns agree
    w.put(_AFTER)
    w.clause(plans[0], _GERUND)
    w.put(_COMMA)
    w.put(subject)
    w.clause(plans[1], tense)
    w.chain(plans[2:], _CONN_FINITE, tense)


def _s_before_front(w: _Writer, plans, tense):  # "before turning left, a person walks forward"
    subject = w.subject(put=False)
    w.put(_BEFORE)
    w.clause(plans[1], _GERUND)
    w.put(_COMMA)
    w.put(subject)
    w.clause(plans[0], tense)


def _s_progressive(w: _Writer, plans, tense):  # "a man is walking forward and then jumping"
    w.subject()
    w.put(_AUX[tense])
    w.clause(plans[0], _GERUND)
    w.chain(plans[1:], _CONN_BARE, _GERUND)


def _s_gerund(w: _Writer, plans, tense):  # "walking forward, then turning left"
    w.gender = int(w.dice.u() * 3)
    w.clause(plans[0], _GERUND)
    w.chain(plans[1:], _CONN_BARE, _GERUND)


def _s_gerund_after(w: _Writer, plans, tense):  # "turning left after walking forward"
    w.gender = int(w.dice.u() * 3)
    w.clause(plans[1], _GERUND)
    w.put(_AFTER)
    w.clause(plans[0], _GERUND)


def _s_noun(w: _Writer, plans, tense):  # "someone does a left kick followed by two squats"
    w.subject()
    w.form = tense
    w.put(w.dice.pick(_DOES))
    w.noun(plans[0])
    w.chain(plans[1:], _CONN_NOUN, tense, noun=True)


STRUCTURES = (
    ("simple", 0.58, 1, 99, False, _s_simple),
    ("first", 0.07, 2, 99, False, _s_first),
    ("starts_by", 0.04, 2, 99, False, _s_starts_by),
    ("after", 0.06, 2, 2, False, _s_after),
    ("after_front", 0.05, 2, 99, False, _s_after_front),
    ("before_front", 0.03, 2, 2, False, _s_before_front),
    ("progressive", 0.09, 1, 99, False, _s_progressive),
    ("gerund", 0.11, 1, 99, False, _s_gerund),
    ("gerund_after", 0.03, 2, 2, False, _s_gerund_after),
    ("noun", 0.06, 1, 99, True, _s_noun),
)


@functools.lru_cache(maxsize=32)
def _structures(k: int, nouns: bool) -> tuple[tuple[float, ...], tuple]:
    usable = [s for s in STRUCTURES if s[2] <= k <= s[3] and (nouns or not s[4])]
    total = sum(s[1] for s in usable)
    cum, acc = [], 0.0
    for s in usable:
        acc += s[1] / total
        cum.append(acc)
    return tuple(cum), tuple(s[5] for s in usable)


def _write(plans: Sequence[_Plan], dice: _Dice) -> tuple[str, tuple[str, ...], str]:
    """One caption for these clauses in order: (text, tokens, dedup key)."""
    w = _Writer(dice, 0.12 * (len(plans) - 1))
    cum, fns = _structures(len(plans), all(p.nps for p in plans))
    r = dice.u()
    fn = next((f for c, f in zip(cum, fns, strict=True) if r < c), fns[-1])
    tense = _PAST if dice.u() < 0.15 else _FINITE
    fn(w, plans, tense)
    raw = " ".join(t for t in w.text if t)
    key = raw.replace(" ,", "").replace(" .", "").replace(" ;", "")
    text = raw.replace(" ,", ",").replace(" .", ".").replace(" ;", ";")
    if dice.u() < 0.3:  # sentence case
        text = ". ".join(s[:1].upper() + s[1:] for s in text.split(". "))
    if dice.u() < 0.8:
        text += "."
    return text, tuple(w.toks), key


def _described(segments: Sequence[Segment], dice: _Dice) -> list[Action]:
    """The actions one caption mentions: people often leave out a pause between actions."""
    actions = [s.action for s in segments]
    if len(actions) > 1:
        kept = [a for a in actions if a.kind != "idle" or dice.u() < 0.7]
        if kept:
            return kept
    return actions


def caption_segment(program: Program, index: int, rng: np.random.Generator) -> Caption:
    """A caption of segment `index` alone, spanning its seconds in the clip."""
    if not 0 <= index < len(program.segments):
        raise ValueError(f"segment index {index} out of range 0..{len(program.segments) - 1}")
    return _segment_caption(program.segments[index], _Dice(rng))


def _segment_caption(segment: Segment, dice: _Dice) -> Caption:
    text, tokens, _ = _write([_plan(segment.action)], dice)
    return Caption(text, tokens, segment.start / FPS, segment.end / FPS)


def caption_program(
    program: Program, rng: np.random.Generator, n: int, span_prob: float = 0.3
) -> list[Caption]:
    """n distinct whole-clip captions of a clip (start = end = 0.0), all faithful to its program.

    For a composition, with probability `span_prob` one more caption follows them: a span caption
    of one segment lasting MIN_SPAN_FRAMES..MAX_SPAN_FRAMES (see `caption_segment`), which
    HumanML3D loaders treat as a sample of its own. So the list holds n or n + 1 captions.
    Deterministic given the rng state.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    segments = program.segments
    if not segments:
        raise ValueError("program has no segments to caption")
    dice = _Dice(rng)
    captions: list[Caption] = []
    seen: set[str] = set()
    for _ in range(100 * n):
        text, tokens, key = _write([_plan(a) for a in _described(segments, dice)], dice)
        if key not in seen:
            seen.add(key)
            captions.append(Caption(text, tokens))
            if len(captions) == n:
                break
    else:
        raise RuntimeError(f"could not write {n} distinct captions for {program}")
    if len(segments) > 1 and dice.u() < span_prob:
        last = program.num_frames - 1  # features have one frame fewer than joints
        eligible = [
            s for s in segments if MIN_SPAN_FRAMES <= min(s.end, last) - s.start < MAX_SPAN_FRAMES
        ]
        if eligible:
            captions.append(_segment_caption(dice.pick(eligible), dice))
    return captions


def template_count() -> int:
    """Verb-phrase + noun-phrase templates over all actions, connectors and structures."""
    phrases = sum(len(_VP[k]) + len(_NP[k]) for k in ACTION_TYPES)
    connectors = sum(len(c[1]) for c in (_CONN_FINITE, _CONN_BARE, _CONN_NOUN))
    return phrases + connectors + len(STRUCTURES) + len(_STARTS_BY) + len(_DOES)


def corpus_vocabulary() -> frozenset[str]:
    """Every word a corpus caption can contain (numbers aside)."""
    return frozenset(lx.LEXICON)


# ---------------------------------------------------------------------------------------------
# Held-out paraphrases: same programs, words no corpus caption uses (tests check the overlap).


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
    bucket = _angle_bucket(angle)
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


def _held_out_slots(action: Action) -> Slots:
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


_PARAPHRASES = {k: _parse_block(lx.PARAPHRASES[k], held_out=True) for k in ACTION_TYPES}
_HELD_OUT_CONNECTORS = _parse_connectors(lx.HELD_OUT_CONNECTORS, held_out=True)
_HELD_OUT_SUBJECTS = tuple((_compile(t, True), g) for t, g in lx.HELD_OUT_SUBJECTS)
_PRIOR_TO = _compile("prior to", True)


@functools.lru_cache(maxsize=4096)
def _held_out_plan(action: Action) -> _Plan:
    slots = _held_out_slots(action)
    vps = _applicable(_PARAPHRASES[action.kind], action, slots)
    if not vps:
        raise ValueError(f"no paraphrase template fits {action}")
    return _Plan(action.kind, vps, (), slots)


def paraphrase_program(program: Program, rng: np.random.Generator) -> str:
    """A faithful description of the whole program in held-out words (one per action at least)."""
    if not program.segments:
        raise ValueError("program has no segments to paraphrase")
    dice = _Dice(rng)
    plans = [_held_out_plan(s.action) for s in program.segments]
    w = _Writer(dice, 0.0)
    subject, w.gender = dice.pick(_HELD_OUT_SUBJECTS)
    w.put(subject)
    if len(plans) == 2 and dice.u() < 0.25:  # "an actor ambles ahead prior to swiveling left"
        w.clause(plans[0], _FINITE)
        w.put(_PRIOR_TO)
        w.clause(plans[1], _GERUND)
    else:
        w.clause(plans[0], _FINITE)
        w.chain(plans[1:], _HELD_OUT_CONNECTORS, _FINITE)
    text = " ".join(t for t in w.text if t)
    text = text.replace(" ,", ",").replace(" ;", ";")
    if dice.u() < 0.5:
        text = text[0].upper() + text[1:]
    return text + ("." if dice.u() < 0.7 else "")
