"""Tests for the motion oracle: rates on synthesised corpus clips and specific verdicts."""

from __future__ import annotations

import time

import numpy as np
import pytest

from easytune_engine.data.corpus import oracle_detectors
from easytune_engine.data.corpus.oracle import Verdict, detector_names, evaluate_oracle, judge
from easytune_engine.data.corpus.poses import action_frames
from easytune_engine.data.corpus.program import ACTION_TYPES, Action, Program, Segment
from easytune_engine.data.corpus.synth import sample_body, synthesize
from easytune_engine.motion.features import features_to_joints, joints_to_features


def make_clip(*actions: Action, seed: int = 0, lead: int = 4) -> np.ndarray:
    """Joints of one corpus body performing `actions` at tempo 1, stored as the corpus stores
    them (float32, through the feature round trip)."""
    segments, start = [], lead
    for a in actions:
        length = action_frames(a, 1.0)
        segments.append(Segment(a, start, start + length))
        start += length
    program = Program(segments=tuple(segments), frames=start + lead)
    rng = np.random.default_rng(seed)
    body, _ = sample_body(rng)
    joints = synthesize(program, body, rng).astype(np.float32)
    return features_to_joints(joints_to_features(joints))


def accepts(joints: np.ndarray, *actions: Action) -> bool:
    return judge(joints, list(actions)).accepted


def rotate_and_shift(joints: np.ndarray, yaw: float, shift: tuple[float, float, float]):
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return joints @ rot.T + np.asarray(shift)


# ----------------------------------------------------------------------------------------------
# Rates


@pytest.fixture(scope="module")
def rates() -> dict:
    return evaluate_oracle(300, seed=7)


def test_accepts_clips_with_their_own_program(rates: dict) -> None:
    assert rates["accept_rate"] >= 0.95, rates


def test_rejects_clips_with_a_program_of_other_actions(rates: dict) -> None:
    assert rates["reject_rate"] >= 0.90, rates


def test_mostly_rejects_a_changed_side_count_angle_or_distance(rates: dict) -> None:
    assert rates["hard_reject_rate"] >= 0.85, rates


def test_rates_are_broken_down_by_action(rates: dict) -> None:
    per = rates["per_action"]
    assert set(per) <= set(ACTION_TYPES)
    assert len(per) >= 20  # 300 clips cover nearly every action type
    for kind, cell in per.items():
        assert set(cell) == {"accept", "reject", "hard_reject", "clips"}, kind
        assert cell["clips"] >= 1


def test_evaluate_oracle_needs_two_clips() -> None:
    with pytest.raises(ValueError, match="n_clips"):
        evaluate_oracle(1, seed=0)


def test_covers_every_action_type() -> None:
    assert set(detector_names()) == set(ACTION_TYPES)


# ----------------------------------------------------------------------------------------------
# Specific verdicts


def test_kick_side() -> None:
    clip = make_clip(Action("kick", side="left"))
    assert accepts(clip, Action("kick", side="left"))
    verdict = judge(clip, [Action("kick", side="right")])
    assert not verdict.accepted
    assert "right foot" in verdict.reason


def test_turn_direction_and_angle() -> None:
    clip = make_clip(Action("turn", side="left", angle_deg=90.0), seed=1)
    assert accepts(clip, Action("turn", side="left", angle_deg=90.0))
    assert not accepts(clip, Action("turn", side="right", angle_deg=90.0))
    assert not accepts(clip, Action("turn", side="left", angle_deg=180.0))
    turn = judge(clip, [Action("turn", side="left", angle_deg=90.0)]).segments[0]
    assert turn.measured["turn_deg"] == pytest.approx(90.0, abs=5.0)  # positive = to the left


def test_jump_count() -> None:
    clip = make_clip(Action("jump_in_place", reps=2), seed=2)
    assert accepts(clip, Action("jump_in_place", reps=2))
    assert not accepts(clip, Action("jump_in_place", reps=3))
    assert not accepts(clip, Action("jump_in_place", reps=1))


def test_walk_is_not_a_run() -> None:
    clip = make_clip(Action("walk", distance_m=4.0, speed="normal"), seed=3)
    assert accepts(clip, Action("walk", distance_m=4.0, speed="normal"))
    assert not accepts(clip, Action("run", distance_m=4.0, speed="normal"))
    assert not accepts(clip, Action("walk_backward", distance_m=4.0, speed="normal"))
    assert not accepts(clip, Action("walk", distance_m=8.0, speed="normal"))


def test_run_is_not_a_walk_or_a_jog() -> None:
    clip = make_clip(Action("run", distance_m=8.0, speed="normal"), seed=4)
    assert accepts(clip, Action("run", distance_m=8.0, speed="normal"))
    assert not accepts(clip, Action("walk", distance_m=8.0, speed="fast"))
    assert not accepts(clip, Action("jog", distance_m=8.0, speed="fast"))


