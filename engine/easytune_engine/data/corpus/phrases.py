"""The corpus's phrase templates: verb phrases and noun phrases, one block per action type.

Everything here is data; `captions.py` compiles it once at import and renders it.

Template mini-language (one template per line; the connectors in `lexicon.py` and the held-out
wording in `held_out.py` are written in it too):

    @cond,cond   optional prefix: every named condition must hold for the action (`CONDITIONS` in
                 caption_templates.py: speed slow/fast/normal, reps one/many/lots, side lr/both,
                 angles)
    <lemma>      a verb, inflected per clause: walks / walked / walking / walk
    {slot}       a phrase computed from the action's parameters (distance, count, side, angle, ...)
    {slot?}      the same, but the writer may leave it out (never a wrong value: just say less)
    word:POS     pick that analysis of an ambiguous word ("kicks:NOUN" after a number)
    , .          punctuation: kept in the text, dropped from the tokens

Every word must have an analysis in `lexicon.LEXICON` (compiling checks it).
"""

from __future__ import annotations

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
