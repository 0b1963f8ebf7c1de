"""Jobs: SPL refinement of the reward and fine-tuning, queued durably, run one at a time.

    table = JobTable(store)                       # the `jobs` rows (any thread, its own Store)
    runner = JobRunner(store_path, work, context, wake_endpoint)
    runner.start()                                # resumes the queue; marks jobs a crash cut
                                                  # short `interrupted`
    runner.notify()                               # a job was queued
    runner.cancel(job_id)                         # stop at the next step boundary
    for type_, body in runner.events(): ...       # on the socket thread, after a wake-up

A job's life: queued -> running -> finished | failed | cancelled | interrupted; a cancel of a
running job passes through `cancelling`. Rows change in durable transactions, and the state
changes that race (cancel vs. claim vs. finish) are conditional updates, so the table never
holds two truths. The runner thread owns the training; the socket thread only reads rows and asks
for cancels, and gets the events through a queue plus one byte on the inproc wake socket (ZeroMQ
sockets stay on their thread). An engine killed mid-job leaves the row `running`: the next start
marks it `interrupted` (its partial weights are never registered), then runs the queued ones.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import zmq

from easytune_protocol import ErrorCode, ProtocolError
from easytune_protocol.catalogue import FINAL_JOB_STATES

from .store import Store

PROGRESS_EVERY_S = 0.25  # at most this often a job_progress event per job

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    method TEXT,
    state TEXT NOT NULL,
    step INTEGER NOT NULL,
    total INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    message TEXT,
    checkpoint TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    params TEXT NOT NULL
);
"""

_COLUMNS = (
    "job_id, kind, method, state, step, total, metrics, message, checkpoint, created, started, "
    "finished, params"
)


@dataclass(frozen=True)
class JobParams:
    """What a start_job request asked for, with the engine's defaults filled in."""

    kind: str  # "finetune" | "spl_refine"
    budget: int  # finetune: trajectories; spl_refine: optimizer steps
    backbone: str  # finetune: the served model; spl_refine: "reward"
    method: str | None = None  # finetune only
    lora_rank: int = 0
    anchor: float = 0.0  # finetune: MethodConfig.anchor_weight
    checkpoint_name: str | None = None
    activate: bool = False
    seed: int = 0


@dataclass(frozen=True)
class Job:
    job_id: str
    kind: str
    method: str | None
    state: str
    step: int
    total: int
    metrics: dict[str, float]
    message: str | None
    checkpoint: str | None
    created: float
    started: float | None
    finished: float | None
    params: JobParams

    def record(self) -> dict[str, Any]:
        """The protocol's `job` record."""
        out: dict[str, Any] = {
            "job_id": self.job_id,
            "kind": self.kind,
            "state": self.state,
            "step": self.step,
            "total": self.total,
            "progress": min(1.0, self.step / self.total) if self.total else 0.0,
            "metrics": dict(self.metrics),
            "created": self.created,
        }
        optional = {
            "method": self.method,
            "message": self.message,
            "checkpoint": self.checkpoint,
            "started": self.started,
            "finished": self.finished,
        }
        out |= {k: v for k, v in optional.items() if v is not None}
        return out

    def event(self) -> dict[str, Any]:
        """The body of a job_* event."""
        r = self.record()
        keys = ("job_id", "kind", "state", "step", "total", "progress", "metrics", "message")
        out = {k: r[k] for k in keys if k in r}
        if self.state in FINAL_JOB_STATES and self.checkpoint is not None:
            out["checkpoint"] = self.checkpoint
        return out


def _job(row: tuple) -> Job:
    (job_id, kind, method, state, step, total, metrics, message, checkpoint, created, started,
     finished, params) = row  # fmt: skip
    return Job(
        job_id, kind, method, state, int(step), int(total), json.loads(metrics), message,
        checkpoint, float(created), started, finished, JobParams(**json.loads(params)),
    )  # fmt: skip


