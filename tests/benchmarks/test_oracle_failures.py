"""The pure helpers of benchmarks/oracle_failures.py: check names, categories, coverage, CIs."""

from __future__ import annotations

import numpy as np
import pytest

from easytune_engine.data.corpus.oracle import SegmentVerdict, Verdict
from easytune_engine.data.corpus.program import Action


@pytest.fixture(scope="module")
def of(load_benchmark):
    return load_benchmark("oracle_failures")


def test_normalize_check_strips_numbers_and_sides(of):
    kick = Action("kick", side="left")
    assert (
        of.normalize_check("one kick with the left foot", kick) == "one kick with the <side> foot"
    )
    wave = Action("wave", side="right", reps=3)
    assert of.normalize_check("left hand stays down", wave) == "<other> hand stays down"
    assert of.normalize_check("3 waves of the right hand", wave) == "N waves of the <side> hand"
    walk = Action("walk", distance_m=4.0, speed="slow")
    assert of.normalize_check("travel +4 m along the facing", walk) == "travel N m along the facing"
    assert of.normalize_check("no heading deviation (deg) above 10", walk) == "quiet: turning"
    assert of.normalize_check("no airborne frames above 1", walk) == "quiet: flight"


def test_check_category(of):
    walk = Action("walk", distance_m=4.0, speed="fast")
    assert of.check_category("travel +4 m along the facing", walk) == "distance"
    assert of.check_category("fast speed (1.9 m/s)", walk) == "speed"
    assert of.check_category("no flight phase", walk) == "form"
    assert of.check_category("no time standing still (s) above 1.8", walk) == "quiet"
    assert of.check_category("3 jump(s)", Action("jump_in_place", reps=3)) == "count"
    assert of.check_category("once", Action("crouch")) == "count"
    turn = Action("turn", side="left", angle_deg=90.0)
    assert of.check_category("turn 90 deg to the left", turn) == "angle/side"
    kick = Action("kick", side="right")
    assert of.check_category("the other foot stays down", kick) == "limb/side"
    assert of.check_category("one kick with the right foot", kick) == "count"
    wave = Action("wave", side="left", reps=2)
    assert of.check_category("right hand stays down", wave) == "limb/side"


def test_unstated(of):
    jump = Action("jump_in_place", reps=2)
    assert of.unstated("the human jumps twice.", jump) == []
    assert of.unstated("a person jumps a couple of times", jump) == []
    assert of.unstated("a person jumps repeatedly", jump) == ["reps"]
    clap = Action("clap", reps=5)
    assert of.unstated("someone claps five times", clap) == []
    assert of.unstated("someone claps 5 times", clap) == []
    assert of.unstated("someone claps several times", clap) == ["reps"]
    walk = Action("walk", distance_m=4.0, speed="slow")
    assert of.unstated("a woman does a slow walk forward about four meters.", walk) == []
    assert of.unstated("a woman walks forward.", walk) == ["distance_m", "speed"]
    normal = Action("walk", distance_m=4.0, speed="normal")
    assert of.unstated("a man walks about 4 metres", normal) == []  # normal pace is the default
    turn = Action("turn", side="left", angle_deg=90.0)
    assert of.unstated("then turning left.", turn) == ["angle_deg"]
    assert of.unstated("makes a quarter turn to the left", turn) == []
    assert of.unstated("a person turns", turn) == ["side", "angle_deg"]


def test_margin(of):
    walk = Action("walk", distance_m=4.0, speed="normal")
    m = {"forward_m": 6.8, "quiet_turning": 25.0}
    assert of._margin("travel +4 m along the facing", "travel N m along the facing", walk, m) == (
        pytest.approx(2.0)
    )
    label = "no heading deviation (deg) above 10"
    assert of._margin(label, "quiet: turning", walk, m) == pytest.approx(2.5)
    jump = Action("jump_in_place", reps=3)
    assert of._margin("3 jump(s)", "N jump(s)", jump, {"flights": 1.0}) == 2.0
    assert of._margin("no flight phase", "no flight phase", walk, m) is None


def test_wilson_and_paired_diff(of):
    lo, hi = of.wilson(10, 100)
    assert 0.05 < lo < 0.1 < hi < 0.18
    assert of.wilson(0, 50)[0] == 0.0
    a = [True] * 20 + [False] * 80
    d, lo, hi = of.paired_diff_ci(a, a)
    assert d == 0.0 and lo == 0.0 and hi == 0.0
    b = [True] * 40 + [False] * 60
    d, lo, hi = of.paired_diff_ci(a, b)
    assert d == pytest.approx(0.2) and 0.1 < lo < 0.2 < hi < 0.3


def test_summarize_counts_segments_and_near_misses(of):
    walk = Action("walk", distance_m=4.0, speed="normal")
    clap = Action("clap", reps=3)
    ok = SegmentVerdict("walk", True, 0, 40, {"forward_m": 4.1}, ())
    bad_clap = SegmentVerdict("clap", False, 40, 80, {"claps": 1.0}, ("3 claps",))
    bad_walk = SegmentVerdict(
        "walk",
        False,
        0,
        40,
        {"forward_m": 1.0, "quiet_turning": 30.0},
        ("travel +4 m along the facing", "no heading deviation (deg) above 10"),
    )
    items = [
        ((walk,), Verdict(True, (ok,))),
        ((walk, clap), Verdict(False, (ok, bad_clap), "x")),
        ((walk,), Verdict(False, (bad_walk,), "x")),
    ]
    s = of.summarize(items)
    assert s["accuracy"] == pytest.approx(1 / 3)
    assert s["accuracy_by_actions"]["2"]["accuracy"] == 0.0
    assert s["segment_pass_rate"]["walk"]["pass_rate"] == pytest.approx(2 / 3)
    assert s["near_miss_share"] == pytest.approx(0.333, abs=1e-3)
    assert s["near_miss_checks"] == {"clap: N claps": pytest.approx(0.333, abs=1e-3)}
    assert s["failed_checks"]["walk"]["checks"]["quiet: turning"] == pytest.approx(0.333, 1e-2)
    assert s["clips_failing_only"]["parameters"] == pytest.approx(0.333, abs=1e-3)
    assert s["parameter_response"]["clap.reps"]["3.0"]["median"] == 1.0
    assert np.isclose(s["failure_margins"]["count"]["median"], 2.0)


def test_guess_ceiling(of):
    prior = [(Action("clap", reps=3),), (Action("clap", reps=3),), (Action("clap", reps=2),)]
    programs = [(Action("clap", reps=3),), (Action("clap", reps=2),), (Action("clap", reps=2),)]
    texts = ["someone claps several times", "someone claps", "someone claps twice"]
    c = of.guess_ceiling(texts, programs, prior)
    # the guess (3) is right for the first, wrong for the second; the third states its count
    assert c["accuracy"] == pytest.approx(2 / 3)
    assert c["under_specified_share"] == pytest.approx(2 / 3)
    assert c["guess_pass_rate"]["reps"] == {"unstated": 2, "pass_rate": 0.5}
