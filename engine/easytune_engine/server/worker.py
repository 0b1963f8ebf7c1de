"""Generation off the socket thread: a bounded queue, one worker thread, replies handed back.

    worker = GenerationWorker(store_path, engine_session, context, wake_endpoint, limit)
    worker.submit(job)                    # busy (ProtocolError) when the queue is full
    for done in worker.finished():        # on the socket thread, after a wake-up
        router.send_multipart([done.peer, *done.frames])

The socket thread never runs the model: it validates a generate request, queues it and goes back
to answering health, hello and rankings at once. The worker samples the candidates, turns them
into clips (joints, IK rotations, contacts), stores every clip durably, encodes the reply and
hands it back through a queue, waking the socket thread with one byte on an inproc PUSH socket
(ZeroMQ sockets are not shared between threads). Requests are run one at a time, in order;
batching concurrent requests into one sampling call is left for a later increment.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from easytune_protocol import ErrorCode, Header, ProtocolError, encode, error_reply, new_id, reply
from easytune_protocol.catalogue import FPS

from ..models.pipeline import SamplingOptions
from .models import ServedModel
from .motion import clip_arrays
from .store import ClipRecord, Store


@dataclass(frozen=True)
class GenerateJob:
    peer: bytes  # the ROUTER identity frame of the client
    header: Header  # the request's header
    body: dict[str, Any]  # the decoded, checked request body
    model: ServedModel
    options: SamplingOptions
    seed: int
    received: float  # time.perf_counter() when the request arrived


@dataclass(frozen=True)
class Finished:
    peer: bytes
    frames: list[Any]
    header: Header  # of the request
    status: str  # "ok", "error", "cancelled"
    code: str | None
    received: float


class GenerationWorker:
    def __init__(
        self,
        store_path: Path,
        engine_session: str,
        context: zmq.Context,
        wake_endpoint: str,
        limit: int,
    ) -> None:
        self.store_path = store_path
        self.engine_session = engine_session
        self.context = context
        self.wake_endpoint = wake_endpoint
        self.jobs: queue.Queue[GenerateJob | None] = queue.Queue(maxsize=limit)
        self.done: queue.Queue[Finished] = queue.Queue()
        self.running = 0  # jobs being sampled now (0 or 1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="generation", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def queued(self) -> int:
        return self.jobs.qsize() + self.running

    def submit(self, job: GenerateJob) -> None:
        if self._stop.is_set():
            raise ProtocolError(ErrorCode.BUSY, "the engine is stopping; retry after a restart")
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            raise ProtocolError(
                ErrorCode.BUSY,
                f"{self.jobs.maxsize} generate requests are queued already; retry later",
            ) from None

    def finished(self) -> Iterator[Finished]:
        while True:
            try:
                yield self.done.get_nowait()
            except queue.Empty:
                return

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the request being sampled, answer the queued ones `cancelled`, join."""
        self._stop.set()
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                err = ProtocolError(ErrorCode.BUSY, "the engine stopped before running this")
                self._put(job, self._error(job, err, status="cancelled"), "cancelled", err)
        self.jobs.put(None)
        self._thread.join(timeout)

    # -- worker thread -------------------------------------------------------------------------

    def _run(self) -> None:
        store = Store(self.store_path)
        wake = self.context.socket(zmq.PUSH)
        wake.setsockopt(zmq.LINGER, 0)
        wake.connect(self.wake_endpoint)
        self._wake = wake
        try:
            while True:
                job = self.jobs.get()
                if job is None:
                    break
                self.running = 1
                try:
                    frames = self._generate(store, job)
                    self._put(job, frames, "ok", None)
                except ProtocolError as exc:
                    self._put(job, self._error(job, exc), "error", exc)
                except Exception as exc:  # an engine bug must not kill the worker
                    err = ProtocolError(
                        ErrorCode.INTERNAL, f"generate failed: {type(exc).__name__}: {exc}"
                    )
                    self._put(job, self._error(job, err), "error", err)
                finally:
                    self.running = 0
        finally:
            store.close()
            wake.close(linger=0)

    def _put(self, job: GenerateJob, frames: list[Any], status: str, err: Any) -> None:
        code = str(err.code) if err is not None else None
        self.done.put(Finished(job.peer, frames, job.header, status, code, job.received))
        wake = getattr(self, "_wake", None)
        if wake is not None and threading.current_thread() is self._thread:
            wake.send(b"\x01")

    def _error(self, job: GenerateJob, err: ProtocolError, status: str = "error") -> list[Any]:
        msg = error_reply(err, engine_session=self.engine_session, req=job.header, status=status)
        return encode(msg)  # type: ignore[arg-type]

    def _generate(self, store: Store, job: GenerateJob) -> list[Any]:
        t0 = time.perf_counter()
        b, opts, model = job.body, job.options, job.model
        n = b["candidates"]
        out = model.generator.generate(
            [b["prompt"]] * n,
            [b["length"]] * n,
            seed=job.seed,
            steps=opts.steps,
            guidance=opts.guidance,
            sampler=opts.sampler,
        )
        clips, records = [], []
        for k, feats in enumerate(out.features):
            clip_id = f"clip-{new_id()}"
            try:
                arrays = clip_arrays(feats)
            except ValueError as exc:
                raise ProtocolError(
                    ErrorCode.INTERNAL, f"candidate {k}: no skeleton pose for the motion ({exc})"
                ) from None
            clips.append({"clip_id": clip_id, "frames": int(feats.shape[0]), **arrays})
            records.append(
                ClipRecord(
                    clip_id, b["prompt"], feats, model.name, model.kind, model.checkpoint_sha256,
                    job.seed, k, opts.sampler, opts.steps, opts.guidance, self.engine_session,
                )
            )  # fmt: skip
        store.add_clips(records)  # durable before the reply leaves
        body = {
            "clips": clips,
            "fps": FPS,
            "seed": job.seed,
            "sampler": opts.sampler,
            "steps": opts.steps,
            "guidance": float(opts.guidance),
            "backbone": model.name,
            "elapsed_ms": (time.perf_counter() - t0) * 1000.0,
        }
        return encode(reply(job.header, body, engine_session=self.engine_session))
