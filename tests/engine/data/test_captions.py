"""Caption writer: counts, format, lexicon coverage, faithfulness to the program, span captions,
held-out paraphrases, determinism and speed."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from easytune_engine.data.corpus import lexicon as lx
from easytune_engine.data.corpus.captions import (
    FPS,
    MIN_SPAN_FRAMES,
    Caption,
    caption_program,
    caption_segment,
    corpus_vocabulary,
    paraphrase_program,
    parse_caption_line,
    template_count,
)
from easytune_engine.data.corpus.held_out import held_out_verb_table
from easytune_engine.data.corpus.program import (
    ACTION_PARAMS,
    ACTION_TYPES,
    Action,
    Program,
    Segment,
)

ANGLES = (30.0, 45.0, 60.0, 90.0, 120.0, 135.0, 180.0, 200.0, 270.0, 360.0)


def random_action(kind: str, rng: np.random.Generator) -> Action:
    """Any valid parameters, wider than the corpus sampler draws."""
    draw = {
        "side": lambda: str(rng.choice(["left", "right", "both"])),
        "reps": lambda: int(rng.integers(1, 9)),
        "distance_m": lambda: float(np.round(rng.uniform(0.3, 12.0), 1)),
        "angle_deg": lambda: (
            float(rng.choice(ANGLES)) if rng.random() < 0.8 else rng.uniform(10, 400)
        ),
        "speed": lambda: str(rng.choice(["slow", "normal", "fast"])),
    }
    return Action(kind, **{p: draw[p]() for p in ACTION_PARAMS[kind]})


def random_program(rng: np.random.Generator, segments: int | None = None) -> Program:
    count = segments or int(rng.integers(1, 4))
    segs, start = [], int(rng.integers(0, 8))
    for _ in range(count):
        length = int(rng.integers(20, 80))
        kind = str(rng.choice(ACTION_TYPES))
        segs.append(Segment(random_action(kind, rng), start, start + length))
        start += length
    return Program(tuple(segs))


def single(action: Action) -> Program:
    return Program((Segment(action, 0, 60),))


def words(text: str) -> list[str]:
    return [w.strip(".,;") for w in text.lower().split() if w.strip(".,;")]


def whole(captions: list[Caption]) -> list[Caption]:
    return [c for c in captions if c.start == 0.0 and c.end == 0.0]


def captions_of(action: Action, seeds: int = 40, n: int = 5) -> list[str]:
    out = []
    for seed in range(seeds):
        out += [c.text for c in caption_program(single(action), np.random.default_rng(seed), n)]
    return out


# ---------------------------------------------------------------------------------------------
# Count, distinctness, format


@pytest.mark.parametrize("n", [3, 4, 6])
def test_n_distinct_whole_clip_captions(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(300):
        program = random_program(rng)
        caps = caption_program(program, rng, n)
        assert len(whole(caps)) == n
        assert len(caps) in (n, n + 1)
        keys = {re.sub(r"[.,;]", "", c.text.lower()) for c in whole(caps)}
        assert len(keys) == n, [c.text for c in caps]


def test_line_format_round_trips() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        for cap in caption_program(random_program(rng), rng, 4):
            line = cap.to_line()
            fields = line.split("#")
            assert len(fields) == 4
            float(fields[2]), float(fields[3])
            assert parse_caption_line(line) == cap
            assert cap.text == cap.text.strip() and "#" not in cap.text


def test_humanml3d_example_line_parses() -> None:
    line = (
        "a man kicks something with his left leg.#a/DET man/NOUN kick/VERB something/PRON "
        "with/ADP his/DET left/ADJ leg/NOUN#0.0#0.0"
    )
    cap = parse_caption_line(line)
    assert cap.tokens[2] == "kick/VERB" and cap.start == cap.end == 0.0
    assert cap.to_line() == line
    with pytest.raises(ValueError, match="4"):
        parse_caption_line("no tokens here#0.0#0.0")


def test_every_token_is_its_word_in_the_lexicon() -> None:
    rng = np.random.default_rng(1)
    for _ in range(3000):
        for cap in caption_program(random_program(rng), rng, 4):
            ws = words(cap.text)
            assert len(ws) == len(cap.tokens), (cap.text, cap.tokens)
            for word, token in zip(ws, cap.tokens, strict=True):
                lemma, _, pos = token.rpartition("/")
                assert pos in lx.UPOS, token
                assert lemma == lemma.lower()
                assert (lemma, pos) in lx.analyses(word), (word, token, cap.text)


def test_plans_exist_for_every_parameter_combination() -> None:
    """Every template's slots and words resolve for every kind of parameter value."""
    values = {
        "side": ["left", "right", "both"],
        "reps": [1, 2, 3, 5, 6, 10, 25],
        "distance_m": [0.2, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 4.5, 7.0, 12.0],
        "angle_deg": [10.0, *ANGLES, 400.0],
        "speed": ["slow", "normal", "fast"],
    }
    rng = np.random.default_rng(2)
    for kind, params in ACTION_PARAMS.items():
        for combo in itertools.product(*(values[p] for p in params)):
            action = Action(kind, **dict(zip(params, combo, strict=True)))
            assert len(caption_program(single(action), rng, 3)) == 3
            assert paraphrase_program(single(action), rng)


