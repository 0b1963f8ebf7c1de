"""The engine store in-process: rankings with their idempotency records, SPL format, the lock."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from easytune_engine.reward.rankings import read_preference_pairs
from easytune_engine.server.config import ServeError
from easytune_engine.server.datadir import DataDirLock
from easytune_engine.server.store import ClipRecord, ClipWriter, Store, body_digest
from easytune_protocol import ErrorCode, ProtocolError

PROMPT = "a person kicks"


def clip(clip_id: str, prompt: str = PROMPT, frames: int = 12) -> ClipRecord:
    feats = np.random.default_rng(len(clip_id)).normal(size=(frames, 263)).astype(np.float32)
    return ClipRecord(clip_id, prompt, feats, "mld", "mld", "ab" * 32, 7, 0, "ddim", 4, 2.5, "e1")


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "engine.sqlite")
    s.add_clips([clip("c1"), clip("c2"), clip("c3"), clip("other", "a person sits")])
    yield s
    s.close()


def test_an_older_store_gains_the_precision_column_and_keeps_its_clips(tmp_path: Path) -> None:
    """A store written before bf16 sampling (clip_meta without `precision`) opens with every old
    clip marked fp32, what made it, and new clips record their own precision."""
    path = tmp_path / "engine.sqlite"
    s = Store(path)
    s.add_clips([clip("old")])
    with s.transaction():  # rebuild clip_meta the way the previous schema had it
        s.conn.execute("ALTER TABLE clip_meta DROP COLUMN precision")
    s.close()
    s = Store(path)
    try:
        s.add_clips([dataclasses.replace(clip("new"), precision="bf16")])
        rows = s.conn.execute("SELECT clip_id, precision FROM clip_meta ORDER BY clip_id")
        assert rows.fetchall() == [("new", "bf16"), ("old", "fp32")]
        assert set(s.clip_features(["old", "new"])) == {"old", "new"}
    finally:
        s.close()


def count(store: Store, table: str) -> int:
    return store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_a_ranking_and_its_reply_commit_together(store: Store) -> None:
    body = {"prompt": PROMPT, "ranked": ["c2", "c1"], "rejected": ["c3"]}
    digest = body_digest("submit_ranking", body)
    first = store.submit_ranking("s", "k", digest, PROMPT, ["c2", "c1"], ["c3"])
    assert first.body == {"ranking_id": 1, "pairs": 3, "total_rankings": 1}
    again = store.submit_ranking("s", "k", digest, PROMPT, ["c2", "c1"], ["c3"])
    assert again == first and count(store, "rankings") == 1
    assert store.stored_reply("s", "k", "submit_ranking", digest) == first
    with pytest.raises(ProtocolError) as err:
        store.stored_reply("s", "k", "submit_ranking", body_digest("submit_ranking", {}))
    assert err.value.code == ErrorCode.CONFLICT
    # Another session may use the same key.
    store.submit_ranking("s2", "k", digest, PROMPT, ["c2", "c1"], ["c3"])
    assert count(store, "rankings") == 2


@pytest.mark.parametrize(
    ("ranked", "code"),
    [(["c1", "nope"], ErrorCode.NOT_FOUND), (["c1", "other"], ErrorCode.INVALID_FIELD)],
)
def test_a_refused_ranking_leaves_nothing(store: Store, ranked: list[str], code) -> None:
    with pytest.raises(ProtocolError) as err:
        store.submit_ranking("s", "k", "d", PROMPT, ranked, [])
    assert err.value.code == code
    assert count(store, "rankings") == 0 and count(store, "idempotency") == 0
    assert not store.conn.in_transaction


def test_spl_reads_the_engine_store_as_it_is(store: Store) -> None:
    store.submit_ranking("s", "k", "d", PROMPT, ["c2", "c1"], ["c3"])
    pairs = read_preference_pairs(store.path)
    assert [(p.better_id, p.worse_id) for p in pairs] == [("c2", "c1"), ("c2", "c3"), ("c1", "c3")]
    np.testing.assert_array_equal(pairs[0].better, clip("c2").features)


def test_rankings_page(store: Store) -> None:
    for i in range(5):
        store.submit_ranking("s", f"k{i}", "d", PROMPT, ["c1", "c2"], [])
    page, next_after, total = store.rankings_page(0, 2)
    assert [r["ranking_id"] for r in page] == [1, 2] and next_after == 2 and total == 5
    page, next_after, _ = store.rankings_page(4, 2)
    assert [r["ranking_id"] for r in page] == [5] and next_after is None


def test_the_data_dir_lock_names_its_holder(tmp_path: Path) -> None:
    lock = DataDirLock(tmp_path)
    with pytest.raises(ServeError, match=f"pid {os.getpid()}"):
        DataDirLock(tmp_path)
    lock.release()
    DataDirLock(tmp_path).release()  # free again


def test_the_clip_writer_commits_off_thread_and_in_order(tmp_path: Path) -> None:
    path = tmp_path / "engine.sqlite"
    writer = ClipWriter(path)
    try:
        first = writer.add([clip("w1"), clip("w2")])
        second = writer.add([clip("w3", frames=5)])
        assert first.result() is None and second.result() is None
        reader = Store(path)  # another connection sees both commits, features exact
        got = reader.clip_features(["w1", "w2", "w3"])
        reader.close()
        assert set(got) == {"w1", "w2", "w3"}
        np.testing.assert_array_equal(got["w3"][1], clip("w3", frames=5).features)
        # A commit that fails (a clip id stored already) raises from result() and stores nothing.
        failed = writer.add([clip("w4"), clip("w1")])
        with pytest.raises(Exception, match="UNIQUE"):
            failed.result()
        reader = Store(path)
        assert set(reader.clip_features(["w4"])) == set()
        reader.close()
    finally:
        writer.close()


def test_before_commit_runs_once_the_rows_are_written_and_before_they_are_committed(
    tmp_path: Path,
) -> None:
    # ClipWriter.add returns at this point: the rows are written, only the COMMIT is left.
    path = tmp_path / "engine.sqlite"
    store, other = Store(path), Store(path)
    seen: list[tuple[set[str], set[str]]] = []

    def before_commit() -> None:
        mine = set(store.clip_features(["b1", "b2"]))  # the writer's own open transaction
        seen.append((mine, set(other.clip_features(["b1", "b2"]))))

    try:
        store.add_clips([clip("b1"), clip("b2")], before_commit=before_commit)
        assert seen == [({"b1", "b2"}, set())]  # written, not yet visible to anyone else
        assert set(other.clip_features(["b1", "b2"])) == {"b1", "b2"}  # committed after
    finally:
        store.close()
        other.close()


def test_closing_the_clip_writer_finishes_the_commits_started(tmp_path: Path) -> None:
    path = tmp_path / "engine.sqlite"
    writer = ClipWriter(path)
    pending = [writer.add([clip(f"c{i}")]) for i in range(5)]
    writer.close()
    assert all(p.done() for p in pending)
    reader = Store(path)
    assert len(reader.clip_features([f"c{i}" for i in range(5)])) == 5
    reader.close()
