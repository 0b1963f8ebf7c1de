"""Held-out wording for `captions.paraphrase_program`: verbs, typos, subjects, connectors, phrases.

None of these words is in `lexicon.LEXICON` (a test checks), so a model trained on the corpus has
never seen them. Same template language as `phrases.py`; slots come from the held-out phrase sets
in `caption_slots.py`.
"""

from __future__ import annotations

from easytune_engine.data.corpus.lexicon import verb_forms

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