def test_template_count() -> None:
    assert template_count() >= 300


def test_bad_requests_raise() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n must be"):
        caption_program(single(Action("bow")), rng, 0)
    with pytest.raises(ValueError, match="no segments"):
        caption_program(Program(()), rng, 3)
    with pytest.raises(ValueError, match="out of range"):
        caption_segment(single(Action("bow")), 1, rng)


# ---------------------------------------------------------------------------------------------
# Faithfulness: never state a wrong parameter


@pytest.mark.parametrize(
    "kind", [k for k in ACTION_TYPES if "side" in ACTION_PARAMS[k]], ids=lambda k: k
)
def test_side_words_never_contradict(kind: str) -> None:
    rng = np.random.default_rng(3)
    for side, wrong in (("left", {"right"}), ("right", {"left"}), ("both", {"left", "right"})):
        for _ in range(15):
            params = {p: v for p, v in random_action(kind, rng).__dict__.items() if p != "side"}
            action = Action(**params | {"side": side})
            for text in captions_of(action, seeds=3):
                assert not wrong & set(words(text)), (action, text)


def test_composition_sides_never_contradict() -> None:
    program = Program(
        (
            Segment(Action("kick", side="left"), 0, 40),
            Segment(Action("punch", side="left", reps=2), 40, 80),
            Segment(Action("turn", side="left", angle_deg=90.0), 80, 110),
        )
    )
    rng = np.random.default_rng(4)
    for _ in range(200):
        for cap in caption_program(program, rng, 4):
            assert "right" not in words(cap.text), cap.text


def stated_counts(ws: list[str]) -> list[set[int]]:
    """The sets of repetition counts each count expression allows."""
    text = " ".join(ws)
    text = re.sub(r"\bone (leg|foot)\b", "", text)  # "hops on one leg" is not a count
    allowed: dict[str, set[int]] = {
        "once": {1},
        "single": {1},
        "twice": {2},
        "couple": {2},
        "pair": {2},
        "few": {3, 4, 5},
        "several": set(range(3, 10)),
        "many": set(range(6, 100)),
        "repeatedly": set(range(3, 100)),
        "series": set(range(3, 100)),
        "set": set(range(3, 100)),
        "flurry": set(range(3, 100)),
        "round": set(range(3, 100)),
    }
    allowed |= {w: {i} for i, w in enumerate(lx.NUMBER_WORDS) if i}
    out = []
    for w in text.split():
        if w.isdigit():
            out.append({int(w)})
        elif w in allowed:
            out.append(allowed[w])
    return out


