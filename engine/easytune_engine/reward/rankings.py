"""The artist rankings store: one SQLite file the engine server writes and SPL refinement reads.

Format (FORMAT_VERSION = 1; WAL journal, synchronous=FULL, so a write returns only after a durable
commit and a crash at any point leaves the last committed state):

    meta(key TEXT PRIMARY KEY, value TEXT)            'format_version' -> '1'
    clips(id TEXT PRIMARY KEY, prompt TEXT, features BLOB, frames INTEGER, dim INTEGER,
          created REAL)                               features: raw (not normalised) HumanML3D
                                                      features, float32 little-endian, (frames, dim)
    rankings(id INTEGER PRIMARY KEY, prompt TEXT, ranked TEXT, rejected TEXT, created REAL)
                                                      ranked: JSON list of clip ids, best first;
                                                      rejected: JSON list of clip ids (unordered)

A ranking of a prompt gives every ordered pair (better, worse) of its ranked clips, and every ranked
clip is better than every rejected one; rejected clips are not ordered among themselves.

    add_clip(db, "c1", "a person waves", features)             # (T, 263) raw features
    write_ranking(db, "a person waves", ["c2", "c1"], rejected=["c3"])
    pairs = read_preference_pairs(db)              # [PreferencePair(text, better, worse)]
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
FEATURE_DIM = 263
MAX_FRAMES = 200  # longest clip accepted (the reward reads at most 200 frames)
MAX_PROMPT_CHARS = 400

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clips (
    id TEXT PRIMARY KEY,
    prompt TEXT NOT NULL,
    features BLOB NOT NULL,
    frames INTEGER NOT NULL,
    dim INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rankings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt TEXT NOT NULL,
    ranked TEXT NOT NULL,
    rejected TEXT NOT NULL,
    created REAL NOT NULL
);
"""


@dataclass(frozen=True, eq=False)
class PreferencePair:
    """One preference: for `text`, clip `better` is preferred over clip `worse` (raw features)."""

    text: str
    better: np.ndarray  # (T1, 263) float32
    worse: np.ndarray  # (T2, 263) float32
    better_id: str = ""
    worse_id: str = ""


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating if needed) a rankings store with WAL and synchronous=FULL."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30.0)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        with conn:
            conn.executescript(_SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('format_version', ?)",
                (str(FORMAT_VERSION),),
            )
        (version,) = conn.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ValueError(f"{path}: not a rankings store ({exc})") from exc
    if version != str(FORMAT_VERSION):
        conn.close()
        raise ValueError(
            f"{path}: rankings store format {version!r} is not supported "
            f"(expected {FORMAT_VERSION})"
        )
    return conn


def _check_prompt(prompt: str) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt is empty")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(
            f"prompt is too long: {len(prompt)} characters, at most {MAX_PROMPT_CHARS}"
        )
    return prompt


def _check_features(clip_id: str, features: np.ndarray) -> np.ndarray:
    x = np.asarray(features)
    if x.ndim != 2 or x.shape[1] != FEATURE_DIM:
        raise ValueError(f"clip {clip_id!r}: features must be (T, {FEATURE_DIM}), got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"clip {clip_id!r}: motion has zero length")
    if x.shape[0] > MAX_FRAMES:
        raise ValueError(f"clip {clip_id!r}: {x.shape[0]} frames, at most {MAX_FRAMES} allowed")
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"clip {clip_id!r}: features must be numeric, got {x.dtype}")
    x = x.astype("<f4")
    if not np.isfinite(x).all():
        raise ValueError(f"clip {clip_id!r}: features contain NaN or inf")
    return x


