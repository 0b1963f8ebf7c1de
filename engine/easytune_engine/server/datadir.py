"""The data directory's lock: one engine per directory.

An exclusive `flock` on `engine.lock`, held for the life of the process; the file holds the
holder's pid so a second engine can say who has it. The kernel drops the lock when the process
dies, even by kill -9, so a stale lock file never blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .config import ServeError

LOCK_NAME = "engine.lock"


class DataDirLock:
    """Hold `data_dir/engine.lock` (acquired on construction; `release` or process exit)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ServeError(f"cannot use data directory {data_dir}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ServeError(
                f"data directory {data_dir} is in use by another engine (pid {holder}); stop "
                "that engine or pass another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
