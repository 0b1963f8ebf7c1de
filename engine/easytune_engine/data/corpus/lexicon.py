"""The caption writer's language: phrase templates, verb forms and the word lexicon.

Everything here is data; `captions.py` compiles it once at import and renders it.

Template mini-language (one template per line):

    @cond,cond   optional prefix: every named condition must hold for the action (`CONDITIONS` in
                 captions.py: speed slow/fast/normal, reps one/many/lots, side lr/both, angles)
    <lemma>      a verb, inflected per clause: walks / walked / walking / walk
    {slot}       a phrase computed from the action's parameters (distance, count, side, angle, ...)
    {slot?}      the same, but the writer may leave it out (never a wrong value: just say less)
    word:POS     pick that analysis of an ambiguous word ("kicks:NOUN" after a number)
    , .          punctuation: kept in the text, dropped from the tokens

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
# Verb phrases, one block per action type. Lines may be repeated across blocks; order is free.

VERB_PHRASES: dict[str, str] = {
    "walk": """
        <walk> forward {dist?} {speed?}
        {speedpre} <walk> forward {dist?}
        <walk> {dist} forward {speed?}
        <walk> straight ahead {speed?}
        <walk> ahead {dist?} {speed?}
        <walk> forward in a straight:ADJ line {speed?}
        <walk> forward at a {speedadj} pace
        @slow <stroll> forward {dist?} {speed?}
        @slow <stroll> ahead {speed?}
        <step> forward {dist?} {speed?}
        <move> forward {dist?} {speed?}
        <take> {steps} forward {speed?}
        <go> forward {dist?} {speed?}
        <make> {poss} way forward {speed?}
        <proceed> forward {dist?} {speed?}
        <advance> {dist?} {speed?}
        @fast <hurry> forward {dist?}
        @fast <walk> briskly forward
        @slow <take> slow steps forward
        """,
    "jog": """
        <jog> forward {dist?} {speed?}
        {speedpre} <jog> forward {dist?}
        <jog> {dist} forward {speed?}
        <jog> ahead {speed?}
        <jog> straight ahead {dist?} {speed?}
        <jog> forward at a {speedadj} pace
        <jog> in a straight:ADJ line {speed?}
        <trot> forward {dist?} {speed?}
        <trot> ahead {speed?}
        @notfast <jog> lightly forward {dist?}
        <move> forward at a jog {dist?}
        <break> into a jog
        <go> for a jog forward
        <do> a bit of jogging forward
        """,
    "run": """
        <run> forward {dist?} {speed?}
        {speedpre} <run> forward {dist?}
        <run> {dist} forward {speed?}
        <run> ahead {speed?}
        <run> straight ahead {dist?} {speed?}
        <run> forward at a {speedadj} pace
        <run> in a straight:ADJ line {speed?}
        @fast <sprint> forward {dist?}
        @fast <sprint> ahead
        @fast <sprint> {dist} forward
        @fast <dash> forward {dist?}
        @fast <dash> ahead
        @fast <run> as fast as:SCONJ possible
        <move> forward at a run {dist?}
        <break> into a run
        <take> off running forward
        """,
    "walk_backward": """
        <walk> backward {dist?} {speed?}
        <walk> backwards {dist?} {speed?}
        {speedpre} <walk> backward {dist?}
        <walk> {dist} backward {speed?}
        <walk> backward at a {speedadj} pace
        <walk> back {dist?} {speed?}
        <step> back {dist?} {speed?}
        <step> backward {dist?} {speed?}
        <move> backward {dist?} {speed?}
        <move> backwards {dist?} {speed?}
        <back> up {dist?} {speed?}
        <back> away {speed?}
        <take> {steps} back {speed?}
        <take> {steps} backward {speed?}
        <go> backward {dist?} {speed?}
        """,
    "side_step": """
        @lr <sidestep> {sdir} {dist?}
        @lr <sidestep> {dist} {sdir}
        @lr <step> sideways {sdir} {dist?}
        @lr <step> {sdir} {dist?}
        @lr <step> out to the {sidenoun}
        @lr <move> sideways {sdir} {dist?}
        @lr <move> {dist} {sdir}
        @lr <take> {steps} {sdir}
        @lr <take> {steps} sideways {sdir}
        @lr <walk> sideways {sdir} {dist?}
        @lr <shift> sideways {sdir}
        @lr <move> over to the {sidenoun} {dist?}
        @both <step> from side to side
        @both <sidestep> from side to side
        @both <move> sideways back and forth
        """,
    "turn": """
        @plain <turn> {dir}
        @plain,lr <turn> to the {sidenoun}
        @plain,lr <turn> {poss} body to the {sidenoun}
        @plain,lr <make> a {side} turn
        <turn> {angle} {dir?}
        <turn> {dir} {degrees}
        <rotate> {angle} {dir?}
        <rotate> {poss} body {angle} {dir?}
        <make> a {anglenp} turn {dir?}
        <do> a {anglenp} turn {dir?}
        @half <turn> around
        @half <turn> around {dir}
        @half <turn> around to face the opposite direction
        @half <turn> around to face the other way
        @half <turn> around to face backward
        @full <turn> all the way around {dir?}
        @full <turn> in a full circle {dir?}
        @slight <turn> {poss} body slightly {dir?}
        @quarter <turn> sideways {dir?}
        """,
    "walk_circle": """
        <walk> in a circle {cdir?} {speed?}
        {speedpre} <walk> in a circle {cdir?}
        <walk> around in a circle {cdir?} {speed?}
        <walk> in a circular path {cdir?} {speed?}
        <walk> in a loop {cdir?} {speed?}
        <walk> in a circle at a {speedadj} pace
        <circle> around {cdir?} {speed?}
        <make> a circle {cdir?} {speed?}
        <go> around in a circle {cdir?} {speed?}
        <move> in a circle {cdir?} {speed?}
        <walk> a circle {cdir?}
        @slow <stroll> in a circle {cdir?} {speed?}
        @slow <stroll> around in a loop {cdir?}
        @lr <walk> around {cdir}
        """,
    "spin": """
        <spin> around {dir?}
        <spin> {dir} in place
        <spin> in place {dir?}
        <spin> on the spot {dir?}
        <spin> in a full circle {dir?}
        <spin> all the way around:ADV {dir?}
        <twirl> around {dir?}
        <twirl> {dir?} in place
        <do> a spin {dir?}
        <do> a full spin {dir?}
        <make> a full turn {dir?}
        <turn> a full circle {dir?}
        <spin> {poss} body around {dir?}
        <rotate> all the way around:ADV {dir?}
        """,
    "jump_in_place": """
        <jump> in place {reps?}
        <jump> up and down {reps?}
        <jump> on the spot {reps?}
        <jump> straight up {reps?}
        <jump> up {reps?}
        <jump> vertically {reps?}
        <jump> {reps}
        <jump> {reps} in place
        @one <do> a jump in place
        @one <do> a single jump
        @one <do> a vertical jump
        @many <do> {nreps} jumps:NOUN in place
        @many <do> {nreps} vertical jumps:NOUN
        @lots <jump> repeatedly in place
        @many <jump> up and down on the spot {reps?}
        """,
    "jump_forward": """
        <jump> forward {dist?}
        <jump> ahead {dist?}
        <jump> {dist} forward
        <jump> forward with both feet {dist?}
        <do> a forward jump
        <do> a jump forward {dist?}
        <make> a jump forward {dist?}
        <do> a standing broad jump {dist?}
        @jfar <do> a big jump forward
        @jfar <jump> far forward
        @jnear <do> a small jump forward
        @jnear <jump> forward a little
        <jump> forward with {poss} feet together
        <jump> forward off both feet
        """,
    "hop": """
        <hop> on {leg} {reps?}
        <hop> {reps} on {leg}
        <hop> in place on {leg} {reps?}
        <hop> up and down on {leg} {reps?}
        @lr <hop> on one leg {reps?}
        @lr <hop> on one foot {reps?}
        @lr <hop> on the {side} {legword} {reps?}
        @lr <balance> on {leg} and <hop> {reps?}
        @lr <stand> on {leg} and <hop> {reps?}
        @lr <hop> {reps?} using only the {side} leg
        @one <do> a single hop on {leg}
        @one <do> a hop on {leg}
        @many <do> {nreps} hops:NOUN on {leg}
        @lots <hop> repeatedly on {leg}
        @both <hop> with both feet together {reps?}
        """,
    "jumping_jacks": """
        @one <do> a jumping jack
        @one <perform> a jumping jack
        @one <do> a single jumping jack
        @one <do> a star jump
        @many <do> {nreps} jumping jacks
        @many <perform> {nreps} jumping jacks
        @many <complete> {nreps} jumping jacks
        @many <do> jumping jacks
        @many <do> some jumping jacks
        @lots <do> a set of jumping jacks
        @many <do> {nreps} star jumps:NOUN
        @many <do> star jumps:NOUN
        <jump> while spreading {poss} arms and legs {reps?}
        <jump> and <spread> {poss} arms and legs {reps?}
        """,
    "squat": """
        <squat> {reps?}
        <squat> down {reps?}
        <squat> {reps}
        <squat> down and <stand> back up {reps?}
        <squat> down and <come> back up {reps?}
        <bend> {poss} knees into a squat {reps?}
        <lower> {refl} into a squat {reps?}
        @one <do> a squat
        @one <perform> a squat
        @one <do> a single squat
        @many <do> {nreps} squats:NOUN
        @many <perform> {nreps} squats:NOUN
        @many <do> squats:NOUN
        @many <do> {nreps} knee bends:NOUN
        @lots <squat> repeatedly
        @lots <do> a set of squats:NOUN
        """,
    "crouch": """
        <crouch>
        <crouch> down
        <crouch> low
        <crouch> down low
        <crouch> down briefly
        <get> into a crouch
        <go> into a crouch
        <drop> into a crouch
        <lower> {refl} into a crouch
        <bend> down into a crouching position
        <duck> down
        <get> down low
        <crouch> down and <stand> back up
        <crouch> down and <come> back up
        """,
    "sit_down": """
        <sit> down
        <sit>
        <take> a seat
        <have> a seat
        <sit> {refl} down
        <lower> {refl} into a seated position
        <lower> {refl} down to:PART sit
        <go> from standing:VERB to sitting:VERB
        <move> into a sitting position
        <bend> {poss} knees and <sit> down
        <get> into a seated position
        """,
    "stand_up": """
        <stand> up
        <get> up
        <stand> back up
        <rise> up
        <rise> to {poss} feet
        <get> to {poss} feet
        <rise> from a seated position
        <stand> up from a sitting position
        <go> from sitting:VERB to standing:VERB
        <push> {refl} up to:PART stand
        <rise> from sitting
        <come> to a standing position
        <get> back up on {poss} feet
        """,
    "step_up": """
        <step> up
        <step> up onto something
        <step> up onto a step
        <step> up onto a stair
        <step> onto something higher
        <climb> up a step
        <climb> onto something
        <climb> a single stair
        <take> a step up
        <step> upward
        <go> up:ADP a step
        <lift> {refl} up onto a step
        """,
    "kick": """
        <kick> with {leg}
        <kick> forward with {leg}
        <kick> out with {leg}
        <kick> something with {leg}
        <kick> the air with {leg}
        <kick> {leg?}
        <kick> forward
        <do> a kick with {leg}
        <perform> a kick with {leg}
        @lr <kick> {poss} {side} leg forward
        @lr <kick> {poss} {side} foot out
        @lr <do> a {side} kick
        @lr <swing> {poss} {side} leg forward in a kick
        @lr <lift> {poss} {side} leg and <kick>
        @lr <kick> forward with the {side} {legword}
        @lr <deliver> a {side} kick
        """,
    "punch": """
        <punch> with {fist} {reps?}
        <punch> forward with {fist} {reps?}
        <punch> {reps} with {fist}
        <punch> the air with {fist} {reps?}
        <punch> forward {reps?}
        <punch> {reps}
        <strike> with {fist} {reps?}
        <strike> forward with {fist} {reps?}
        <hit> the air with {fist} {reps?}
        @lr <jab> with {fist} {reps?}
        @lr <jab> {poss} {side} fist forward {reps?}
        @lr <extend> {poss} {side} arm in a punch {reps?}
        @lr,one <throw> a {side} punch
        @lr,one <do> a {side} jab
        @many <throw> {nreps} punches:NOUN with {fist}
        @lr,many <throw> {nreps} {side} punches:NOUN
        @lots <punch> repeatedly with {fist}
        @lots <throw> a series of punches:NOUN with {fist}
        """,
    "throw": """
        <throw> something with {arm}
        <throw> something forward with {arm}
        <throw> an object with {arm}
        <throw> something
        <throw> something forward
        <toss> something with {arm}
        <toss> an object forward with {arm}
        <make> a throwing motion with {arm}
        <do> a throwing motion with {arm}
        <pretend> to:PART throw:VERB something with {arm}
        <wind> up and <throw> with {arm}
        @lr <pull> {poss} {side} arm back and <throw>
        @lr <throw> with {poss} {side} arm
        @both <throw> something overhead with both hands
        """,
    "wave": """
        <wave> with {hand} {reps?}
        <wave> {hand} {reps?}
        <wave> {reps?}
        <wave> {reps}
        <wave> hello with {hand}
        <wave> goodbye with {hand}
        <wave> {hand} back and forth {reps?}
        <wave> {hand} in the air {reps?}
        <wave> at someone with {hand} {reps?}
        <greet> someone by waving {hand}
        @lr <raise> {poss} {side} hand and <wave> {reps?}
        @lr <lift> {poss} {side} arm and <wave> {reps?}
        @one <give> a wave with {hand}
        @many <give> {nreps} waves:NOUN with {hand}
        @lots <wave> repeatedly with {hand}
        """,
    "raise_arms": """
        <raise> {arm}
        <raise> {arm} up
        <raise> {arm} into the air
        <raise> {arm} upward
        <lift> {arm}
        <lift> {arm} up
        <lift> {arm} above {poss} head
        <put> {arm} up
        <hold> {arm} up
        <hold> {arm} up in the air
        <reach> up with {arm}
        @lr <raise> {poss} {side} arm high
        @both <put> {poss} hands up in the air
        @both <raise> both arms overhead
        @both <throw> {poss} arms up
        """,
    "clap": """
        <clap> {reps?}
        <clap> {reps}
        <clap> {poss} hands {reps?}
        <clap> {poss} hands together {reps?}
        <bring> {poss} hands together {reps?}
        <clap> {reps} with both hands
        @one <give> a single clap
        @one <do> a clap
        @many <give> {nreps} claps:NOUN
        @many <do> {nreps} claps:NOUN
        @lots <clap> repeatedly
        """,
    "bow": """
        <bow>
        <bow> forward
        <bow> down
        <bow> politely
        <take> a bow
        <do> a bow
        <make> a bow
        <bend> forward in a bow
        <bend> at the waist in a bow
        <lean> forward into a bow
        <bow> as:SCONJ if greeting someone
        <bow> {poss} head and upper body
        """,
    "stretch": """
        <stretch>
        <stretch> out
        <stretch> {poss} body
        <stretch> {poss} whole body
        <do> a stretch
        <do> some stretching:NOUN
        <do> a full body stretch
        <take> a moment to:PART stretch:VERB
        <warm> up with a stretch
        <stretch> {poss} muscles
        """,
    "idle": """
        <stand> still
        <stand> in place
        <stand> there
        <stand> idle
        <stand> without moving
        <stand> still for a moment
        <wait>
        <wait> in place
        <stay> still
        <stay> in place
        <remain> standing:VERB
        <remain> still
        <pause>
        <pause> for a moment
        <hold> still
        <do> nothing for a moment
        """,
}

# Noun phrases for "followed by ..." and "does ..., then ...". An action may have none.
NOUN_PHRASES: dict[str, str] = {
    "walk": """
        a walk forward
        a {speedadj} walk forward
        {steps} forward
        @near a short walk forward
        @far a long walk forward
        @slow a stroll forward
        """,
    "jog": """
        a jog forward
        a {speedadj} jog forward
        @near a short jog forward
        a trot forward
        """,
    "run": """
        a run forward
        a {speedadj} run forward
        @near a short run forward
        @fast a sprint forward
        @fast a dash forward
        """,
    "walk_backward": """
        a walk backward
        a {speedadj} walk backward
        {steps} back
        {steps} backward
        """,
    "side_step": """
        @lr a sidestep {sdir}
        @lr a step {sdir}
        @lr {steps} {sdir}
        @lr {steps} sideways {sdir}
        @lr a {side} sidestep
        """,
    "turn": """
        a {anglenp} turn {dir?}
        @plain,lr a {side} turn
        @plain,lr a turn to the {sidenoun}
        """,
    "walk_circle": """
        a walk in a circle {cdir?}
        a {speedadj} walk in a circle
        a circle {cdir?}
        a loop {cdir?}
        """,
    "spin": """
        a spin {dir?}
        a full spin {dir?}
        @lr a {side} spin
        """,
    "jump_in_place": """
        @one a jump
        @one a jump in place
        @one a vertical jump
        @many {nreps} jumps:NOUN
        @many {nreps} jumps:NOUN in place
        @lots a series of jumps:NOUN
        """,
    "jump_forward": """
        a jump forward
        a forward jump
        a standing broad jump
        @jfar a big jump forward
        @jnear a small jump forward
        """,
    "hop": """
        @one a hop on {leg}
        @many {nreps} hops:NOUN on {leg}
        @lots a series of hops:NOUN on {leg}
        """,
    "jumping_jacks": """
        @one a jumping jack
        @one a star jump
        @many {nreps} jumping jacks
        @many some jumping jacks
        @lots a set of jumping jacks
        @many {nreps} star jumps:NOUN
        """,
    "squat": """
        @one a squat
        @many {nreps} squats:NOUN
        @many some squats:NOUN
        @lots a set of squats:NOUN
        @many {nreps} knee bends:NOUN
        """,
    "crouch": """
        a crouch
        a low:ADJ crouch
        """,
    "sit_down": "",
    "stand_up": "",
    "step_up": """
        a step up
        a step up onto something
        """,
    "kick": """
        a kick
        a forward kick
        a kick with {leg}
        @lr a {side} kick
        @lr a {side} leg kick
        """,
    "punch": """
        @one a punch
        @one a punch with {fist}
        @lr,one a {side} punch
        @lr,one a {side} jab
        @many {nreps} punches:NOUN with {fist}
        @lr,many {nreps} {side} punches:NOUN
        @lots a flurry of punches:NOUN
        """,
    "throw": """
        a throw
        a throw with {arm}
        a throwing motion with {arm}
        """,
    "wave": """
        @one a wave
        a wave with {hand}
        a wave hello
        @many {nreps} waves:NOUN with {hand}
        """,
    "raise_arms": """
        @lr a {side} arm raise
        @both a raise of both arms
        """,
    "clap": """
        @one a clap
        @one a single clap
        @many {nreps} claps:NOUN
        @lots a round of claps:NOUN
        """,
    "bow": """
        a bow
        a polite bow
        a forward bow
        """,
    "stretch": """
        a stretch
        a full body stretch
        some stretching:NOUN
        """,
    "idle": "",  # "does a pause" reads badly; "followed by standing still" is used instead
}

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


# ---------------------------------------------------------------------------------------------
# Held-out wording for `paraphrase_program`: none of these words is in LEXICON (a test checks), so
# a model trained on the corpus has never seen them. Same template language; slots come from
# `HELD_OUT_SLOTS`-style phrase sets in captions.py.

HELD_OUT_VERBS = """
    amble saunter stride march plod trek lope lumber race bolt hurtle gallop backpedal retreat
    reverse scoot slide edge shuffle swivel pivot wheel execute trace orbit pirouette whirl swirl
    leap spring bound hurdle bounce splay sink dip hunker huddle plop plunk settle arise
    straighten mount ascend punt boot lash sock thump pummel hurl fling lob pitch gesture signal
    flap hoist elevate thrust applaud smack incline nod limber loosen linger loiter freeze
    """

HELD_OUT_IRREGULAR = """
    stride strides strode striding
    slide slides slid sliding
    spring springs sprang springing
    sink sinks sank sinking
    fling flings flung flinging
    thrust thrusts thrust thrusting
    freeze freezes froze freezing
    arise arises arose arising
    dip dips dipped dipping
    plop plops plopped plopping
    lob lobs lobbed lobbing
    flap flaps flapped flapping
    nod nods nodded nodding
    trek treks trekked trekking
    plod plods plodded plodding
    """

# Misspelt corpus verbs ("wlaks", "jumsp"): lemma 3sg gerund.
HELD_OUT_TYPOS = """
    wlak wlaks wlaking
    jgo jgos jgoing
    rnu rnus rnuing
    trun truns truning
    spni spnis spniing
    jmup jumsp jmuping
    hpo hpos hpoing
    sqaut sqauts sqauting
    crohc crohces crohcing
    siit siits siiting
    stnad stnads stnading
    stpe stpes stpeing
    kcik kciks kciking
    pnuch pnuches pnuching
    thorw thorws thorwing
    wvae wvaes wvaing
    rasie rasies rasieing
    calp calps calping
    bwo bwos bwoing
    strecth strecthes strecthing
    """


def held_out_verb_table() -> dict[str, tuple[str, str, str]]:
    """lemma -> (3sg, past, gerund) for held-out verbs and typos (a typo's past is its 3sg)."""
    table = {v: verb_forms(v) for v in HELD_OUT_VERBS.split()}
    for line in HELD_OUT_IRREGULAR.strip().splitlines():
        lemma, *forms = line.split()
        table[lemma] = tuple(forms)
    for line in HELD_OUT_TYPOS.strip().splitlines():
        lemma, third, ger = line.split()
        table[lemma] = (third, third, ger)
    return table


HELD_OUT_SUBJECTS: tuple[tuple[str, int], ...] = (
    ("an actor", 0),
    ("the performer", 0),
    ("an individual", 0),
    ("the subject", 0),
    ("a fellow", 1),
    ("a gentleman", 1),
    ("a lady", 2),
)

HELD_OUT_CONNECTORS = """
    , afterwards
    and afterwards
    , subsequently
    and subsequently
    and later
    , later
    , and next
    ; next
    , once done ,
    @last and lastly
    @ger prior to
    """

PARAPHRASES: dict[str, str] = {
    "walk": """
        @notfast <amble> ahead {dist?} {speed?}
        @notfast <saunter> onward {dist?} {speed?}
        <stride> ahead {dist?} {speed?}
        <march> onward {dist?} {speed?}
        @slow <plod> ahead {dist?}
        <trek> onward {dist?} {speed?}
        <wlak> forward {dist?} {speed?}
        """,
    "jog": """
        <lope> ahead {dist?} {speed?}
        <lope> onward {dist?} {speed?}
        <jgo> forward {dist?} {speed?}
        """,
    "run": """
        @fast <race> ahead {dist?}
        @fast <bolt> onward {dist?}
        @fast <hurtle> onward {dist?}
        @slow <lumber> ahead at a run
        <gallop> ahead {dist?} {speed?}
        <rnu> forward {dist?} {speed?}
        """,
    "walk_backward": """
        <backpedal> {dist?} {speed?}
        <retreat> rearward {dist?} {speed?}
        <reverse> on foot {dist?} {speed?}
        <wlak> backwards {dist?} {speed?}
        """,
    "side_step": """
        @lr <scoot> over toward the {side} {dist?}
        @lr <slide> laterally toward the {side} {dist?}
        @lr <edge> toward the {side} {dist?}
        @lr <shuffle> laterally to the {side} {dist?}
        @both <shuffle> laterally back and forth
        @both <edge> from one flank to the other
        """,
    "turn": """
        <swivel> {angle} {dir?}
        <pivot> {angle} {dir?}
        @plain <wheel> {dir}
        @plain <trun> {dir}
        @half <execute> an about-face
        """,
    "walk_circle": """
        <trace> a ring on foot {cdir?} {speed?}
        <orbit> around an imaginary point {cdir?}
        @notfast <amble> along a circular route {cdir?}
        <wlak> in a cirlce {cdir?}
        """,
    "spin": """
        <pirouette> {dir?}
        <whirl> around {dir?}
        <swirl> around {dir?}
        <spni> around {dir?}
        """,
    "jump_in_place": """
        <leap> upward {reps?}
        <spring> up {reps?}
        <bound> upward on the spot {reps?}
        <jmup> in place {reps?}
        """,
    "jump_forward": """
        <leap> ahead {dist?}
        <bound> ahead {dist?}
        <spring> ahead {dist?}
        <hurdle> ahead {dist?}
        <jmup> forward {dist?}
        """,
    "hop": """
        <bounce> on {leg} {reps?}
        <spring> up and down on {leg} {reps?}
        <hpo> on {leg} {reps?}
        """,
    "jumping_jacks": """
        @one <do> one side straddle hop
        @many <do> {nreps} side straddle hops
        <splay> {poss} limbs outward while bouncing {reps?}
        @one <perform> one jumpign jakc
        @many <perform> {nreps} jumpign jakcs
        """,
    "squat": """
        <sink> low and <arise> again {reps?}
        <dip> down and back up {reps?}
        <sqaut> {reps?}
        @one <do> one knee flexion
        @many <do> {nreps} knee flexions
        """,
    "crouch": """
        <hunker> down
        <huddle> down low
        <crohc> down
        """,
    "sit_down": """
        <plop> down
        <plunk> down onto a chair
        <settle> into a chair
        <siit> down
        """,
    "stand_up": """
        <arise> from the chair
        <straighten> up into an upright stance
        <stnad> up
        """,
    "step_up": """
        <mount> a stair
        <ascend> onto a raised block
        <stpe> up
        """,
    "kick": """
        <punt> with {leg}
        <boot> the air with {leg}
        <lash> out with {leg}
        <kcik> with {leg}
        """,
    "punch": """
        <sock> the air with {fist} {reps?}
        <thump> the air with {fist} {reps?}
        @lots <pummel> the air with {fist}
        <pnuch> with {fist} {reps?}
        """,
    "throw": """
        <hurl> something with {arm}
        <fling> an item with {arm}
        <lob> something with {arm}
        <pitch> something with {arm}
        <thorw> something with {arm}
        """,
    "wave": """
        <gesture> hello with {hand} {reps?}
        <signal> with {hand} {reps?}
        <flap> {hand} in greeting {reps?}
        <wvae> with {hand} {reps?}
        """,
    "raise_arms": """
        <hoist> {arm}
        <elevate> {arm}
        <thrust> {arm} skyward
        <rasie> {arm}
        """,
    "clap": """
        <applaud> {reps?}
        <smack> {poss} palms together {reps?}
        <calp> {reps?}
        """,
    "bow": """
        <incline> the upper body respectfully
        <nod> from the waist
        <bwo>
        """,
    "stretch": """
        <limber> up
        <loosen> up the muscles
        <strecth>
        """,
    "idle": """
        <linger> motionless
        <loiter> in one spot
        <freeze> for a while
        <stnad> still
        """,
}
