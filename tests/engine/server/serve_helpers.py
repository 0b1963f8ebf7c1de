"""A real `easytune-engine serve` process for tests: launch, wait for `ready`, read its log.

`start_engine` launches `python -m easytune_engine serve` with ports `*`, reads the `ready` line for
the bound endpoints and keeps draining stderr (the request log) so the server never blocks on a
full pipe. (A module of its own, not conftest.py, so tests can import it by a unique name.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from easytune_protocol.client import EngineClient

START_TIMEOUT = 60.0  # seconds to the ready line (imports + model load, on a busy machine)


@dataclass
class Engine:
    """A running (or refused) `easytune-engine serve` process."""

    proc: subprocess.Popen
    data_dir: Path
    lines: list[str] = field(default_factory=list)
    ready: dict | None = None

    @property
    def bind(self) -> str:
        assert self.ready is not None
        return self.ready["bind"]

    @property
    def log(self) -> list[dict]:
        """The JSON lines written so far (other stderr lines are skipped)."""
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return out

    def client(self, timeout: float = 20.0) -> EngineClient:
        return EngineClient.connect(self.bind, timeout=timeout, retries=0)

    def wait(self, timeout: float = 30.0) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def start_reader(self) -> None:
        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line.rstrip("\n"))

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()


def launch(data_dir: Path, *args: str, home: Path | None = None) -> Engine:
    """Start `python -m easytune_engine serve ARGS --data-dir DATA_DIR` (does not wait)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["EASYTUNE_HOME"] = str(home or data_dir.parent / "home")
    cmd = [sys.executable, "-m", "easytune_engine", "serve", "--data-dir", str(data_dir), *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    engine = Engine(proc, data_dir)
    engine.start_reader()
    return engine


def start_engine(data_dir: Path, model: Path, *args: str) -> Engine:
    """A served engine on random loopback ports, once it has said `ready`."""
    engine = launch(
        data_dir,
        "--cpu",
        "--threads",
        "1",
        "--bind",
        "tcp://127.0.0.1:*",
        "--events",
        "tcp://127.0.0.1:*",
        "--model",
        str(model),
        *args,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        ready = [r for r in engine.log if r.get("event") == "ready"]
        if ready:
            engine.ready = ready[0]
            return engine
        if engine.proc.poll() is not None:
            engine.wait(5)
            raise RuntimeError("the engine exited before ready:\n" + "\n".join(engine.lines))
        time.sleep(0.05)
    engine.stop()
    raise RuntimeError("the engine did not start in time:\n" + "\n".join(engine.lines))
