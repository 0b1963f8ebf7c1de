"""The corpus synthesiser: programs that fit, every action type, physically sane motion."""

from __future__ import annotations

import numpy as np
import pytest

from easytune_engine.data.corpus.poses import action_frames
from easytune_engine.data.corpus.program import (
    ACTION_TYPES,
    END_POSTURE,
    START_POSTURE,
    Action,
    Program,
    Segment,
    program_from_dict,
    program_to_dict,
)
from easytune_engine.data.corpus.quality import sanity
from easytune_engine.data.corpus.synth import (
    MAX_FRAMES,
    MIN_FRAMES,
    sample_action,
    sample_body,
    sample_program,
    synthesize,
)

# Human limits used throughout: feet never below the floor by more than 1 cm, a toe inside a floor
# contact moves less than 2 cm/s (1 mm a frame: it is planted), bones keep their length, no joint
# faster than 12 m/s (the swing foot of the fastest runs peaks near 11.3 m/s).
FLOOR_TOLERANCE_M = -0.01
SLIDE_LIMIT_M_S = 0.02
SPEED_LIMIT_M_S = 12.0


def _single(kind: str, rng: np.random.Generator) -> tuple[Program, np.ndarray]:
    action = sample_action(kind, rng)
    n = action_frames(action, 1.0)
    program = Program((Segment(action, 4, 4 + n),), frames=n + 8)
    body, _ = sample_body(rng)
    return program, synthesize(program, body, rng)


def test_programs_fit_the_clip_length_and_chain_postures() -> None:
    rng = np.random.default_rng(0)
    kinds_seen = set()
    lengths = []
    for _ in range(2000):
        p = sample_program(rng)
        lengths.append(p.num_frames)
        assert MIN_FRAMES <= p.num_frames <= MAX_FRAMES
        assert 1 <= len(p.segments) <= 3
        for a, b in zip(p.segments, p.segments[1:], strict=False):
            assert a.end == b.start
            assert END_POSTURE[a.action.kind] == START_POSTURE[b.action.kind]
        kinds_seen.update(p.actions[i].kind for i in range(len(p.segments)))
    assert kinds_seen == set(ACTION_TYPES)
    assert len(ACTION_TYPES) >= 25
    # clips span 2 .. 9.8 s (40 .. 196 feature frames)
    assert min(lengths) <= 60 and max(lengths) >= 180


def test_program_sidecar_round_trip_and_validation() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        p = sample_program(rng)
        assert program_from_dict(program_to_dict(p)) == p
    with pytest.raises(ValueError, match="unknown action 'moonwalk'"):
        Action("moonwalk")
    with pytest.raises(ValueError, match="needs parameter 'side'"):
        Action("kick")
    with pytest.raises(ValueError, match="takes no 'reps'"):
        Action("bow", reps=2)


@pytest.mark.parametrize("kind", ACTION_TYPES)
def test_every_action_is_physically_sane(kind: str) -> None:
    rng = np.random.default_rng(ACTION_TYPES.index(kind))
    for _ in range(6):
        program, joints = _single(kind, rng)
        assert joints.shape == (program.num_frames, 22, 3)
        assert np.isfinite(joints).all()
        s = sanity(joints, floor=0.0)
        assert s.min_height_m >= FLOOR_TOLERANCE_M, (kind, s)
        assert s.foot_slide_m_s <= SLIDE_LIMIT_M_S, (kind, s)
        assert s.bone_length_spread_m < 1e-6, (kind, s)
        assert s.max_joint_speed_m_s <= SPEED_LIMIT_M_S, (kind, s)


def test_actions_do_what_they_say() -> None:
    """Coarse facts straight from the joints (the oracle checks these properly)."""
    rng = np.random.default_rng(3)
    body, _ = sample_body(rng)

    def run(action: Action) -> np.ndarray:
        n = action_frames(action, 1.0)
        return synthesize(Program((Segment(action, 0, n),), frames=n), body, rng)

    walk = run(Action("walk", distance_m=4.0, speed="normal"))
    assert walk[-1, 0, 2] - walk[0, 0, 2] == pytest.approx(4.0, abs=0.05)  # forward is +Z
    back = run(Action("walk_backward", distance_m=2.0, speed="normal"))
    assert back[-1, 0, 2] - back[0, 0, 2] == pytest.approx(-2.0, abs=0.05)
    left = run(Action("side_step", side="left", distance_m=1.0))
    assert left[-1, 0, 0] - left[0, 0, 0] == pytest.approx(1.0, abs=0.05)  # body left is +X
    jump = run(Action("jump_in_place", reps=1))
    feet = jump[:, [7, 8, 10, 11], 1].min(axis=1)
    assert feet.max() - feet.min() > 0.1  # both feet leave the ground
    squat = run(Action("squat", reps=2))
    assert squat[0, 0, 1] - squat[:, 0, 1].min() > 0.25
    kick = run(Action("kick", side="right"))
    assert kick[:, 8, 1].max() > 0.4 and kick[:, 7, 1].max() < 0.1  # right ankle up, left planted


def test_synthesis_is_deterministic() -> None:
    def make(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        program = sample_program(rng)
        body, _ = sample_body(rng)
        return synthesize(program, body, rng)

    np.testing.assert_array_equal(make(11), make(11))
    assert not np.array_equal(make(11), make(12))


def test_sanity_measures_catch_sliding_sinking_and_stretching() -> None:
    """The physical checks above can fail: feed them broken motion."""
    rng = np.random.default_rng(5)
    _, joints = _single("idle", rng)
    assert sanity(joints).foot_slide_m_s <= SLIDE_LIMIT_M_S
    drifting = joints.copy()
    drifting[..., 0] += 0.01 * np.arange(len(joints))[:, None]  # whole body skates at 0.2 m/s
    assert sanity(drifting).foot_slide_m_s == pytest.approx(0.2, abs=0.01)
    sunk = joints.copy()
    sunk[:, 10, 1] -= 0.05
    assert sanity(sunk).min_height_m < FLOOR_TOLERANCE_M
    stretched = joints.copy()
    stretched[10:, 20] += np.array([0.0, 0.0, 0.05])  # a wrist leaves its forearm
    assert sanity(stretched).bone_length_spread_m > 0.01
    assert sanity(stretched).max_joint_speed_m_s > 0.9
