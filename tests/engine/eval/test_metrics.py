"""Each metric against hand-computed small cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from easytune_engine.eval import metrics as M


def test_fid_of_a_set_with_itself_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=(200, 8))
    assert M.fid(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_closed_forms() -> None:
    d = 5
    mu1, mu2 = np.zeros(d), np.arange(d, dtype=float)
    eye = np.eye(d)
    # same covariance: only the means count
    assert M.frechet_distance(mu1, eye, mu2, eye) == pytest.approx(float((mu2**2).sum()))
    # diagonal covariances: sum (sqrt(a) - sqrt(b))^2
    a, b = np.array([1.0, 4.0, 9.0, 0.25, 2.0]), np.array([4.0, 1.0, 9.0, 1.0, 0.5])
    expected = float((mu2**2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    assert M.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)
    # a rotated pair (non-diagonal, non-commuting) agrees with the commuting closed form
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(d, d)))
    rot = M.frechet_distance(mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert rot == pytest.approx(expected, rel=1e-9)


def test_fid_of_shifted_samples_matches_the_shift() -> None:
    x = np.random.default_rng(2).normal(size=(500, 4))
    shift = np.array([3.0, 0.0, -4.0, 0.0])
    assert M.fid(x, x + shift) == pytest.approx(25.0, rel=1e-9)


def test_fid_is_finite_for_rank_deficient_covariances() -> None:
    x = np.random.default_rng(3).normal(size=(10, 64))  # N < D: singular covariances
    y = np.random.default_rng(4).normal(size=(10, 64))
    value = M.fid(x, y)
    assert math.isfinite(value) and value > 0


def test_r_precision_of_perfect_embeddings_is_one() -> None:
    x = np.random.default_rng(0).normal(size=(96, 16))
    assert np.allclose(M.r_precision(x, x), [1.0, 1.0, 1.0])


def test_r_precision_of_random_embeddings_is_chance() -> None:
    rng = np.random.default_rng(0)
    t, m = rng.normal(size=(32 * 400, 8)), rng.normal(size=(32 * 400, 8))
    r = M.r_precision(t, m)
    assert r == pytest.approx([1 / 32, 2 / 32, 3 / 32], abs=0.01)


def test_r_precision_counts_rank_within_its_group() -> None:
    # every text is the origin and motion i lies i + 0.5 away: text k's own motion has rank k,
    # so only texts 0, 0-1, 0-2 find theirs in the top 1, 2, 3
    t = np.zeros((32, 1))
    m = np.arange(32, dtype=float)[:, None] + 0.5
    r = M.r_precision(t, m)
    assert r == pytest.approx([1 / 32, 2 / 32, 3 / 32])


def test_r_precision_needs_a_full_group() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        M.r_precision(np.zeros((31, 2)), np.zeros((31, 2)))


def test_mm_dist_of_constructed_points() -> None:
    t = np.zeros((2, 2))
    m = np.array([[3.0, 0.0], [0.0, 4.0]])
    assert M.mm_dist(t, m) == pytest.approx(3.5)


def test_diversity_of_constructed_points() -> None:
    same = np.ones((10, 3))
    assert M.diversity(same, np.random.default_rng(0)) == 0.0
    # points 0 and 5 on a line: each pair is 0 or 5 apart, so diversity = 5 * share of mixed pairs
    pts = np.array([[0.0], [5.0]] * 200)
    a = np.random.default_rng(7)
    i, j = a.choice(400, 300, replace=False), a.choice(400, 300, replace=False)
    expected = 5.0 * float(np.mean(i % 2 != j % 2))
    assert M.diversity(pts, np.random.default_rng(7)) == pytest.approx(expected)


def test_multimodality_of_constructed_groups() -> None:
    # each text's generations sit at +-1 on its own axis: a pair is 0 or 2 apart
    g = np.zeros((3, 2, 3))
    for k in range(3):
        g[k, 0, k], g[k, 1, k] = 1.0, -1.0
    rng = np.random.default_rng(0)
    i, j = rng.choice(2, 10), rng.choice(2, 10)
    expected = 2.0 * float(np.mean(i != j))
    assert M.multimodality(g, np.random.default_rng(0)) == pytest.approx(expected)


def test_confidence_interval() -> None:
    assert M.confidence([1.0, 1.0, 1.0]) == M.Estimate(1.0, 0.0, 3)
    est = M.confidence([0.0, 2.0])
    assert est.mean == 1.0 and est.ci == pytest.approx(1.96 / math.sqrt(2))
    assert M.accuracy([True, False, True, True]).mean == 0.75


def test_metrics_refuse_bad_embeddings() -> None:
    bad = np.ones((40, 2))
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        M.r_precision(bad, bad)
    with pytest.raises(ValueError, match="must match"):
        M.mm_dist(np.zeros((3, 2)), np.zeros((4, 2)))


def test_wilson_interval():
    lo, hi = M.wilson(121, 512)
    assert lo < 121 / 512 < hi
    assert (round(lo, 3), round(hi, 3)) == (0.202, 0.275)  # oracle_failures.md's VAE row
    assert M.wilson(0, 10)[0] == 0.0 and M.wilson(10, 10)[1] == 1.0
