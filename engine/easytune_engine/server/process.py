"""Run `easytune-engine serve` as a child process and wait until it is ready.

    with EngineProcess.start(data_dir, ["--model", "mld"], log=out / "engine.log") as engine:
        client = EngineClient.connect(engine.bind)
        ...                                   # leaving the block: shutdown, then SIGTERM if needed

The child binds random loopback ports (`*`); its `ready` JSON line on stderr names them. Every
stderr line is copied to `log` by a reader thread, so the child never blocks on a full pipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

START_TIMEOUT = 120.0  # imports and model loading on a busy machine


class EngineProcess:
    def __init__(self, proc: subprocess.Popen, log: Path | None) -> None:
        self.proc = proc
        self.ready: dict | None = None
        self._log = open(log, "a", encoding="utf-8") if log is not None else None
        self._lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def start(
        cls,
        data_dir: Path,
        args: Sequence[str] = (),
        *,
        log: Path | None = None,
        threads: int | None = None,
        timeout: float = START_TIMEOUT,
    ) -> EngineProcess:
        """Launch `serve --cpu` on random loopback ports with `args`; wait for `ready`."""
        cmd = [
            sys.executable, "-m", "easytune_engine", "serve", "--cpu",
            "--bind", "tcp://127.0.0.1:*", "--events", "tcp://127.0.0.1:*",
            "--data-dir", str(data_dir), *args,
        ]  # fmt: skip
        if threads is not None:
            cmd += ["--threads", str(threads)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        engine = cls(proc, log)
        engine._wait_ready(timeout)
        return engine

    @property
    def bind(self) -> str:
        assert self.ready is not None
        return self.ready["bind"]

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._seen:
                self._lines.append(line)
                if self.ready is None:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        record = None
                    if isinstance(record, dict) and record.get("event") == "ready":
                        self.ready = record
                self._seen.notify_all()
            if self._log is not None:
                self._log.write(line)
                self._log.flush()
        with self._seen:
            self._seen.notify_all()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._seen:
            while self.ready is None:
                if self.proc.poll() is not None and not self._reader.is_alive():
                    tail = "".join(self._lines[-20:])
                    raise RuntimeError(f"the engine exited before it was ready:\n{tail}")
                left = deadline - time.monotonic()
                if left <= 0:
                    self.stop()
                    raise RuntimeError(f"the engine was not ready within {timeout:.0f} s")
                self._seen.wait(min(left, 0.5))

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (an orderly stop) unless it has exited; SIGKILL after `timeout`."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
        if self._log is not None and not self._log.closed:
            self._log.close()
        return self.proc.returncode

    def __enter__(self) -> EngineProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