@pytest.mark.parametrize("kind", [k for k in ACTION_TYPES if "reps" in ACTION_PARAMS[k]])
def test_counts_are_right_or_omitted(kind: str) -> None:
    rng = np.random.default_rng(5)
    for reps in (1, 2, 3, 4, 5, 6, 8):
        params = {p: v for p, v in random_action(kind, rng).__dict__.items() if p != "reps"}
        action = Action(**params | {"reps": reps})
        for text in captions_of(action, seeds=15):
            for allowed in stated_counts(words(text)):
                assert reps in allowed, (reps, text)
            if reps == 2 and re.search(r"\btimes?\b", text):
                assert re.search(r"\b(two|2) times\b|\bcouple of times\b", text), text


def test_twice_is_said_for_two() -> None:
    texts = captions_of(Action("jump_in_place", reps=2), seeds=60)
    assert any("twice" in t for t in texts)
    assert any(re.search(r"\b(two|2) times\b", t) for t in texts)
    assert not any("a few" in t or "several" in t for t in texts)


def test_turn_angles() -> None:
    for side in ("left", "right"):
        for text in captions_of(Action("turn", side=side, angle_deg=180.0)):
            assert re.search(r"around|180|half", text), text
        for text in captions_of(Action("turn", side=side, angle_deg=90.0)):
            assert not re.search(r"around|half|slight|\b45\b|180", text), text
        for text in captions_of(Action("turn", side=side, angle_deg=45.0)):
            assert not re.search(r"around|half|quarter|\b90\b|ninety|sharp", text), text
        for text in captions_of(Action("turn", side=side, angle_deg=360.0)):
            assert re.search(r"all the way around|full|complete|360", text), text


def test_stated_degrees_are_close() -> None:
    rng = np.random.default_rng(6)
    for _ in range(60):
        angle = float(rng.uniform(10, 400))
        for text in captions_of(Action("turn", side="left", angle_deg=angle), seeds=5):
            for value in re.findall(r"(?<!than )\b(\d+) degree", text):
                assert abs(int(value) - angle) <= 5, (angle, text)
            if "more than 90" in text:
                assert angle > 90, (angle, text)


SLOW = {"slowly", "slow", "leisurely", "stroll", "strolls", "strolled", "strolling"}
FAST = {"quickly", "quick", "fast", "briskly", "brisk", "rapidly", "rapid", "hurry", "hurried"}
FAST |= {"hurriedly", "hurries", "sprint", "sprints", "sprinting", "sprinted", "dash", "dashes"}
FAST |= {"dashing", "dashed"}
NORMAL = {"steady", "steadily", "moderate", "normal", "regular", "average"}


@pytest.mark.parametrize("kind", [k for k in ACTION_TYPES if "speed" in ACTION_PARAMS[k]])
def test_speed_words_never_contradict(kind: str) -> None:
    rng = np.random.default_rng(7)
    wrong = {"slow": FAST | NORMAL, "normal": SLOW | FAST, "fast": SLOW | NORMAL}
    for speed, bad in wrong.items():
        for _ in range(5):
            params = {p: v for p, v in random_action(kind, rng).__dict__.items() if p != "speed"}
            action = Action(**params | {"speed": speed})
            texts = captions_of(action, seeds=8)
            for text in texts:
                assert not bad & set(words(text)), (speed, text)
    # and the speed is said at least sometimes
    texts = captions_of(Action(**random_action(kind, rng).__dict__ | {"speed": "slow"}))
    assert any(SLOW & set(words(t)) for t in texts)


def test_actions_without_speed_never_mention_one() -> None:
    rng = np.random.default_rng(8)
    for kind in ACTION_TYPES:
        if "speed" in ACTION_PARAMS[kind]:
            continue
        for text in captions_of(random_action(kind, rng), seeds=10):
            assert not (SLOW | FAST | NORMAL) & set(words(text)), text


