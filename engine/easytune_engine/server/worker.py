"""Generation off the socket thread: a bounded queue, one worker thread, replies handed back.

    worker = GenerationWorker(store_path, engine_session, context, wake_endpoint, limit)
    worker.submit(job)                    # busy (ProtocolError) when the queue is full
    for done in worker.finished():        # on the socket thread, after a wake-up
        router.send_multipart([done.peer, *done.frames])

The socket thread never runs the model: it validates a generate request, queues it and goes back
to answering health, hello and rankings at once. The worker takes the oldest request together with
the queued ones that can share its sampling call (`batching`), samples them, turns every candidate
into a clip (joints, IK rotations, contacts) while a second thread stores the clips durably
(`ClipWriter`: the fsync overlaps the IK), encodes each reply and
hands it back through a queue, waking the socket thread with one byte on an inproc PUSH socket
(ZeroMQ sockets are not shared between threads).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from easytune_protocol import ErrorCode, Header, ProtocolError, encode, error_reply, new_id, reply
from easytune_protocol.catalogue import FPS

from ..models.fastpath import FastSampler
from ..models.pipeline import MotionGenerator
from ..text.rewrite import PromptRewriter, Rewrite
from .batching import GenerateJob, sample_batch, take_batch
from .checkpoints import CheckpointBook
from .models import ModelRegistry
from .motion import clip_arrays_many
from .store import ClipRecord, ClipWriter, Store

FAST_SAMPLERS = 4  # weights (active, adapters) whose captured graphs are kept
# A served generate's stages, logged in ms with its request line (`stages`): queued (arrival to
# the worker taking it), sample (prompt rewrite and sampling), store_start (the clip rows written;
# the commit then runs on), clips (joints, IK), encode (the replies), commit (what was left of the
# durable commit). The request line's `ms` adds handing the reply back and sending it.
STAGES = ("queued", "sample", "store_start", "clips", "encode", "commit")


@dataclass(frozen=True)
class Finished:
    """A reply ready to go back to its client, with what the request log needs."""

    peer: bytes
    frames: list[Any]
    header: Header  # of the request
    status: str  # "ok", "error", "cancelled"
    code: str | None
    received: float
    batch: int  # requests sampled together with this one (itself included)
    stages: dict[str, float] | None = None  # ms per STAGES entry, for the request log


class GenerationWorker:
    def __init__(
        self,
        store_path: Path,
        engine_session: str,
        context: zmq.Context,
        wake_endpoint: str,
        limit: int,
        fast_path: bool = True,
        log: Callable[..., None] | None = None,
        registry: ModelRegistry | None = None,
        graph_bf16: bool = False,
    ) -> None:
        self.store_path = store_path
        self.engine_session = engine_session
        self.context = context
        self.wake_endpoint = wake_endpoint
        self.limit = limit
        self.registry = registry  # resolves adapters
        self.data_dir = Path(store_path).parent
        self.fast_path = fast_path  # on CUDA: CUDA graphs (models/fastpath.py)
        self.graph_bf16 = graph_bf16  # ... in bf16 (default fp32: the eager path's motion)
        self.log = log or (lambda *a, **k: None)
        self._fast: OrderedDict[int, tuple[MotionGenerator, FastSampler]] = OrderedDict()
        self._rewriter: PromptRewriter | None = None  # loaded on the first request that asks
        self.done: queue.Queue[Finished] = queue.Queue()
        self.running = 0  # requests being sampled now
        self._pending: deque[GenerateJob] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._wake: zmq.Socket | None = None
        self._thread = threading.Thread(target=self._run, name="generation", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def queued(self) -> int:
        """Requests queued or being sampled."""
        return len(self._pending) + self.running

    def submit(self, job: GenerateJob) -> None:
        with self._cond:
            if self._stopping:
                raise ProtocolError(ErrorCode.BUSY, "the engine is stopping; retry after a restart")
            if len(self._pending) >= self.limit:
                raise ProtocolError(
                    ErrorCode.BUSY,
                    f"{self.limit} generate requests are queued already; retry later",
                )
            self._pending.append(job)
            self._cond.notify()

    def finished(self) -> Iterator[Finished]:
        while True:
            try:
                yield self.done.get_nowait()
            except queue.Empty:
                return

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch being sampled, answer the queued requests `cancelled`, join."""
        with self._cond:
            self._stopping = True
            cancelled = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        err = ProtocolError(ErrorCode.BUSY, "the engine stopped before running this request")
        for job in cancelled:
            self._put(job, self._error(job, err, "cancelled"), "cancelled", err, 1)
        self._thread.join(timeout)

    # -- worker thread -------------------------------------------------------------------------

    def _next_batch(self) -> list[GenerateJob] | None:
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            if not self._pending:
                return None
            batch = take_batch(self._pending.popleft(), self._pending)
            self.running = len(batch)
            return batch

    def _run(self) -> None:
        store = Store(self.store_path)
        writer = ClipWriter(self.store_path)
        book = CheckpointBook(store, self.data_dir)
        self._wake = self.context.socket(zmq.PUSH)
        self._wake.setsockopt(zmq.LINGER, 0)
        self._wake.connect(self.wake_endpoint)
        try:
            while (batch := self._next_batch()) is not None:
                try:
                    self._run_batch(writer, book, batch)
                finally:
                    self.running = 0
        finally:
            writer.close()
            store.close()
            self._wake.close(linger=0)

    def _run_batch(
        self, writer: ClipWriter, book: CheckpointBook, batch: Sequence[GenerateJob]
    ) -> None:
        t0 = time.perf_counter()
        marks = [t0]  # perf_counter at the end of each stage after `queued`
        try:
            rewrites = [self._rewrite(job) for job in batch]
            texts = [
                r.text if r else job.body["prompt"] for job, r in zip(batch, rewrites, strict=True)
            ]
            gen = self._weights(book, batch[0])
            features = sample_batch(batch, gen, self._fast_for(gen), texts)
        except ProtocolError as err:  # e.g. an adapter whose file was damaged
            for job in batch:
                self._put(job, self._error(job, err), "error", err, len(batch))
            return
        except Exception as exc:  # an engine bug must not kill the worker
            err = ProtocolError(ErrorCode.INTERNAL, f"generate failed: {type(exc).__name__}: {exc}")
            for job in batch:
                self._put(job, self._error(job, err), "error", err, len(batch))
            return
        marks.append(time.perf_counter())
        elapsed_ms = (marks[-1] - t0) * 1000.0
        # Every candidate's clip is stored in one durable commit on the writer's thread while the
        # joints, IK and replies are computed here; no reply leaves before the commit returned.
        records = [self._records(job, feats) for job, feats in zip(batch, features, strict=True)]
        stored = writer.add([r for recs in records for r in recs])
        marks.append(time.perf_counter())
        try:  # joints and IK of every candidate of the batch in one pass
            arrays = iter(clip_arrays_many([f for feats in features for f in feats]))
        except Exception as exc:
            err = ProtocolError(ErrorCode.INTERNAL, f"generate failed: {type(exc).__name__}: {exc}")
            for job in batch:
                self._put(job, self._error(job, err), "error", err, len(batch))
            return
        marks.append(time.perf_counter())
        ready: list[tuple[GenerateJob, list[Any]]] = []
        for job, recs, rewrite in zip(batch, records, rewrites, strict=True):
            mine = [next(arrays) for _ in recs]
            try:
                body = self._reply_body(job, recs, mine, elapsed_ms, rewrite)
            except ProtocolError as exc:
                self._put(job, self._error(job, exc), "error", exc, len(batch))
                continue
            try:
                frames = encode(reply(job.header, body, engine_session=self.engine_session))
            except ProtocolError as exc:  # the engine built a bad reply: say so instead
                err = ProtocolError(ErrorCode.INTERNAL, f"the engine's reply was invalid: {exc}")
                self._put(job, self._error(job, err), "error", err, len(batch))
                continue
            ready.append((job, frames))
        marks.append(time.perf_counter())
        try:
            stored.result()
        except Exception as exc:
            err = ProtocolError(ErrorCode.INTERNAL, f"storing the clips failed: {exc}")
            for job, _ in ready:
                self._put(job, self._error(job, err), "error", err, len(batch))
            return
        marks.append(time.perf_counter())
        for job, frames in ready:
            self._put(job, frames, "ok", None, len(batch), _stages(job.received, marks))

    def _weights(self, book: CheckpointBook, job: GenerateJob) -> MotionGenerator:
        """The request's weights: those active when it arrived, or its adapter (loaded here)."""
        if job.generator is not None:
            return job.generator
        if self.registry is None:
            raise ProtocolError(ErrorCode.INTERNAL, "this worker has no model registry")
        return self.registry.weights(book, job.checkpoint, job.model.name)

    def _fast_for(self, gen: MotionGenerator) -> FastSampler | None:
        """The fast path for these weights (CUDA only, unless disabled); a few are kept."""
        if not self.fast_path or gen.device.type != "cuda":
            return None
        hit = self._fast.get(id(gen))
        if hit is not None and hit[0] is gen:
            self._fast.move_to_end(id(gen))
            return hit[1]
        fast = FastSampler(gen, bf16=self.graph_bf16, log=self.log)
        self._fast[id(gen)] = (gen, fast)
        while len(self._fast) > FAST_SAMPLERS:
            self._fast.popitem(last=False)
        return fast

    def _put(
        self,
        job: GenerateJob,
        frames: list[Any],
        status: str,
        err: Any,
        batch: int,
        stages: dict[str, float] | None = None,
    ) -> None:
        code = str(err.code) if err is not None else None
        done = Finished(job.peer, frames, job.header, status, code, job.received, batch, stages)
        self.done.put(done)
        if self._wake is not None and threading.current_thread() is self._thread:
            self._wake.send(b"\x01")

    def _error(self, job: GenerateJob, err: ProtocolError, status: str = "error") -> list[Any]:
        msg = error_reply(err, engine_session=self.engine_session, req=job.header, status=status)
        return encode(msg)  # type: ignore[arg-type]

    def _records(self, job: GenerateJob, features: list[np.ndarray]) -> list[ClipRecord]:
        """The stored records of a request's candidates, each with its new clip id."""
        b, opts, m = job.body, job.options, job.model
        how = (m.name, m.kind, job.weights_sha256, job.seed)
        after = (opts.sampler, opts.steps, opts.guidance, self.engine_session)
        return [
            ClipRecord(f"clip-{new_id()}", b["prompt"], feats, *how, k, *after, opts.precision)
            for k, feats in enumerate(features)
        ]

    def _reply_body(
        self,
        job: GenerateJob,
        records: list[ClipRecord],
        arrays_of: list[dict[str, np.ndarray] | ValueError],
        elapsed_ms: float,
        rewrite: Rewrite | None = None,
    ) -> dict[str, Any]:
        """The reply body of one request, from its candidates' records and clip arrays."""
        clips = []
        for k, (rec, arrays) in enumerate(zip(records, arrays_of, strict=True)):
            if isinstance(arrays, ValueError):
                raise ProtocolError(
                    ErrorCode.INTERNAL, f"candidate {k}: no skeleton pose for the motion ({arrays})"
                )
            clips.append({"clip_id": rec.clip_id, "frames": int(rec.features.shape[0]), **arrays})
        opts = job.options
        body = {
            "clips": clips,
            "fps": FPS,
            "seed": job.seed,
            "sampler": opts.sampler,
            "steps": opts.steps,
            "guidance": float(opts.guidance),
            "backbone": job.model.name,
            "elapsed_ms": elapsed_ms,
        }
        if job.checkpoint is not None:
            body["checkpoint"] = job.checkpoint
        if job.body.get("adapter") is not None:
            body["adapter"] = job.body["adapter"]
        if rewrite is not None:
            body["interpreted_prompt"] = rewrite.text
            body["substitutions"] = [
                {"word": x.word, "replacement": x.replacement, "reason": x.reason, "score": x.score}
                for x in rewrite.substitutions
            ]
        return body

    def _rewrite(self, job: GenerateJob) -> Rewrite | None:
        """The request's prompt as the model will read it; None when it goes as typed."""
        if not job.body.get("rewrite", True):
            return None
        if self._rewriter is None:
            gen = job.generator or job.model.generator  # its word model loads when a prompt
            self._rewriter = PromptRewriter.load(device=gen.device)  # needs it, beside the model
        rewrite = self._rewriter(job.body["prompt"])
        if self._rewriter.word_model_error is not None:  # installed, but not the pinned files
            self.log("word_model_rejected", error=self._rewriter.word_model_error)
            self._rewriter.word_model_error = None  # logged once; the rewriter is typo-only now
        return rewrite if rewrite.substitutions else None


def _stages(received: float, marks: list[float]) -> dict[str, float]:
    """ms per STAGES entry from the arrival time and the stages' end times."""
    starts = [received, *marks[:-1]]
    return {k: round((b - a) * 1000.0, 3) for k, a, b in zip(STAGES, starts, marks, strict=True)}