class JobTable:
    """The `jobs` rows over one thread's `Store` connection."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.conn.executescript(SCHEMA)

    def get(self, job_id: str) -> Job | None:
        row = self.store.conn.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)
        ).fetchone()
        return None if row is None else _job(row)

    def require(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job is None:
            raise ProtocolError(
                ErrorCode.NOT_FOUND,
                f"body.job_id: no job {job_id!r} (job_status without job_id lists recent jobs)",
                field="body.job_id",
            )
        return job

    def recent(self, limit: int) -> list[Job]:
        rows = self.store.conn.execute(
            f"SELECT {_COLUMNS} FROM jobs ORDER BY created DESC, rowid DESC LIMIT ?", (limit,)
        )
        return [_job(r) for r in rows.fetchall()]

    def count(self, *states: str) -> int:
        marks = ",".join("?" * len(states))
        sql = f"SELECT COUNT(*) FROM jobs WHERE state IN ({marks})"
        return int(self.store.conn.execute(sql, states).fetchone()[0])

    def names_reserved(self) -> set[str]:
        """checkpoint_name of every job that may still register one."""
        rows = self.store.conn.execute(
            "SELECT params FROM jobs WHERE state IN ('queued', 'running', 'cancelling')"
        ).fetchall()
        return {n for (p,) in rows if (n := json.loads(p).get("checkpoint_name"))}

    def insert(self, job_id: str, params: JobParams) -> Job:
        """Queue a job inside the caller's transaction."""
        now = time.time()
        self.store.conn.execute(
            f"INSERT INTO jobs({_COLUMNS}) VALUES (?, ?, ?, 'queued', 0, ?, '{{}}', NULL, NULL, "
            "?, NULL, NULL, ?)",
            (job_id, params.kind, params.method, params.budget, now, json.dumps(asdict(params))),
        )
        job = self.get(job_id)
        assert job is not None
        return job

    # -- state changes (conditional, so racing writers cannot both win) ------------------------

    def _update(self, sql: str, args: tuple) -> int:
        return self.store.write(sql, args)

    def request_cancel(self, job_id: str) -> Job:
        """queued -> cancelled at once; running -> cancelling; a final job stays as it is."""
        self.require(job_id)
        now = time.time()
        self._update(
            "UPDATE jobs SET state = 'cancelled', finished = ?, message = 'cancelled before it "
            "started' WHERE job_id = ? AND state = 'queued'",
            (now, job_id),
        )
        self._update(
            "UPDATE jobs SET state = 'cancelling' WHERE job_id = ? AND state = 'running'",
            (job_id,),
        )
        return self.require(job_id)

    def claim_next(self) -> Job | None:
        """The oldest queued job, now `running` (None if the queue is empty)."""
        while True:
            row = self.store.conn.execute(
                "SELECT job_id FROM jobs WHERE state = 'queued' ORDER BY created, rowid LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            claimed = self._update(
                "UPDATE jobs SET state = 'running', started = ? WHERE job_id = ? AND "
                "state = 'queued'",
                (time.time(), row[0]),
            )
            if claimed:
                return self.get(row[0])

    def progress(self, job_id: str, step: int, metrics: dict[str, float]) -> None:
        self._update(
            "UPDATE jobs SET step = ?, metrics = ? WHERE job_id = ?",
            (step, json.dumps(metrics), job_id),
        )

    def finish(
        self,
        job_id: str,
        state: str,
        message: str | None = None,
        checkpoint: str | None = None,
        metrics: dict[str, float] | None = None,
    ) -> None:
        if state not in FINAL_JOB_STATES:
            raise ValueError(f"{state!r} is not a final job state; valid: {FINAL_JOB_STATES}")
        merged = self.require(job_id).metrics | (metrics or {})
        self._update(
            "UPDATE jobs SET state = ?, message = ?, checkpoint = ?, finished = ?, metrics = ? "
            "WHERE job_id = ?",
            (state, message, checkpoint, time.time(), json.dumps(merged), job_id),
        )

    def interrupt_unfinished(self) -> list[str]:
        """At start-up: jobs a previous engine left running are `interrupted`."""
        rows = self.store.conn.execute(
            "SELECT job_id FROM jobs WHERE state IN ('running', 'cancelling')"
        ).fetchall()
        for (job_id,) in rows:
            self.finish(
                job_id,
                "interrupted",
                "the engine stopped while this job ran; its partial work was discarded (start "
                "it again to redo it)",
            )
        return [r[0] for r in rows]


# -- the runner ----------------------------------------------------------------------------------


@dataclass
class JobHooks:
    """What a running job reports through and asks."""

    report: Callable[[int, dict[str, float]], None]  # (steps done, latest metrics)
    should_stop: Callable[[], bool]  # cancel asked or the engine is stopping
    note: Callable[[str], None]  # a line for the engine's log