def test_directions_and_distances() -> None:
    rng = np.random.default_rng(9)
    for _ in range(40):
        d = float(np.round(rng.uniform(0.5, 12.0) * 2) / 2)
        fwd = captions_of(Action("walk", distance_m=d, speed="normal"), seeds=6)
        back = captions_of(Action("walk_backward", distance_m=d, speed="normal"), seeds=6)
        for text in fwd:
            assert not {"back", "backward", "backwards"} & set(words(text)), text
        for text in back:
            assert not {"forward", "ahead"} & set(words(text)), text
        for text in fwd + back:
            for value in re.findall(r"(\d+(?:\.\d+)?) met", text):
                assert abs(float(value) - d) <= max(0.5, 0.2 * d), (d, text)
            if "a few steps" in text or "a couple of steps" in text:
                assert d <= 4.5, (d, text)


def test_pronouns_agree_with_the_subject() -> None:
    rng = np.random.default_rng(14)
    pronouns = {
        0: {"their", "themselves"},
        1: {"he", "his", "himself"},
        2: {"she", "her", "herself"},
    }
    subjects = sorted({(t, g) for t, g, _ in lx.SUBJECTS}, key=lambda s: -len(s[0]))
    checked = 0
    for _ in range(1500):
        for cap in caption_program(random_program(rng), rng, 4):
            text = cap.text.lower()
            # the subject leads, or follows a fronted "after/before ...," clause
            lead = text.split(", ", 1)[1] if text.startswith(("after ", "before ")) else text
            lead = lead.removeprefix("first, ")
            gender = next((g for t, g in subjects if lead.startswith(t + " ")), None)
            if gender is not None:
                wrong = set().union(*(p for g, p in pronouns.items() if g != gender))
                assert not set(words(text)) & wrong, cap.text
                checked += 1
    assert checked > 3000


def test_tense_is_consistent() -> None:
    rng = np.random.default_rng(15)
    present = re.compile(r"\b(proceeds|goes on|starts to|begins by|starts by|is \w+ing)\b")
    past = re.compile(r"\b(proceeded|went on|started to|began by|started by|was \w+ing)\b")
    for _ in range(2000):
        for cap in caption_program(random_program(rng, segments=3), rng, 4):
            assert not (present.search(cap.text) and past.search(cap.text)), cap.text


# ---------------------------------------------------------------------------------------------
# Span captions


def test_span_captions_cover_one_long_segment() -> None:
    program = Program(
        (
            Segment(Action("jumping_jacks", reps=3), 4, 64),  # 3 s: the only span long enough
            Segment(Action("wave", side="left", reps=2), 64, 90),
        )
    )
    spans = []
    for seed in range(100):
        caps = caption_program(program, np.random.default_rng(seed), 3)
        spans += [c for c in caps if (c.start, c.end) != (0.0, 0.0)]
    assert 10 <= len(spans) <= 60  # "occasionally"
    for cap in spans:
        assert (cap.start, cap.end) == (4 / FPS, 64 / FPS)
        assert "wave" not in cap.text and re.search("jack|jump", cap.text), cap.text
        assert int(cap.start * FPS) == 4 and int(cap.end * FPS) == 64


def test_no_span_for_single_actions_or_short_segments() -> None:
    short = Program((Segment(Action("bow"), 0, 30), Segment(Action("clap", reps=2), 30, 60)))
    for seed in range(50):
        rng = np.random.default_rng(seed)
        assert all(c.start == c.end == 0.0 for c in caption_program(short, rng, 3))
        assert all(c.start == c.end == 0.0 for c in caption_program(single(Action("bow")), rng, 3))


def test_span_times_survive_frame_round_trip() -> None:
    rng = np.random.default_rng(10)
    for _ in range(500):
        program = random_program(rng, segments=int(rng.integers(2, 4)))
        for cap in caption_program(program, rng, 3, span_prob=1.0):
            if cap.start or cap.end:
                seg = next(s for s in program.segments if s.start / FPS == cap.start)
                assert cap.end == seg.end / FPS and seg.end - seg.start >= MIN_SPAN_FRAMES
                line = parse_caption_line(cap.to_line())
                assert int(line.start * FPS) == seg.start and int(line.end * FPS) == seg.end


