"""The caption writer's words: connectors, subjects, verb forms and the word lexicon.

Everything here is data (the connectors are templates in the language described in `phrases.py`);
`captions.py` compiles it once at import and renders it.

`LEXICON` maps every surface word a template, slot or connector can produce to its (lemma, UPOS)
analyses, first = default, written by hand (HumanML3D's tokens came from spaCy; ours need no model).
Numbers are NUM by rule (`analyses`).
"""

from __future__ import annotations

import re

UPOS = frozenset(
    "ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split()
)

# ---------------------------------------------------------------------------------------------
# Connectors between two clauses. Prefix flags: @last only before the final clause; @ger, @base,
# @np: the next clause is a gerund, a bare infinitive or a noun phrase (gerund when the action has
# none); @pron: the next clause gets its own subject ({pron} = he / she / the person).
# `FINITE` joins finite clauses ("a man walks, then turns"), `BARE` joins gerund chains, `NOUN`
# joins noun phrases after "does".

CONNECTORS_FINITE = """
    then
    , then
    and then
    , and then
    , after that
    and after that
    @pron , after which {pron}
    @last and
    @last , and
    @last , and finally
    @last and finally
    @ger before
    @ger , before
    @np , followed by
    @np followed by
    @base and then <proceed> to:PART
    @base , then <go> on to:PART
    @base and then <start> to:PART
    @pron , then {pron}
    @pron . then {pron}
    @pron . after that , {pron}
    @pron and then {pron}
    @pron . next , {pron}
    @pron , and then {pron}
    """

CONNECTORS_BARE = """
    then
    , then
    and then
    , and then
    @last and
    @last and finally
    @ger before
    @np followed by
    @np , followed by
    """

CONNECTORS_NOUN = """
    , then
    then
    and then
    , followed by
    followed by
    @last and
    @last and finally
    """

# Subjects: (text, gender 0 neutral / 1 male / 2 female, what a later clause calls them).
# Repeats weight the draw: HumanML3D says "a person" most of the time.
SUBJECTS: tuple[tuple[str, int, str], ...] = (
    ("a person", 0, "the person"),
    ("a person", 0, "the person"),
    ("a person", 0, "the person"),
    ("a person", 0, "the person"),
    ("the person", 0, "the person"),
    ("the person", 0, "the person"),
    ("someone", 0, "the person"),
    ("somebody", 0, "the person"),
    ("this person", 0, "the person"),
    ("a figure", 0, "the figure"),
    ("the figure", 0, "the figure"),
    ("a human", 0, "the human"),
    ("the human", 0, "the human"),
    ("a character", 0, "the character"),
    ("a man", 1, "he"),
    ("a man", 1, "he"),
    ("the man", 1, "he"),
    ("a guy", 1, "the guy"),
    ("he", 1, "he"),
    ("a woman", 2, "she"),
    ("a woman", 2, "she"),
    ("the woman", 2, "she"),
    ("she", 2, "she"),
)
POSSESSIVE = ("their", "his", "her")
REFLEXIVE = ("themselves", "himself", "herself")

# ---------------------------------------------------------------------------------------------
# Verb forms: lemma 3sg past gerund. Regular verbs are derived; list only what the rules miss.

VERB_LEMMAS = """
    advance back balance bend bow break bring circle clap climb come complete crouch dash
    deliver do drop duck extend get give go greet have hit hold hop hurry jab jog jump keep
    kick lean lift lower make move pause perform proceed pull punch push put raise reach remain
    rise rotate run shift sidestep sit spin begin curve spread sprint squat stand start stay step
    stretch strike stroll swing take throw toss trot turn twirl wait walk warm wave wind pretend
    face use follow
    """

IRREGULAR_VERBS = """
    bend bends bent bending
    begin begins began beginning
    break breaks broke breaking
    bring brings brought bringing
    come comes came coming
    do does did doing
    get gets got getting
    give gives gave giving
    go goes went going
    have has had having
    hit hits hit hitting
    hold holds held holding
    keep keeps kept keeping
    lean leans leaned leaning
    make makes made making
    put puts put putting
    rise rises rose rising
    run runs ran running
    sit sits sat sitting
    spin spins spun spinning
    stand stands stood standing
    strike strikes struck striking
    swing swings swung swinging
    take takes took taking
    throw throws threw throwing
    wind winds wound winding
    """

_DOUBLING = {"clap", "drop", "hop", "jab", "jog", "squat", "step", "trot", "sidestep"}


