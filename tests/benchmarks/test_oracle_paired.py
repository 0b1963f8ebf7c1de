"""benchmarks/oracle_paired.py pairs the two checkpoints' verdicts prompt by prompt and seed by
seed; the judging itself is the oracle's (tested with the corpus)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def op(load_benchmark):
    return load_benchmark("oracle_paired")


def test_pairs_are_matched_per_prompt_and_seed(op, monkeypatch: pytest.MonkeyPatch):
    verdicts = {  # (model, seed) -> verdicts for the 4 prompts
        ("old", 0): [True, True, False, False],
        ("new", 0): [True, False, True, True],
        ("old", 1): [False, False, False, True],
        ("new", 1): [False, False, True, True],
    }
    asked = []

    def passes(gen, corpus, prompts, programs, seed, steps):
        asked.append((gen, seed, steps, tuple(prompts)))
        return verdicts[(gen, seed)]

    monkeypatch.setattr(op, "test_prompts", lambda corpus, n, seed, split: list("abcd")[:n])
    monkeypatch.setattr(op, "_programs", lambda corpus, prompts: [None] * len(prompts))
    monkeypatch.setattr(op, "passes", passes)
    rows = op.compare("old", "new", None, "val", 4, [1, 0], [0, 1])

    assert [r["steps"] for r in rows] == [1, "default"]
    row = rows[0]
    assert row["pairs"] == 8 and row["before"] == 3 / 8 and row["after"] == 5 / 8
    assert row["change"] == pytest.approx(2 / 8)
    assert (row["only_before"], row["only_after"]) == (1, 3)
    lo, hi = row["ci95"]
    assert lo <= row["change"] <= hi
    # both models saw the same prompts with the same seed, for every step count
    assert {a[3] for a in asked} == {tuple("abcd")}
    assert sorted((g, s, n) for g, s, n, _ in asked) == sorted(
        (g, s, n) for g in ("old", "new") for s in (0, 1) for n in (1, 0)
    )
    assert "+0.250" in op.table(rows) and "1 / 3" in op.table(rows)
