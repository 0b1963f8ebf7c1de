"""The checkpoint registry: fine-tuned weights the engine made, and which one each model serves.

    book = CheckpointBook(store, data_dir)
    book.add(Checkpoint(...))                 # after the weights file is written (atomically)
    book.active("mld")                        # name of the active checkpoint, None: shipped weights
    book.activate("mld", "mld-ft-1")          # -> the previously active name
    book.rollback("mld")                      # undo the last activation -> (active, undone)

Two tables in the engine's SQLite store:

    checkpoints(name PRIMARY KEY, backbone, kind 'full'|'adapter', parent, job_id, file, sha256,
                created, metrics JSON)
                    `file` is relative to the data directory; `sha256` is the file's content
                    hash, checked again whenever the file is loaded, so a damaged file is refused
                    instead of served; `parent` is the checkpoint it was trained from (None: the
                    shipped weights)
    activations(id, backbone, name NULL, created)
                    the activation history per backbone; its last row is what is served (NULL:
                    the shipped weights); rollback deletes the last row

"backbone" is a served model's name ("mld") or "reward" for refined reward models.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from easytune_protocol import ErrorCode, ProtocolError

from .store import Store

REWARD = "reward"  # the `backbone` of refined reward checkpoints

SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    name TEXT PRIMARY KEY,
    backbone TEXT NOT NULL,
    kind TEXT NOT NULL,
    parent TEXT,
    job_id TEXT,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    created REAL NOT NULL,
    metrics TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS activations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    backbone TEXT NOT NULL,
    name TEXT REFERENCES checkpoints(name),
    created REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Checkpoint:
    name: str
    backbone: str  # served model name, or REWARD
    kind: str  # "full" | "adapter"
    parent: str | None  # checkpoint it was trained from (None: shipped weights)
    job_id: str | None
    file: str  # relative to the data directory
    sha256: str
    created: float
    metrics: dict[str, float] = field(default_factory=dict)

    def record(self, active: bool) -> dict[str, Any]:
        """The protocol's `checkpoint` record."""
        out: dict[str, Any] = {
            "name": self.name,
            "backbone": self.backbone,
            "kind": self.kind,
            "sha256": self.sha256,
            "created": self.created,
            "active": active,
            "metrics": dict(self.metrics),
        }
        if self.parent is not None:
            out["parent"] = self.parent
        if self.job_id is not None:
            out["job_id"] = self.job_id
        return out


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class CheckpointBook:
    """The registry over one thread's `Store` connection."""

    def __init__(self, store: Store, data_dir: Path) -> None:
        self.store = store
        self.data_dir = Path(data_dir)
        store.conn.executescript(SCHEMA)

    # -- reading -------------------------------------------------------------------------------

    def get(self, name: str) -> Checkpoint | None:
        row = self.store.conn.execute(
            "SELECT name, backbone, kind, parent, job_id, file, sha256, created, metrics "
            "FROM checkpoints WHERE name = ?",
            (name,),
        ).fetchone()
        return None if row is None else _checkpoint(row)

    def require(self, name: str, field_name: str = "body.name") -> Checkpoint:
        ckpt = self.get(name)
        if ckpt is None:
            known = [c.name for c in self.list()[:10]]
            raise ProtocolError(
                ErrorCode.NOT_FOUND,
                f"{field_name}: no checkpoint {name!r}; list_checkpoints names them "
                f"(newest: {', '.join(known) or 'none yet'})",
                field=field_name,
            )
        return ckpt

    def list(self, backbone: str | None = None) -> list[Checkpoint]:
        """Newest first."""
        sql = "SELECT name, backbone, kind, parent, job_id, file, sha256, created, metrics "
        sql += "FROM checkpoints "
        args: tuple = ()
        if backbone is not None:
            sql += "WHERE backbone = ? "
            args = (backbone,)
        rows = self.store.conn.execute(sql + "ORDER BY created DESC, rowid DESC", args)
        return [_checkpoint(r) for r in rows.fetchall()]

    def active(self, backbone: str) -> str | None:
        row = self.store.conn.execute(
            "SELECT name FROM activations WHERE backbone = ? ORDER BY id DESC LIMIT 1",
            (backbone,),
        ).fetchone()
        return None if row is None else row[0]

    def path(self, ckpt: Checkpoint) -> Path:
        """The weights file, after checking it is there and unchanged."""
        path = self.data_dir / ckpt.file
        if not path.is_file():
            raise ProtocolError(
                ErrorCode.NOT_FOUND, f"checkpoint {ckpt.name!r}: its weights file {path} is gone"
            )
        digest = file_sha256(path)
        if digest != ckpt.sha256:
            raise ProtocolError(
                ErrorCode.INTERNAL,
                f"checkpoint {ckpt.name!r}: {path} has sha256 {digest[:12]}…, the registry "
                f"recorded {ckpt.sha256[:12]}…; the file was changed or damaged, refusing it",
            )
        return path

    # -- writing (each in one durable transaction, or inside the caller's) --------------------

    def insert(self, ckpt: Checkpoint) -> None:
        """Add a checkpoint inside the caller's transaction."""
        if self.get(ckpt.name) is not None:
            raise ProtocolError(
                ErrorCode.CONFLICT,
                f"a checkpoint named {ckpt.name!r} exists already; pick another name",
                field="body.checkpoint_name",
            )
        self.store.conn.execute(
            "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ckpt.name, ckpt.backbone, ckpt.kind, ckpt.parent, ckpt.job_id, ckpt.file,
                ckpt.sha256, ckpt.created, json.dumps(ckpt.metrics),
            ),
        )  # fmt: skip

    def push_activation(self, backbone: str, name: str | None) -> str | None:
        """Make `name` active inside the caller's transaction; returns the previous one."""
        previous = self.active(backbone)
        self.store.conn.execute(
            "INSERT INTO activations(backbone, name, created) VALUES (?, ?, ?)",
            (backbone, name, time.time()),
        )
        return previous

    def pop_activation(self, backbone: str) -> tuple[str | None, str | None]:
        """Undo the last activation inside the caller's transaction: (now active, undone)."""
        rows = self.store.conn.execute(
            "SELECT id, name FROM activations WHERE backbone = ? ORDER BY id DESC LIMIT 2",
            (backbone,),
        ).fetchall()
        if not rows:
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                f"body.backbone: nothing to roll back for {backbone!r}: it serves the shipped "
                "weights and was never switched",
                field="body.backbone",
            )
        self.store.conn.execute("DELETE FROM activations WHERE id = ?", (rows[0][0],))
        return (rows[1][1] if len(rows) > 1 else None), rows[0][1]


def _checkpoint(row: tuple) -> Checkpoint:
    name, backbone, kind, parent, job_id, file, sha256, created, metrics = row
    return Checkpoint(
        name, backbone, kind, parent, job_id, file, sha256, float(created), json.loads(metrics)
    )
