"""One function per request type: (checked request) -> reply body, or an error.

    outcome = handlers.handle(msg, peer)   # Outcome(status, body, replayed), or None when the
                                           # reply comes later (generate: from the worker)

Bodies arrive already checked against the catalogue (types, ranges, defaults filled in); what is
left here is what needs the engine's state: unknown models or clips, idempotent replays, the
loopback rule for shutdown. Failures raise `ProtocolError` with the code the client sees.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from easytune_protocol import PROTOCOL_VERSION, ErrorCode, Message, ProtocolError, new_id
from easytune_protocol.catalogue import (
    FPS,
    JOINT_NAMES,
    JOINT_PARENTS,
    MAX_CANDIDATES,
    MAX_EXPORT_CLIPS,
    MAX_FRAMES,
    MAX_PAGE,
    MAX_PROMPT_CHARS,
    MAX_SEED,
)
from easytune_protocol.codec import MAX_FRAMES as MAX_WIRE_FRAMES
from easytune_protocol.codec import MAX_MESSAGE_BYTES

from .. import __version__
from ..reward import rankings
from ..text.minilm import find_word_model
from .batching import GenerateJob
from .checkpoints import REWARD, CheckpointBook
from .jobs import JobParams, JobRunner, JobTable
from .models import ModelRegistry
from .store import Store, StoredReply, body_digest
from .worker import GenerationWorker

CAPABILITIES = (
    "generate",
    "rankings",
    "events",
    "jobs",
    "checkpoints",
    "adapters",
    "prompt_rewrite",
)
RANKINGS_FORMAT = "easytune-rankings"


@dataclass(frozen=True)
class Peer:
    identity: bytes  # ROUTER routing id
    address: str | None  # its IP address as ZeroMQ reports it (None: ipc, or unknown)
    received: float  # time.perf_counter() at arrival

    @property
    def is_loopback(self) -> bool:
        if self.address is None:
            return True  # ipc:// peers share the machine (and the engine binds nothing else)
        try:
            return ipaddress.ip_address(self.address.strip("[]")).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class Outcome:
    status: str
    body: dict[str, Any]
    replayed: bool = False


class Handlers:
    def __init__(
        self,
        *,
        engine_session: str,
        registry: ModelRegistry,
        store: Store,
        worker: GenerationWorker,
        runner: JobRunner,
        book: CheckpointBook,
        device: str,
        events_endpoint: str,
        request_stop: Callable[[str], None],
        publish: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self.engine_session = engine_session
        self.registry = registry
        self.store = store
        self.worker = worker
        self.runner = runner
        self.book = book
        self.jobs = JobTable(store)
        self.publish = publish
        self.device = device
        self.events_endpoint = events_endpoint
        self.request_stop = request_stop
        self.started = time.time()
        synonyms = ("prompt_synonyms",) if find_word_model() is not None else ()
        self.capabilities = [*CAPABILITIES, *synonyms]  # synonyms need the word model
        self._table: dict[str, Callable[[Message, Peer], Outcome | None]] = {
            "hello": self.hello,
            "list_models": self.list_models,
            "generate": self.generate,
            "submit_ranking": self.submit_ranking,
            "list_rankings": self.list_rankings,
            "export_rankings": self.export_rankings,
            "start_job": self.start_job,
            "job_status": self.job_status,
            "cancel_job": self.cancel_job,
            "list_checkpoints": self.list_checkpoints,
            "activate_checkpoint": self.activate_checkpoint,
            "rollback": self.rollback,
            "health": self.health,
            "shutdown": self.shutdown,
        }

    def handle(self, msg: Message, peer: Peer) -> Outcome | None:
        handler = self._table.get(msg.type)
        if handler is None:
            raise ProtocolError(
                ErrorCode.UNKNOWN_TYPE,
                f"{msg.type} is in the protocol but not served by this engine version yet; "
                f"served: {', '.join(self._table)}",
                field="header.type",
            )
        return handler(msg, peer)

    # -- read-only -----------------------------------------------------------------------------

    def hello(self, msg: Message, peer: Peer) -> Outcome:
        return Outcome(
            "ok",
            {
                "protocol_version": PROTOCOL_VERSION,
                "engine_version": __version__,
                "engine_session": self.engine_session,
                "capabilities": self.capabilities,
                "models": self.registry.records(),
                "device": self.device,
                "events": self.events_endpoint,
                "fps": FPS,
                "joint_names": list(JOINT_NAMES),
                "joint_parents": list(JOINT_PARENTS),
                "limits": {
                    "max_message_bytes": MAX_MESSAGE_BYTES,
                    "max_frames_per_message": MAX_WIRE_FRAMES,
                    "max_candidates": MAX_CANDIDATES,
                    "max_frames": MAX_FRAMES,
                    "max_prompt_chars": MAX_PROMPT_CHARS,
                },
            },
        )

    def list_models(self, msg: Message, peer: Peer) -> Outcome:
        return Outcome("ok", {"models": self.registry.records()})

    def health(self, msg: Message, peer: Peer) -> Outcome:
        return Outcome(
            "ok",
            {
                "status": "ok" if self.worker.alive else "degraded",  # no generation thread
                "uptime_s": time.time() - self.started,
                "queued_requests": self.worker.queued,
                "running_jobs": self.jobs.count("running", "cancelling"),
                "device": self.device,
            },
        )

    def list_rankings(self, msg: Message, peer: Peer) -> Outcome:
        page, next_after, total = self.store.rankings_page(msg.body["after"], msg.body["limit"])
        body: dict[str, Any] = {"rankings": page, "total": total}
        if next_after is not None:
            body["next_after"] = next_after
        return Outcome("ok", body)

    def export_rankings(self, msg: Message, peer: Peer) -> Outcome:
        """A rankings page with the features of every clip they name (ranked and rejected),
        ended early rather than carry more than MAX_EXPORT_CLIPS clips."""
        page, next_after, _ = self.store.rankings_page(msg.body["after"], msg.body["limit"])
        kept: list[dict[str, Any]] = []
        clip_ids: list[str] = []
        for ranking in page:
            new = [c for c in (*ranking["ranked"], *ranking["rejected"]) if c not in clip_ids]
            if len(clip_ids) + len(new) > MAX_EXPORT_CLIPS:
                next_after = kept[-1]["ranking_id"]  # a ranking has ≤ 32 clips: kept is not empty
                break
            kept.append(ranking)
            clip_ids.extend(new)
        found = self.store.clip_features(clip_ids)
        clips = [
            {"clip_id": cid, "prompt": found[cid][0], "features": found[cid][1]}
            for cid in clip_ids
            if cid in found
        ]
        body: dict[str, Any] = {
            "format": RANKINGS_FORMAT,
            "format_version": rankings.FORMAT_VERSION,
            "rankings": kept,
            "clips": clips,
        }
        if next_after is not None:
            body["next_after"] = next_after
        return Outcome("ok", body)

    # -- work ----------------------------------------------------------------------------------

    def generate(self, msg: Message, peer: Peer) -> None:
        """Validate against the model, then queue for the worker (it sends the reply)."""
        b = msg.body
        model = self.registry.get(b.get("backbone"))
        adapter = b.get("adapter")
        generator, checkpoint = model.generator, model.checkpoint
        if adapter is not None:
            ckpt = self.book.get(adapter)
            if ckpt is None or ckpt.kind != "adapter" or ckpt.backbone != model.name:
                raise ProtocolError(
                    ErrorCode.NOT_FOUND,
                    f"body.adapter: model {model.name!r} has no adapter {adapter!r}; its "
                    f"adapters: {', '.join(model.adapters) or 'none yet'}",
                    field="body.adapter",
                )
            generator, checkpoint = None, adapter  # the worker loads it (once; then cached)
        opts = model.options(b.get("steps"), b.get("guidance"), b.get("sampler"))
        seed = b.get("seed")
        seed = secrets.randbelow(MAX_SEED + 1) if seed is None else seed
        sha = (
            model.checkpoint_sha256 if checkpoint is None else self.book.require(checkpoint).sha256
        )
        self.worker.submit(
            GenerateJob(
                peer.identity, msg.header, b, model, opts, seed, peer.received, generator,
                checkpoint, sha,
            )
        )  # fmt: skip
        return None

    def submit_ranking(self, msg: Message, peer: Peer) -> Outcome:
        h, b = msg.header, msg.body
        assert h.session is not None and h.idempotency_key is not None  # the codec checked
        digest = body_digest(msg.type, b)
        stored = self.store.stored_reply(h.session, h.idempotency_key, msg.type, digest)
        if stored is not None:
            return Outcome(stored.status, stored.body, replayed=True)
        out = self.store.submit_ranking(
            h.session, h.idempotency_key, digest, b["prompt"], b["ranked"], b["rejected"]
        )
        return Outcome(out.status, out.body)

    def shutdown(self, msg: Message, peer: Peer) -> Outcome:
        if not peer.is_loopback:
            raise ProtocolError(
                ErrorCode.FORBIDDEN,
                f"shutdown is honoured from loopback peers only, not from {peer.address}",
            )
        h = msg.header
        assert h.session is not None and h.idempotency_key is not None
        digest = body_digest(msg.type, msg.body)
        stored = self.store.stored_reply(h.session, h.idempotency_key, msg.type, digest)
        if stored is None:
            self.store.save_reply(
                h.session,
                h.idempotency_key,
                msg.type,
                digest,
                StoredReply("ok", {"stopping": True}),
            )
        self.request_stop("shutdown requested")
        return Outcome("ok", {"stopping": True}, replayed=stored is not None)

    # -- jobs ----------------------------------------------------------------------------------

    def start_job(self, msg: Message, peer: Peer) -> Outcome:
        h, b = msg.header, msg.body
        assert h.session is not None and h.idempotency_key is not None
        if b["kind"] == "finetune":
            served = self.registry.get(b.get("backbone"))
            backbone = served.name
            active = self.book.get(served.checkpoint) if served.checkpoint else None
            if b["lora_rank"] > 0 and active is not None and active.kind == "adapter":
                raise ProtocolError(
                    ErrorCode.INVALID_FIELD,
                    f"body.lora_rank: {backbone!r} serves adapter {active.name!r}; a new adapter "
                    "trains on full weights: roll back or activate a full checkpoint first, or "
                    "fine-tune the weights (lora_rank 0)",
                    field="body.lora_rank",
                )
        else:
            if b.get("backbone") is not None or b["lora_rank"]:
                raise ProtocolError(
                    ErrorCode.INVALID_FIELD,
                    "body.backbone: spl_refine refines the reward model; omit backbone and "
                    "lora_rank",
                    field="body.backbone",
                )
            backbone = REWARD
        params = JobParams(
            kind=b["kind"],
            budget=b["budget"],
            backbone=backbone,
            method=(b.get("method") or "easytune") if b["kind"] == "finetune" else None,
            lora_rank=b["lora_rank"],
            anchor=b["anchor"],
            checkpoint_name=b.get("checkpoint_name"),
            activate=b["activate"],
        )

        def queue() -> StoredReply:
            name = params.checkpoint_name
            if name is not None and (
                self.book.get(name) is not None or name in self.jobs.names_reserved()
            ):
                raise ProtocolError(
                    ErrorCode.CONFLICT,
                    f"body.checkpoint_name: {name!r} is taken by a checkpoint or a queued job; "
                    "pick another name or omit it",
                    field="body.checkpoint_name",
                )
            job = self.jobs.insert(f"job-{new_id()}", params)
            return StoredReply("ok", {"job": job.record()})

        digest = body_digest(msg.type, b)
        out, replayed = self.store.idempotent(h.session, h.idempotency_key, msg.type, digest, queue)
        if not replayed:
            self.runner.notify()
        return Outcome(out.status, out.body, replayed)

    def job_status(self, msg: Message, peer: Peer) -> Outcome:
        job_id = msg.body.get("job_id")
        if job_id is not None:
            return Outcome("ok", {"jobs": [self.jobs.require(job_id).record()]})
        return Outcome("ok", {"jobs": [j.record() for j in self.jobs.recent(msg.body["limit"])]})

    def cancel_job(self, msg: Message, peer: Peer) -> Outcome:
        h = msg.header
        assert h.session is not None and h.idempotency_key is not None
        digest = body_digest(msg.type, msg.body)
        stored = self.store.stored_reply(h.session, h.idempotency_key, msg.type, digest)
        if stored is not None:
            return Outcome(stored.status, stored.body, replayed=True)
        job = self.jobs.request_cancel(msg.body["job_id"])  # cancelling is itself idempotent
        if job.state == "cancelling":
            self.runner.cancel(job.job_id)
        body = {"job": job.record()}
        self.store.save_reply(
            h.session, h.idempotency_key, msg.type, digest, StoredReply("ok", body)
        )
        return Outcome("ok", body)

    # -- checkpoints ---------------------------------------------------------------------------

    def list_checkpoints(self, msg: Message, peer: Peer) -> Outcome:
        backbone = msg.body.get("backbone")
        if backbone is not None and backbone != REWARD:
            self.registry.get(backbone)
        active: dict[str, str | None] = {}
        records = []
        for c in self.book.list(backbone)[:MAX_PAGE]:
            if c.backbone not in active:
                active[c.backbone] = self.book.active(c.backbone)
            records.append(c.record(active[c.backbone] == c.name))
        return Outcome("ok", {"checkpoints": records})

    def _switch(self, msg: Message, work: Callable[[], dict[str, Any]]) -> Outcome:
        """An activation change, stored with its reply in one transaction, then announced."""
        h = msg.header
        assert h.session is not None and h.idempotency_key is not None
        digest = body_digest(msg.type, msg.body)
        out, replayed = self.store.idempotent(
            h.session, h.idempotency_key, msg.type, digest, lambda: StoredReply("ok", work())
        )
        if not replayed:
            self.publish("checkpoint_activated", dict(out.body))
        return Outcome(out.status, out.body, replayed)

    def activate_checkpoint(self, msg: Message, peer: Peer) -> Outcome:
        def work() -> dict[str, Any]:
            backbone, previous = self.registry.activate(self.book, msg.body["name"])
            body = {"backbone": backbone, "active": msg.body["name"]}
            return body | ({"previous": previous} if previous is not None else {})

        return self._switch(msg, work)

    def rollback(self, msg: Message, peer: Peer) -> Outcome:
        def work() -> dict[str, Any]:
            backbone = msg.body.get("backbone") or self.registry.default
            active, undone = self.registry.rollback(self.book, backbone)
            body: dict[str, Any] = {"backbone": backbone}
            if active is not None:
                body["active"] = active
            if undone is not None:
                body["previous"] = undone
            return body

        return self._switch(msg, work)
