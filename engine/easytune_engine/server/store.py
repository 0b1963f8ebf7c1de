"""The engine's durable records: one SQLite file (WAL, synchronous=FULL) in the data directory.

It is a rankings store (`reward/rankings.py`, format 1: `meta`, `clips`, `rankings`), so SPL
refinement reads it as it is (`read_preference_pairs(path)`), plus two tables of the server's:

    clip_meta(clip_id PRIMARY KEY -> clips.id, model, backbone, checkpoint_sha256, seed,
              candidate, sampler, steps, guidance, engine_session, precision)
                                       how each clip was made: same settings + seed, same motion
    idempotency(session, key, type, body_sha256, status, reply, created)
                                       the reply (msgpack) to each state-changing request, stored
                                       in the transaction that did the work, so a retry is
                                       answered from here and the work is never done twice

Every clip a ranking can name is stored (features as a float32 blob, (T, 263)) before the generate
reply leaves, so a ranking points at exact motions. One `Store` per thread (sqlite3 connections
are not shared between threads); writers take the database lock with BEGIN IMMEDIATE.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from easytune_protocol import ErrorCode, ProtocolError

from ..reward import rankings

DB_NAME = "engine.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clip_meta (
    clip_id TEXT PRIMARY KEY REFERENCES clips(id),
    model TEXT NOT NULL,
    backbone TEXT NOT NULL,
    checkpoint_sha256 TEXT,
    seed INTEGER NOT NULL,
    candidate INTEGER NOT NULL,
    sampler TEXT NOT NULL,
    steps INTEGER NOT NULL,
    guidance REAL NOT NULL,
    engine_session TEXT NOT NULL,
    precision TEXT NOT NULL DEFAULT 'fp32'
);
CREATE TABLE IF NOT EXISTS idempotency (
    session TEXT NOT NULL,
    key TEXT NOT NULL,
    type TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    reply BLOB NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (session, key)
);
"""


@dataclass(frozen=True)
class ClipRecord:
    """A generated clip as stored: what a ranking refers to and how it was made."""

    clip_id: str
    prompt: str
    features: np.ndarray  # (T, 263) raw HumanML3D features, float32
    model: str
    backbone: str
    checkpoint_sha256: str | None
    seed: int
    candidate: int  # row of the generation (its random stream)
    sampler: str
    steps: int
    guidance: float
    engine_session: str
    precision: str = "fp32"  # the network's (serve --precision)


@dataclass(frozen=True)
class StoredReply:
    status: str
    body: dict[str, Any]


