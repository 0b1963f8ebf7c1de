"""The rankings store: round trip, pair semantics, validation, durable commit."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from easytune_engine.reward import rankings as rk
from easytune_engine.reward.rankings import (
    add_clip,
    connect,
    ranking_pairs,
    read_preference_pairs,
    write_ranking,
)

PROMPT = "a person waves"


def clip(seed: int, frames: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((frames, 263)).astype(np.float32)


def store(tmp_path: Path) -> Path:
    db = tmp_path / "rankings.sqlite"
    for i in range(5):
        add_clip(db, f"c{i}", PROMPT, clip(i, 40 + i))
    return db


def test_round_trip_and_pairs(tmp_path: Path) -> None:
    db = store(tmp_path)
    rid = write_ranking(db, PROMPT, ["c2", "c0", "c1"], rejected=["c3", "c4"])
    assert rid == 1
    pairs = read_preference_pairs(db)
    ids = [(p.better_id, p.worse_id) for p in pairs]
    assert ids == [
        ("c2", "c0"), ("c2", "c1"), ("c0", "c1"),
        ("c2", "c3"), ("c2", "c4"), ("c0", "c3"), ("c0", "c4"), ("c1", "c3"), ("c1", "c4"),
    ]  # fmt: skip
    assert ("c3", "c4") not in ids and ("c4", "c3") not in ids  # rejected are unordered
    first = pairs[0]
    assert first.text == PROMPT
    np.testing.assert_array_equal(first.better, clip(2, 42))
    np.testing.assert_array_equal(first.worse, clip(0, 40))
    assert first.better.dtype == np.float32


def test_ranking_pairs_counts() -> None:
    assert len(ranking_pairs(["a", "b", "c", "d"], [])) == 6
    assert len(ranking_pairs(["a"], ["x", "y"])) == 2


def test_store_settings(tmp_path: Path) -> None:
    db = store(tmp_path)
    conn = connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda db: add_clip(db, "c0", PROMPT, clip(9)), "already"),
        (lambda db: add_clip(db, "n", PROMPT, np.zeros((10, 200))), r"\(T, 263\)"),
        (lambda db: add_clip(db, "n", PROMPT, np.zeros((0, 263))), "zero length"),
        (lambda db: add_clip(db, "n", PROMPT, np.zeros((500, 263))), "at most"),
        (lambda db: add_clip(db, "n", PROMPT, np.full((10, 263), np.nan)), "NaN"),
        (lambda db: add_clip(db, "n", "", clip(1)), "empty"),
        (lambda db: add_clip(db, "n", "x" * 1000, clip(1)), "too long"),
        (lambda db: write_ranking(db, PROMPT, []), "at least one ranked"),
        (lambda db: write_ranking(db, PROMPT, ["c0"]), "at least two"),
        (lambda db: write_ranking(db, PROMPT, ["c0", "c1", "c0"]), "twice"),
        (lambda db: write_ranking(db, PROMPT, ["c0"], rejected=["c0"]), "twice"),
        (lambda db: write_ranking(db, PROMPT, ["c0", "zz"]), "not in the store"),
        (lambda db: write_ranking(db, "another prompt", ["c0", "c1"]), "generated for"),
    ],
)
def test_validation_names_the_problem(tmp_path: Path, call, match: str) -> None:
    db = store(tmp_path)
    with pytest.raises(ValueError, match=match):
        call(db)
    assert read_preference_pairs(db) == []  # nothing half-written


def test_corrupt_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no rankings store"):
        read_preference_pairs(tmp_path / "missing.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="not a rankings store"):
        read_preference_pairs(junk)
    db = store(tmp_path)
    write_ranking(db, PROMPT, ["c0", "c1"])
    raw = sqlite3.connect(db)
    with raw:
        raw.execute("UPDATE clips SET features = ? WHERE id = 'c1'", (b"short",))
    raw.close()
    with pytest.raises(ValueError, match="corrupt"):
        read_preference_pairs(db)
    future = tmp_path / "future.sqlite"
    connect(future).close()
    raw = sqlite3.connect(future)
    with raw:
        raw.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    raw.close()
    with pytest.raises(ValueError, match="format '99'"):
        read_preference_pairs(future)


def test_commit_survives_kill_9(tmp_path: Path) -> None:
    db = store(tmp_path)
    script = (
        "import os, signal, sys\n"
        "from easytune_engine.reward.rankings import write_ranking\n"
        f"write_ranking({str(db)!r}, {PROMPT!r}, ['c1', 'c0'], rejected=['c2'])\n"
        "print('acked', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.stdout.strip() == "acked" and proc.returncode == -9
    pairs = read_preference_pairs(db)
    assert [(p.better_id, p.worse_id) for p in pairs] == [("c1", "c0"), ("c1", "c2"), ("c0", "c2")]


def test_format_version_constant() -> None:
    assert rk.FORMAT_VERSION == 1
