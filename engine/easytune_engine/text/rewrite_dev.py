"""The development word list `PromptRewriter`'s thresholds were chosen on.

Each entry: a prompt with one word outside the corpus lexicon, that word, and the lexicon words
that would be a right replacement. None of these words is a held-out test wording
(`data.corpus.held_out`, `caption_slots.held_out_slots`; a test checks), so the paraphrase test set
stays unseen by the calibration (`benchmarks/prompt_rewrite.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PERSON = "person figure human character man woman guy someone somebody"


@dataclass(frozen=True)
class DevCase:
    prompt: str
    word: str
    right: frozenset[str]


def _cases(table: str) -> tuple[DevCase, ...]:
    out = []
    for line in table.strip().splitlines():
        prompt, word, right = (part.strip() for part in line.split("|"))
        out.append(DevCase(prompt, word, frozenset(right.replace("PERSON", PERSON).split())))
    return tuple(out)


DEV_CASES = _cases(
    """
    a person wanders forward | wanders | walks strolls steps moves goes advances
    a person hikes ahead | hikes | walks strolls steps advances
    a man tiptoes forward slowly | tiptoes | walks steps strolls sneaks
    a woman promenades along a line | promenades | walks strolls
    someone scurries forward | scurries | runs hurries dashes jogs sprints
    a person rushes ahead | rushes | runs hurries dashes sprints
    a person scampers forward | scampers | runs hurries dashes jogs sprints trots
    a man vaults forward | vaults | jumps hops leaps
    a person skips in place | skips | hops jumps
    a person twists to the left | twists | turns rotates spins twirls
    someone revolves in place | revolves | spins turns rotates twirls circles
    a dancer gyrates twice | gyrates | spins turns rotates twirls
    a person kneels down | kneels | crouches squats bends
    a man stoops forward | stoops | bends leans bows crouches
    a person perches on a seat | perches | sits
    a woman lounges down | lounges | sits
    a person smashes with the right fist | smashes | punches hits strikes jabs
    a person whacks forward with the left fist | whacks | punches hits strikes jabs
    a man chucks an object | chucks | throws tosses
    a person heaves an object forward | heaves | throws tosses lifts
    a person salutes with the right hand | salutes | waves greets
    a person curtsies politely | curtsies | bows
    a person flexes the arms | flexes | stretches extends
    a person walks forward gently | gently | slowly lightly steadily leisurely
    a person walks forward calmly | calmly | slowly steadily leisurely
    a person runs forward promptly | promptly | quickly rapidly fast briskly hurriedly
    a person jogs energetically | energetically | quickly rapidly fast briskly
    a person walks forward gradually | gradually | slowly steadily
    a girl walks forward | girl | PERSON
    a boy jumps twice | boy | PERSON
    a dude waves | dude | PERSON
    an adult squats down | adult | PERSON
    the dancer spins around | dancer | PERSON
    an athlete runs forward | athlete | PERSON
    a fella hops twice | fella | PERSON
    then the chap waves | chap | PERSON
    a bloke turns left | bloke | PERSON
    a person raises the right wrist | wrist | hand arm
    a person kicks with the left shin | shin | leg foot knee
    a person lifts the left ankle | ankle | foot leg knee
    a person walks approximately two meters | approximately | about
    a person walks forward about five yards | yards | meters metres steps
    a person walks frontward | frontward | forward ahead
    a person steps leftward | leftward | left sideways
    """
)


def misspell(text: str, rng: np.random.Generator) -> str:
    """One or two typing slips in words of 4+ letters: swap, drop or double a letter."""
    words = text.split(" ")
    long = [i for i, w in enumerate(words) if sum(c.isalpha() for c in w) >= 4]
    for i in rng.choice(long, size=min(len(long), int(rng.integers(1, 3))), replace=False):
        w = words[i]
        j = int(rng.integers(1, len(w) - 2))
        kind = int(rng.integers(3))
        if kind == 0:
            w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
        elif kind == 1:
            w = w[:j] + w[j + 1 :]
        else:
            w = w[:j] + w[j] + w[j:]
        words[i] = w
    return " ".join(words)


def dev_typo_cases(count: int = 40, seed: int = 20261126) -> tuple[DevCase, ...]:
    """One slip in a corpus verb of a short prompt ("a person jmups forward"), the verb as right."""
    from ..data.corpus.held_out import HELD_OUT_TYPOS
    from ..data.corpus.lexicon import verb_table

    test_typos = set(HELD_OUT_TYPOS.split())  # the paraphrase set's own misspellings stay unseen
    rng = np.random.default_rng(seed)
    forms = sorted({third for third, _, _ in verb_table().values() if len(third) >= 4})
    out: list[DevCase] = []
    while len(out) < count:
        verb = forms[int(rng.integers(len(forms)))]
        slipped = misspell(verb, rng)
        if slipped != verb and slipped not in test_typos | {c.word for c in out}:
            out.append(DevCase(f"a person {slipped} forward", slipped, frozenset({verb})))
    return tuple(out)


def dev_slipped_synonym_cases(seeds: tuple[int, ...] = (7, 8)) -> tuple[DevCase, ...]:
    """The synonyms of `DEV_CASES` with one slip each ("a person hikkes ahead"), once per seed:
    a misspelt word the lexicon does not hold, so no lexicon word is one slip from it."""
    out: list[DevCase] = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        for c in DEV_CASES:
            slipped = misspell(c.word, rng)
            if slipped != c.word:
                out.append(DevCase(c.prompt.replace(c.word, slipped), slipped, c.right))
    return tuple(out)