def body_digest(type_: str, body: dict[str, Any]) -> str:
    """Hash of a (decoded, array-free) request body: a retried key must carry the same body."""
    text = json.dumps([type_, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            conn = rankings.connect(self.path)  # WAL, synchronous=FULL, the rankings tables
        except ValueError as exc:
            raise ValueError(f"cannot open the engine store: {exc}") from exc
        conn.isolation_level = None  # explicit transactions (BEGIN IMMEDIATE ... COMMIT)
        conn.executescript(_SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(clip_meta)")}
        if "precision" not in columns:  # a store from before bf16 sampling: all of it fp32
            conn.execute("ALTER TABLE clip_meta ADD COLUMN precision TEXT NOT NULL DEFAULT 'fp32'")
        self.conn = conn

    def close(self) -> None:
        self.conn.close()

    def _begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    # -- clips -----------------------------------------------------------------------------------

    def add_clips(
        self, clips: Sequence[ClipRecord], before_commit: Callable[[], None] | None = None
    ) -> None:
        """Store a generation's clips in one durable transaction (`before_commit` is called once
        the rows are written, before the COMMIT and its fsync)."""
        now = time.time()
        with self.transaction():
            for c in clips:
                x = np.ascontiguousarray(c.features, dtype="<f4")
                self.conn.execute(
                    "INSERT INTO clips(id, prompt, features, frames, dim, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (c.clip_id, c.prompt, x.tobytes(), x.shape[0], x.shape[1], now),
                )
                self.conn.execute(
                    "INSERT INTO clip_meta(clip_id, model, backbone, checkpoint_sha256, seed, "
                    "candidate, sampler, steps, guidance, engine_session, precision) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        c.clip_id, c.model, c.backbone, c.checkpoint_sha256, c.seed, c.candidate,
                        c.sampler, c.steps, c.guidance, c.engine_session, c.precision,
                    ),
                )  # fmt: skip
            if before_commit is not None:
                before_commit()

    def clip_features(self, clip_ids: Sequence[str]) -> dict[str, tuple[str, np.ndarray]]:
        """clip id -> (prompt, (T, 263) float32 features) for the ids that exist."""
        out = {}
        for cid in clip_ids:
            row = self.conn.execute(
                "SELECT prompt, features, frames, dim FROM clips WHERE id = ?", (cid,)
            ).fetchone()
            if row is not None:
                prompt, blob, frames, dim = row
                out[cid] = (prompt, np.frombuffer(blob, dtype="<f4").reshape(frames, dim))
        return out

    # -- idempotency -------------------------------------------------------------------------

    def stored_reply(self, session: str, key: str, type_: str, digest: str) -> StoredReply | None:
        """The reply stored under (session, key); conflict if the key came with another body."""
        row = self.conn.execute(
            "SELECT type, body_sha256, status, reply FROM idempotency "
            "WHERE session = ? AND key = ?",
            (session, key),
        ).fetchone()
        if row is None:
            return None
        stored_type, stored_digest, status, reply = row
        if stored_type != type_ or stored_digest != digest:
            raise ProtocolError(
                ErrorCode.CONFLICT,
                f"header.idempotency_key: key {key!r} was used for another {stored_type} "
                "request; a retry must resend the same body, a new request needs a new key",
                field="header.idempotency_key",
            )
        return StoredReply(status, msgpack.unpackb(reply, raw=False))

    def _save_reply(
        self, session: str, key: str, type_: str, digest: str, reply: StoredReply
    ) -> None:
        self.conn.execute(
            "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                session, key, type_, digest, reply.status,
                msgpack.packb(reply.body, use_bin_type=True), time.time(),
            ),
        )  # fmt: skip

    def save_reply(
        self, session: str, key: str, type_: str, digest: str, reply: StoredReply
    ) -> None:
        """Store a reply on its own (for requests whose work is not in this database)."""
        with self.transaction():
            self._save_reply(session, key, type_, digest, reply)

    def idempotent(
        self, session: str, key: str, type_: str, digest: str, work: Callable[[], StoredReply]
    ) -> tuple[StoredReply, bool]:
        """Run `work` (SQL on this connection) and store its reply in one durable transaction;
        a key seen before returns (the stored reply, True) without running it again."""
        with self.transaction():
            stored = self.stored_reply(session, key, type_, digest)
            if stored is not None:
                return stored, True
            out = work()
            self._save_reply(session, key, type_, digest, out)
            return out, False

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT around the block (ROLLBACK if it raises); inside a
        transaction already, the block joins it."""
        if self.conn.in_transaction:
            yield
            return
        self._begin()
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement in its own durable transaction; returns the rows it changed."""
        with self.transaction():
            return self.conn.execute(sql, params).rowcount

    # -- rankings ----------------------------------------------------------------------------

    def submit_ranking(
        self,
        session: str,
        key: str,
        digest: str,
        prompt: str,
        ranked: Sequence[str],
        rejected: Sequence[str],
    ) -> StoredReply:
        """Store a ranking and its idempotency record in one durable transaction.

        Every clip must be stored and generated for `prompt` (not_found / invalid_field).
        A key already used (with the same body) returns the stored reply without a new row.
        """

        def store() -> StoredReply:
            self._check_clips(prompt, ranked, rejected)
            cur = self.conn.execute(
                "INSERT INTO rankings(prompt, ranked, rejected, created) VALUES (?, ?, ?, ?)",
                (prompt, json.dumps(list(ranked)), json.dumps(list(rejected)), time.time()),
            )
            (total,) = self.conn.execute("SELECT COUNT(*) FROM rankings").fetchone()
            body = {
                "ranking_id": int(cur.lastrowid or 0),
                "pairs": len(rankings.ranking_pairs(ranked, rejected)),
                "total_rankings": int(total),
            }
            return StoredReply("ok", body)

        return self.idempotent(session, key, "submit_ranking", digest, store)[0]

    def _check_clips(self, prompt: str, ranked: Sequence[str], rejected: Sequence[str]) -> None:
        clip_ids = [*ranked, *rejected]
        marks = ",".join("?" * len(clip_ids))
        found = dict(
            self.conn.execute(f"SELECT id, prompt FROM clips WHERE id IN ({marks})", clip_ids)
        )
        missing = [c for c in clip_ids if c not in found]
        if missing:
            raise ProtocolError(
                ErrorCode.NOT_FOUND,
                f"unknown clip ids {missing[:5]}: a ranking can name only clips this engine "
                "generated (the clip_id of a generate reply)",
                field="body.ranked" if missing[0] in ranked else "body.rejected",
            )
        other = [c for c in clip_ids if found[c] != prompt]
        if other:
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                f"body.prompt: clip {other[0]!r} was generated for {found[other[0]][:80]!r}; "
                "every clip of a ranking must come from the ranking's prompt",
                field="body.prompt",
            )

    def ranking_prompts(self) -> list[tuple[str, int]]:
        """(prompt, frames of its best clip) for every stored ranking, oldest first."""
        rows = self.conn.execute(
            "SELECT r.prompt, c.frames FROM rankings r JOIN clips c "
            "ON c.id = json_extract(r.ranked, '$[0]') ORDER BY r.id"
        ).fetchall()
        return [(prompt, int(frames)) for prompt, frames in rows]

    def rankings_page(self, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None, int]:
        """(rankings with id > after, oldest first; next `after` or None; total count)."""
        rows = self.conn.execute(
            "SELECT id, prompt, ranked, rejected, created FROM rankings WHERE id > ? "
            "ORDER BY id LIMIT ?",
            (after, limit + 1),
        ).fetchall()
        (total,) = self.conn.execute("SELECT COUNT(*) FROM rankings").fetchone()
        page = [
            {
                "ranking_id": int(rid),
                "prompt": prompt,
                "ranked": json.loads(ranked),
                "rejected": json.loads(rejected),
                "created": float(created),
            }
            for rid, prompt, ranked, rejected, created in rows[:limit]
        ]
        more = len(rows) > limit
        return page, (page[-1]["ranking_id"] if more and page else None), int(total)