def add_clip(
    db: str | Path,
    clip_id: str,
    prompt: str,
    features: np.ndarray,
    created: float | None = None,
) -> None:
    """Store a generated clip (raw (T, 263) features); returns after a durable commit."""
    if not isinstance(clip_id, str) or not clip_id:
        raise ValueError("clip id must be a non-empty string")
    prompt = _check_prompt(prompt)
    x = _check_features(clip_id, features)
    conn = connect(db)
    try:
        with conn:
            if conn.execute("SELECT 1 FROM clips WHERE id = ?", (clip_id,)).fetchone():
                raise ValueError(f"clip {clip_id!r} is already in {db}")
            conn.execute(
                "INSERT INTO clips(id, prompt, features, frames, dim, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (clip_id, prompt, x.tobytes(), x.shape[0], x.shape[1], created or time.time()),
            )
    finally:
        conn.close()


def write_ranking(
    db: str | Path,
    prompt: str,
    ranked: Sequence[str],
    rejected: Sequence[str] = (),
    created: float | None = None,
) -> int:
    """Store a ranking (clip ids best first, plus rejected ids) of clips of `prompt`.

    Every clip must be in the store already and have been generated for the same prompt. Returns
    the ranking's id after a durable commit.
    """
    prompt = _check_prompt(prompt)
    ranked, rejected = list(ranked), list(rejected)
    if not ranked:
        raise ValueError("a ranking needs at least one ranked clip")
    everything = ranked + rejected
    dupes = sorted({c for c in everything if everything.count(c) > 1})
    if dupes:
        raise ValueError(f"clip ids listed twice in the ranking: {dupes}")
    if len(everything) < 2:
        raise ValueError("a ranking needs at least two clips (ranked + rejected) to give a pair")
    conn = connect(db)
    try:
        with conn:
            for cid in everything:
                row = conn.execute("SELECT prompt FROM clips WHERE id = ?", (cid,)).fetchone()
                if row is None:
                    raise ValueError(f"clip {cid!r} is not in the store; add_clip it first")
                if row[0] != prompt:
                    raise ValueError(
                        f"clip {cid!r} was generated for {row[0]!r}, not for {prompt!r}"
                    )
            cur = conn.execute(
                "INSERT INTO rankings(prompt, ranked, rejected, created) VALUES (?, ?, ?, ?)",
                (prompt, json.dumps(ranked), json.dumps(rejected), created or time.time()),
            )
            return int(cur.lastrowid)
    finally:
        conn.close()


def ranking_pairs(ranked: Sequence[str], rejected: Sequence[str]) -> list[tuple[str, str]]:
    """(better, worse) id pairs of one ranking: ranked order, then ranked over every rejected."""
    pairs = [(ranked[i], ranked[j]) for i in range(len(ranked)) for j in range(i + 1, len(ranked))]
    return pairs + [(r, x) for r in ranked for x in rejected]


def read_preference_pairs(db: str | Path) -> list[PreferencePair]:
    """Every (better, worse) pair of every stored ranking, with the clips' raw features."""
    path = Path(db)
    if not path.is_file():
        raise ValueError(f"{path}: no rankings store at this path")
    conn = connect(path)
    try:
        clips: dict[str, np.ndarray] = {}
        for cid, blob, frames, dim in conn.execute("SELECT id, features, frames, dim FROM clips"):
            if dim != FEATURE_DIM or frames < 1 or len(blob) != 4 * frames * dim:
                raise ValueError(
                    f"{path}: clip {cid!r} is corrupt "
                    f"({len(blob)} bytes for shape ({frames}, {dim}))"
                )
            clips[cid] = np.frombuffer(blob, dtype="<f4").reshape(frames, dim).astype(np.float32)
        out: list[PreferencePair] = []
        rows = conn.execute("SELECT id, prompt, ranked, rejected FROM rankings ORDER BY id")
        for rid, prompt, ranked_json, rejected_json in rows:
            try:
                ranked, rejected = json.loads(ranked_json), json.loads(rejected_json)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{path}: ranking {rid} has unreadable clip lists ({exc})"
                ) from exc
            for better, worse in ranking_pairs(ranked, rejected):
                for cid in (better, worse):
                    if cid not in clips:
                        raise ValueError(f"{path}: ranking {rid} names missing clip {cid!r}")
                out.append(PreferencePair(prompt, clips[better], clips[worse], better, worse))
        return out
    finally:
        conn.close()