@dataclass(frozen=True)
class JobOutcome:
    state: str  # a final state
    message: str | None = None
    checkpoint: str | None = None  # registered (and maybe activated) by the work
    activated: dict[str, Any] | None = None  # a checkpoint_activated event body, if it did
    metrics: dict[str, float] | None = None  # final figures, merged into the job's metrics


Work = Callable[[Job, JobHooks, Store], JobOutcome]  # runs on the job thread


class JobRunner:
    def __init__(
        self,
        store_path: Path,
        work: Work,
        context: zmq.Context,
        wake_endpoint: str,
        log: Callable[..., None],
    ) -> None:
        self.store_path = store_path
        self.work = work
        self.context = context
        self.wake_endpoint = wake_endpoint
        self.log = log
        self.running: str | None = None  # job id
        self._events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._cancel: set[str] = set()
        self._cond = threading.Condition()
        self._stopping = False
        self._wake: zmq.Socket | None = None
        self._thread = threading.Thread(target=self._run, name="jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def notify(self) -> None:
        with self._cond:
            self._cond.notify()

    def cancel(self, job_id: str) -> None:
        with self._cond:
            self._cancel.add(job_id)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the running job at its next step boundary (`interrupted`) and join."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def events(self) -> Iterator[tuple[str, dict[str, Any]]]:
        while True:
            try:
                yield self._events.get_nowait()
            except queue.Empty:
                return

    def emit(self, type_: str, body: dict[str, Any]) -> None:
        """Queue an event for the socket thread (from the job thread: wakes it)."""
        self._events.put((type_, body))
        if self._wake is not None and threading.current_thread() is self._thread:
            self._wake.send(b"\x02")

    # -- job thread --------------------------------------------------------------------------

    def _run(self) -> None:
        store = Store(self.store_path)
        table = JobTable(store)
        self._wake = self.context.socket(zmq.PUSH)
        self._wake.setsockopt(zmq.LINGER, 0)
        self._wake.connect(self.wake_endpoint)
        try:
            for job_id in table.interrupt_unfinished():
                self.log("job_interrupted", job_id=job_id, reason="engine restart")
            while True:
                with self._cond:
                    while not self._stopping and (job := table.claim_next()) is None:
                        self._cond.wait(1.0)
                    if self._stopping:
                        return
                self._run_job(table, job)
        finally:
            store.close()
            self._wake.close(linger=0)

    def _run_job(self, table: JobTable, job: Job) -> None:
        self.running = job.job_id
        self.emit("job_started", _refetch(table, job).event())
        self.log("job_started", job_id=job.job_id, kind=job.kind, budget=job.params.budget)
        last = [0.0]

        def report(step: int, metrics: dict[str, float]) -> None:
            table.progress(job.job_id, step, metrics)
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S or step >= job.total:
                last[0] = now
                self.emit("job_progress", _refetch(table, job).event())

        def should_stop() -> bool:
            return self._stopping or job.job_id in self._cancel

        hooks = JobHooks(report, should_stop, lambda line: self.log("job_note", line=line))
        t0 = time.perf_counter()
        try:
            outcome = self.work(job, hooks, table.store)
            if outcome.state == "cancelled" and job.job_id not in self._cancel:
                outcome = JobOutcome("interrupted", "the engine stopped while this job ran")
        except ProtocolError as exc:
            outcome = JobOutcome("failed", exc.message)
        except Exception as exc:  # a bug in the work must not kill the runner
            self.log("error", job_id=job.job_id, traceback=traceback.format_exc(limit=8))
            outcome = JobOutcome("failed", f"{type(exc).__name__}: {exc}"[:900])
        table.finish(
            job.job_id, outcome.state, outcome.message, outcome.checkpoint, outcome.metrics
        )
        if outcome.activated is not None:
            self.emit("checkpoint_activated", outcome.activated)
        self.running = None
        with self._cond:
            self._cancel.discard(job.job_id)
        done = _refetch(table, job)
        self.emit("job_finished", done.event())
        self.log(
            "job_finished",
            job_id=job.job_id,
            state=done.state,
            seconds=round(time.perf_counter() - t0, 2),
            checkpoint=done.checkpoint,
            message=done.message,
        )


def _refetch(table: JobTable, job: Job) -> Job:
    fresh = table.get(job.job_id)
    assert fresh is not None
    return fresh