class ClipWriter:
    """Durable clip commits on a thread of their own, with their own `Store`.

        writer = ClipWriter(path)
        done = writer.add(records)   # writes the rows; returns with the commit running
        ...                          # IK and reply encoding run meanwhile (the fsync frees the GIL)
        done.result()                # the clips are on disk (or the commit's error is raised)

    The generation worker overlaps a batch's commit with the work that needs only its features, and
    sends no reply until `result()` returned. One commit runs at a time, in submission order.
    """

    def __init__(self, path: Path) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-writer")
        try:
            self._store = self._pool.submit(Store, path).result()  # opened on its own thread
        except BaseException:
            self._pool.shutdown()
            raise

    def add(self, clips: Sequence[ClipRecord]) -> Future[None]:
        """Store `clips` in one durable transaction; returns once their rows are written and only
        the COMMIT (its fsync, which frees the GIL) is left running. Waiting for that much lets
        the commit really overlap the caller's numpy work: the inserts' Python side would
        otherwise wait for the GIL until that work ends (CPython hands the GIL to a waiting
        thread only every `sys.getswitchinterval()`, 5 ms)."""
        written = threading.Event()
        done = self._pool.submit(self._add, list(clips), written)
        written.wait()
        return done

    def _add(self, clips: list[ClipRecord], written: threading.Event) -> None:
        try:
            self._store.add_clips(clips, before_commit=written.set)
        finally:
            written.set()  # also when the transaction failed before its rows were written

    def close(self) -> None:
        """Finish the commits already started, then close the connection."""
        self._pool.submit(self._store.close).result()
        self._pool.shutdown()