def test_caption_segment() -> None:
    program = Program((Segment(Action("bow"), 3, 50), Segment(Action("squat", reps=2), 50, 120)))
    cap = caption_segment(program, 1, np.random.default_rng(0))
    assert (cap.start, cap.end) == (2.5, 6.0)
    assert "bow" not in cap.text


# ---------------------------------------------------------------------------------------------
# Held-out paraphrases

FUNCTION_WORDS = {
    "a", "an", "the", "and", "then", "to", "of", "with", "in", "on", "at", "up", "down", "his",
    "her", "their", "one", "times", "x", "left", "right", "both", "prior", "next", "later",
}  # fmt: skip


def test_held_out_verbs_are_unseen() -> None:
    vocab = corpus_vocabulary()
    lemmas = {lemma for analyses in lx.LEXICON.values() for lemma, _ in analyses}
    table = held_out_verb_table()
    assert len(table) >= 80
    for lemma, forms in table.items():
        assert lemma not in lemmas, lemma
        for form in (lemma, *forms):
            assert form not in vocab, form


def test_held_out_modifiers_are_unseen() -> None:
    vocab = corpus_vocabulary()
    held_out = "unhurriedly sluggishly crawl lazily swiftly speedily hastily tilt ordinary tempo"
    held_out += " comfortable clip roughly thrice occasions handful ways smidge marginally steeply"
    held_out += " revolution rotation veering bearing limb palm afterwards subsequently lastly"
    held_out += " actor performer individual fellow gentleman lady subject onward rearward"
    assert not set(held_out.split()) & vocab


def test_paraphrases_use_unseen_words_for_every_action() -> None:
    vocab = corpus_vocabulary()
    rng = np.random.default_rng(11)
    unseen_total = content_total = 0
    for _ in range(2000):
        program = random_program(rng)
        text = paraphrase_program(program, rng)
        ws = [w for w in words(text) if not re.match(r"^\d", w)]
        unseen = [w for w in ws if w not in vocab]
        assert len(unseen) >= len(program.segments), (text, unseen)
        content = [w for w in ws if w not in FUNCTION_WORDS]
        unseen_total += len([w for w in content if w not in vocab])
        content_total += len(content)
    assert unseen_total / content_total > 0.5


def test_paraphrases_are_faithful_to_sides() -> None:
    rng = np.random.default_rng(12)
    for kind in [k for k in ACTION_TYPES if "side" in ACTION_PARAMS[k]]:
        for side, wrong in (("left", "right"), ("right", "left")):
            params = {p: v for p, v in random_action(kind, rng).__dict__.items() if p != "side"}
            program = single(Action(**params | {"side": side}))
            for seed in range(20):
                text = paraphrase_program(program, np.random.default_rng(seed))
                assert wrong not in words(text), text


# ---------------------------------------------------------------------------------------------
# Determinism and speed


def test_deterministic_given_rng() -> None:
    programs = [random_program(np.random.default_rng(i)) for i in range(50)]
    a = [caption_program(p, np.random.default_rng(7), 4) for p in programs]
    b = [caption_program(p, np.random.default_rng(7), 4) for p in programs]
    assert a == b
    pa = [paraphrase_program(p, np.random.default_rng(7)) for p in programs]
    assert pa == [paraphrase_program(p, np.random.default_rng(7)) for p in programs]
    c = [caption_program(p, np.random.default_rng(8), 4) for p in programs]
    assert a != c


def test_captions_thousands_of_programs_without_failure() -> None:
    """Speed is measured in benchmarks/corpus_build.py, not asserted here; this checks scale."""
    rng = np.random.default_rng(13)
    programs = [random_program(rng) for _ in range(1000)]
    lines = [c.to_line() for p in programs for c in caption_program(p, rng, 4)]
    assert len(lines) >= 4000
    assert all(line.count("#") == 3 for line in lines)