def verb_forms(lemma: str) -> tuple[str, str, str]:
    """(3sg, past, gerund) of a regular English verb."""
    if lemma in _DOUBLING:
        return lemma + "s", lemma + lemma[-1] + "ed", lemma + lemma[-1] + "ing"
    if lemma.endswith(("ch", "sh", "s", "x")):
        third = lemma + "es"
    elif lemma.endswith("y") and lemma[-2] not in "aeiou":
        third = lemma[:-1] + "ies"
    else:
        third = lemma + "s"
    if lemma.endswith("e"):
        past, ger = lemma + "d", lemma[:-1] + "ing"
    elif lemma.endswith("y") and lemma[-2] not in "aeiou":
        past, ger = lemma[:-1] + "ied", lemma + "ing"
    else:
        past, ger = lemma + "ed", lemma + "ing"
    return third, past, ger


def verb_table() -> dict[str, tuple[str, str, str]]:
    """lemma -> (3sg, past, gerund) for every corpus verb."""
    table = {lemma: verb_forms(lemma) for lemma in VERB_LEMMAS.split()}
    for line in IRREGULAR_VERBS.strip().splitlines():
        lemma, *forms = line.split()
        table[lemma] = tuple(forms)
    return table


# ---------------------------------------------------------------------------------------------
# Words other than verb forms, by tag. `surface=lemma` where they differ. A word listed under two
# tags has two analyses; the first listed is the default, templates pick another with `word:POS`.

WORDS = """
DET: a an the his her their this both some all
PRON: someone somebody something nothing he she himself herself themselves which that
NUM: one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
    sixteen seventeen eighteen nineteen twenty forty ninety
NOUN: person man woman figure human character guy body way circle path loop spot place line air
    pace jog run walk stroll trot sprint dash jump jumps=jump hop hops=hop jack jacks=jack squat
    squats=squat knee knees=knee bends=bend crouch position seat stair step steps=step kick
    punch punches=punch jab fist fists=fist waist leg legs=leg foot feet=foot arm arms=arm
    hand hands=hand head muscles=muscle side turn spin direction stretch stretching throw
    motion object wave waves=wave clap claps=clap bow moment pause series set round flurry
    raise star meter meters=meter metre metres=metre degree degrees=degree time times=time
    distance bit couple pair left right half quarter quarters=quarter sidestep
ADV: forward ahead backward backwards back sideways away up down around out over slowly quickly
    briskly rapidly hurriedly steadily fast leisurely lightly then first finally next once twice
    again repeatedly slightly sharply vertically politely briefly together halfway still there
    upward overhead high far about only just as left right straight low forth
ADJ: left right slow quick fast brisk rapid hurried steady moderate normal regular leisurely
    straight short long low big small full whole upper single vertical circular seated standing
    sitting crouching several few little many opposite other higher polite possible idle half
    forward more average broad slight sharp complete
ADP: to with in on onto into at of for from by above after before without off up toward
    than
CCONJ: and or
SCONJ: as if after before while
PART: to
AUX: is=be was=be
INTJ: hello goodbye
"""

NUMBER_WORDS = tuple(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split()
)

_NUMBER = re.compile(r"^\d+(\.\d+)?$")


def build_lexicon() -> dict[str, tuple[tuple[str, str], ...]]:
    """surface word -> its (lemma, UPOS) analyses, first = default."""
    lex: dict[str, list[tuple[str, str]]] = {}

    def add(surface: str, lemma: str, pos: str) -> None:
        entries = lex.setdefault(surface, [])
        if (lemma, pos) not in entries:
            entries.append((lemma, pos))

    for block in re.split(r"\n(?=[A-Z]+:)", WORDS.strip()):
        pos, _, words = block.partition(":")
        if pos not in UPOS:
            raise ValueError(f"lexicon tag {pos!r} is not a Universal POS tag")
        for word in words.split():
            surface, _, lemma = word.partition("=")
            add(surface, lemma or surface, pos)
    for lemma, (third, past, ger) in verb_table().items():
        for form in (lemma, third, past, ger):
            add(form, lemma, "VERB")
    return {w: tuple(a) for w, a in lex.items()}


LEXICON = build_lexicon()


def analyses(word: str) -> tuple[tuple[str, str], ...]:
    """The (lemma, UPOS) analyses of a lower-case surface word; numbers are NUM; () if unknown."""
    found = LEXICON.get(word)
    if found is not None:
        return found
    if _NUMBER.match(word):
        return ((word, "NUM"),)
    return ()
