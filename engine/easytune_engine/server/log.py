"""Structured log lines on stderr: one JSON object per line.

    {"ts": 1764150000.123, "event": "request", "id": "...", "type": "generate",
     "status": "ok", "ms": 41.7, "session": "..."}

Every request gets exactly one `request` line (its id, type, status, error code and duration from
arrival to reply); the server adds `ready`, `stopping` and `stopped` lines around its life, and
`dropped` for a reply it could not deliver. A generate line adds `batch`: how many requests shared
its sampling call, and `stages`: ms per stage in the generation worker (`worker.STAGES`: queued,
sample, store_start, clips, encode, commit).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO


class EventLog:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def write(self, event: str, **fields: Any) -> None:
        record = {"ts": round(time.time(), 3), "event": event}
        record.update({k: v for k, v in fields.items() if v is not None})
        stream = self.stream or sys.stderr
        try:
            stream.write(json.dumps(record, default=str) + "\n")
            stream.flush()
        except (OSError, ValueError):  # stderr closed by whoever started us: keep serving
            pass

    def request(
        self,
        request_id: str | None,
        type_: str | None,
        status: str,
        started: float,
        *,
        code: str | None = None,
        session: str | None = None,
        replayed: bool = False,
        batch: int | None = None,
        stages: dict[str, float] | None = None,
    ) -> None:
        self.write(
            "request",
            id=request_id or "",
            type=type_ or "",
            status=status,
            code=code,
            ms=round((time.perf_counter() - started) * 1000.0, 3),
            session=session,
            replayed=replayed or None,
            batch=batch,
            stages=stages,  # generate: ms per stage in the worker (see worker.STAGES)
        )
