"""Caption writer: motion programs -> HumanML3D-style captions, plus held-out paraphrases.

    caps = caption_program(program, np.random.default_rng(0), n=3)
    open("texts/000001.txt", "w").write("\\n".join(c.to_line() for c in caps))

A caption line is `text#lemma/POS lemma/POS ...#start#end` (start = end = 0.0 for the whole clip;
otherwise a sub-span in seconds that HumanML3D loaders cut out as its own sample).

How a caption is made: each segment's action picks a verb-phrase template (phrases.VERB_PHRASES)
whose conditions hold for its parameters; its slots ({dist}, {reps}, {leg}, {angle}, ...) are filled
with phrases that are true of the parameter values (caption_slots.py), or left out where the
template allows. A composition structure (plain chain, "first ... then", "X after Ying", gerund
chain, noun phrases after "does") joins the clauses with connectors (lexicon.py). Every word comes
with its (lemma, POS) from the lexicon at compile time (caption_templates.py), so tokens cost
nothing at render time. Faithfulness rule: a caption may say less than the program, never
something different.

`paraphrase_program` describes a program with held-out wording (held_out.py): words no corpus
caption uses, for testing generalisation beyond the training vocabulary.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from easytune_engine.data.corpus import lexicon as lx
from easytune_engine.data.corpus.caption_slots import Slots, corpus_slots, held_out_slots
from easytune_engine.data.corpus.caption_templates import (
    CONDITIONS,
    Parts,
    compile_template,
    parse_block,
)
from easytune_engine.data.corpus.held_out import HELD_OUT_CONNECTORS, HELD_OUT_SUBJECTS, PARAPHRASES
from easytune_engine.data.corpus.phrases import NOUN_PHRASES, VERB_PHRASES
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
# Per-action plans: the templates whose conditions hold, and the slot phrases.

_VP = {k: parse_block(VERB_PHRASES[k]) for k in ACTION_TYPES}
_NP = {k: parse_block(NOUN_PHRASES[k]) for k in ACTION_TYPES}


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
    slots = corpus_slots(action)
    vps = _applicable(_VP[action.kind], action, slots)
    if not vps:
        raise ValueError(f"no caption template fits {action}")
    return _Plan(action.kind, vps, _applicable(_NP[action.kind], action, slots), slots)


# ---------------------------------------------------------------------------------------------
# Rendering and composition.

_FINITE, _PAST, _GERUND, _BASE = 0, 1, 2, 3
_SUBJECTS = tuple((compile_template(t), g, compile_template(a)) for t, g, a in lx.SUBJECTS)
_POSS = tuple(compile_template(w) for w in lx.POSSESSIVE)
_REFL = tuple(compile_template(w) for w in lx.REFLEXIVE)


_CONNECTOR_FLAGS = ("last", "ger", "base", "np", "pron")


def _parse_connectors(block: str, held_out: bool = False):
    """-> (connectors usable before a middle clause, before the last one); each (next, parts)."""
    inner, last = [], []
    for conds, parts in parse_block(block, held_out, _CONNECTOR_FLAGS):
        nxt = next((c for c in conds if c != "last"), "")
        (last if "last" in conds else inner).append((nxt, parts))
    return tuple(inner), tuple(inner + last)


_CONN_FINITE = _parse_connectors(lx.CONNECTORS_FINITE)
_CONN_BARE = _parse_connectors(lx.CONNECTORS_BARE)
_CONN_NOUN = _parse_connectors(lx.CONNECTORS_NOUN)
_DOES = (compile_template("<do>"), compile_template("<perform>"))
_AUX = {_FINITE: compile_template("is"), _PAST: compile_template("was")}
_FIRST = compile_template("first")
_FIRST_COMMA = compile_template("first ,")
_STARTS_BY = (compile_template("<start> by"), compile_template("<begin> by"))
_AFTER = compile_template("after")
_BEFORE = compile_template("before")
_COMMA = compile_template(",")


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


_PARAPHRASES = {k: parse_block(PARAPHRASES[k], held_out=True) for k in ACTION_TYPES}
_HELD_OUT_CONNECTORS = _parse_connectors(HELD_OUT_CONNECTORS, held_out=True)
_HELD_OUT_SUBJECTS = tuple((compile_template(t, True), g) for t, g in HELD_OUT_SUBJECTS)
_PRIOR_TO = compile_template("prior to", True)


@functools.lru_cache(maxsize=4096)
def _held_out_plan(action: Action) -> _Plan:
    slots = held_out_slots(action)
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