@pytest.mark.parametrize("side", ["left", "right", "both"])
def test_wave_hands_and_count(side: str) -> None:
    clip = make_clip(Action("wave", side=side, reps=3), seed=5)
    assert accepts(clip, Action("wave", side=side, reps=3))
    assert not accepts(clip, Action("wave", side=side, reps=2))
    other = {"left": "right", "right": "left", "both": "left"}[side]
    assert not accepts(clip, Action("wave", side=other, reps=3))


def test_verdict_does_not_depend_on_where_the_clip_starts_or_faces() -> None:
    walk = Action("walk", distance_m=3.0, speed="normal")
    turn = Action("turn", side="right", angle_deg=90.0)
    clip = make_clip(walk, turn, seed=6)
    rng = np.random.default_rng(0)
    for _ in range(4):
        shift = (rng.uniform(-5, 5), rng.uniform(-0.05, 0.05), rng.uniform(-5, 5))
        moved = rotate_and_shift(clip, rng.uniform(-np.pi, np.pi), shift)  # floor slightly off too
        assert accepts(moved, walk, turn)
        assert not accepts(moved, walk, Action("turn", side="left", angle_deg=90.0))
        a = judge(clip, [walk, turn]).segments[0].measured
        b = judge(moved, [walk, turn]).segments[0].measured
        assert b["forward_m"] == pytest.approx(a["forward_m"], abs=1e-3)


def test_composition_order() -> None:
    walk = Action("walk", distance_m=3.0, speed="normal")
    wave = Action("wave", side="left", reps=3)
    clip = make_clip(walk, wave, seed=8)
    verdict = judge(clip, [walk, wave])
    assert verdict.accepted and verdict.reason == ""
    assert [s.name for s in verdict.segments] == ["walk", "wave"]
    assert verdict.segments[0].start == 0 and verdict.segments[-1].end == len(clip)
    assert verdict.segments[0].end == verdict.segments[1].start
    assert not accepts(clip, wave, walk)
    assert not accepts(clip, walk)  # the wave is missing from the program
    assert not accepts(clip, wave)


def test_three_actions() -> None:
    actions = (
        Action("squat", reps=2),
        Action("clap", reps=3),
        Action("side_step", side="right", distance_m=1.0),
    )
    clip = make_clip(*actions, seed=9)
    assert accepts(clip, *actions)
    assert not accepts(clip, actions[1], actions[0], actions[2])
    assert not accepts(clip, actions[0], Action("clap", reps=4), actions[2])


def test_rejection_names_the_failed_checks() -> None:
    clip = make_clip(Action("clap", reps=3), seed=10)
    verdict = judge(clip, [Action("squat", reps=2)])
    assert isinstance(verdict, Verdict) and not verdict.accepted
    seg = verdict.segments[0]
    assert not seg.passed and seg.failed
    assert verdict.reason.startswith("squat (frames 0-")
    assert "2 squat(s)" in verdict.reason
    assert all(isinstance(v, float) for v in seg.measured.values())


def test_fast_enough() -> None:
    one = make_clip(Action("walk", distance_m=3.0, speed="normal"), seed=11)
    three = make_clip(
        Action("jog", distance_m=4.0, speed="normal"),
        Action("turn", side="left", angle_deg=180.0),
        Action("jog", distance_m=4.0, speed="normal"),
        seed=12,
    )
    program = [Action("kick", side="left"), Action("wave", side="right", reps=2), Action("bow")]
    judge(three, program)  # warm up
    start = time.perf_counter()
    for _ in range(10):
        judge(one, [Action("walk", distance_m=3.0, speed="normal")])
    single = (time.perf_counter() - start) / 10
    start = time.perf_counter()
    for _ in range(10):
        judge(three, program)
    triple = (time.perf_counter() - start) / 10
    # targets are 5 ms and 50 ms; leave room for slow CI machines
    assert single < 0.02 and triple < 0.1, (single, triple)


# ----------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "shape", [(40, 21, 3), (40, 22), (40, 22, 2), (22, 3), (40, 22, 3, 1)], ids=str
)
def test_bad_shape_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="shape"):
        judge(np.zeros(shape), [Action("idle")])


def test_bad_values_raise() -> None:
    clip = make_clip(Action("idle"), seed=13)
    broken = clip.copy()
    broken[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        judge(broken, [Action("idle")])
    with pytest.raises(ValueError, match="at least one action"):
        judge(clip, [])
    with pytest.raises(ValueError, match="Action"):
        judge(clip, ["idle"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="frames"):
        judge(clip[:15], [Action("idle"), Action("bow")])


def test_quiet_channels_are_known() -> None:
    with pytest.raises(ValueError, match="valid"):
        oracle_detectors._quiet_value(None, "dancing")  # type: ignore[arg-type]
