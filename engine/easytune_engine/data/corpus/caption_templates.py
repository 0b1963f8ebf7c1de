"""Caption templates: compiling template lines into parts, and the `@cond` conditions on actions.

The template language is described in `phrases.py`. A template is compiled once (cached) into a
tuple of parts that `captions.py` renders; every word gets its (lemma, POS) token from the lexicon
here, so tokens cost nothing at render time.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection

from easytune_engine.data.corpus import lexicon as lx
from easytune_engine.data.corpus.held_out import held_out_verb_table
from easytune_engine.data.corpus.program import Action

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
_HELD_OUT_VERBS = _CORPUS_VERBS | held_out_verb_table()  # "does", "gets" stay available


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
def compile_template(template: str, held_out: bool = False) -> Parts:
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


def parse_block(
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
        out.append((conds, compile_template(line, held_out)))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Conditions on an action's parameters, used by `@cond` template prefixes.


def angle_bucket(angle: float) -> str:
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
        b: (lambda a, b=b: a.angle_deg is not None and angle_bucket(a.angle_deg) == b)
        for b in ("slight", "quarter", "sharp", "half", "threeq", "full")
    },
}
