"""One realistic body per message (request and reply, or event), used by PROTOCOL.md and tests.

    bodies = examples()["generate"]      # Example(request={...}, reply={...})

Arrays are made here (deterministic, from a seed) so every example encodes; the document shows
their wire form (``["float32", [T, 22, 3], frame]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .catalogue import FPS, JOINT_NAMES, JOINT_PARENTS, MAX_CANDIDATES, MAX_FRAMES, MAX_PROMPT_CHARS
from .codec import MAX_FRAMES as MAX_FRAMES_PER_MESSAGE
from .codec import MAX_MESSAGE_BYTES
from .version import PROTOCOL_VERSION

SHA = "9f2c" * 16


@dataclass(frozen=True)
class Example:
    request: dict[str, Any]  # the request body, or the event body
    reply: dict[str, Any] | None = None  # None for events


def clip(clip_id: str, frames: int, seed: int = 0) -> dict[str, Any]:
    """A generate-reply clip with plausible arrays (T = frames)."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(frames, 22, 4)).astype(np.float32)
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return {
        "clip_id": clip_id,
        "frames": frames,
        "joints": rng.normal(size=(frames, 22, 3)).astype(np.float32),
        "rotations": q,
        "root_translation": rng.normal(size=(frames, 3)).astype(np.float32),
        "foot_contacts": (rng.random((frames, 4)) < 0.5).astype(np.uint8),
    }


def _model(name: str, kind: str, sampler: str, steps: int) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "sampler": sampler,
        "steps": steps,
        "max_steps": 1000 if kind != "lcm" else 50,
        "guidance": 2.5 if kind != "lcm" else 0.0,
        "checkpoint": "mld-ft-0003" if name == "mld" else None,
        "adapters": ["mld-lora-jumps"] if name == "mld" else [],
        "precision": "fp32",
    }


def _job(state: str, step: int, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": "job-0007",
        "kind": "finetune",
        "method": "easytune",
        "state": state,
        "step": step,
        "total": 200,
        "progress": step / 200,
        "metrics": {"reward": 0.412, "loss": -0.398},
        "created": 1764150000.0,
        "started": 1764150002.5 if state != "queued" else None,
        **extra,
    }


def _job_event(state: str, step: int) -> dict[str, Any]:
    j = _job(state, step)
    return {k: j[k] for k in ("job_id", "kind", "state", "step", "total", "progress", "metrics")}


def examples() -> dict[str, Example]:
    """Example bodies for every request (with its ok reply) and every event."""
    prompt = "a person jumps forward twice"
    ranking = {
        "ranking_id": 12,
        "prompt": prompt,
        "ranked": ["clip-8f3a01", "clip-8f3a03"],
        "rejected": ["clip-8f3a02"],
        "created": 1764150100.25,
    }
    features = np.random.default_rng(3).normal(size=(60, 263)).astype(np.float32)
    models = [_model("mld", "mld", "ddim", 50), _model("lcm", "lcm", "lcm", 4)]
    return {
        "hello": Example(
            {"client": "easytune-blender 0.1.0"},
            {
                "protocol_version": PROTOCOL_VERSION,
                "engine_version": "0.1.0",
                "engine_session": "5b1d0c7e9a2f4e6b8c3d2a1f0e9d8c7b",
                "capabilities": ["generate", "rankings", "finetune", "spl_refine", "events"],
                "models": models,
                "device": "cuda:0",
                "events": "tcp://127.0.0.1:5556",
                "fps": FPS,
                "joint_names": list(JOINT_NAMES),
                "joint_parents": list(JOINT_PARENTS),
                "limits": {
                    "max_message_bytes": MAX_MESSAGE_BYTES,
                    "max_frames_per_message": MAX_FRAMES_PER_MESSAGE,
                    "max_candidates": MAX_CANDIDATES,
                    "max_frames": MAX_FRAMES,
                    "max_prompt_chars": MAX_PROMPT_CHARS,
                },
            },
        ),
        "list_models": Example({}, {"models": models}),
        "generate": Example(
            {"prompt": prompt, "candidates": 2, "length": 120, "seed": 7, "guidance": 2.5},
            {
                "clips": [clip("clip-8f3a01", 120, 1), clip("clip-8f3a02", 120, 2)],
                "fps": FPS,
                "seed": 7,
                "sampler": "ddim",
                "steps": 50,
                "guidance": 2.5,
                "backbone": "mld",
                "checkpoint": "mld-ft-0003",
                "elapsed_ms": 41.7,
            },
        ),
        "submit_ranking": Example(
            {"prompt": prompt, "ranked": ranking["ranked"], "rejected": ranking["rejected"]},
            {"ranking_id": 12, "pairs": 3, "total_rankings": 12},
        ),
        "list_rankings": Example(
            {"after": 11, "limit": 100}, {"rankings": [ranking], "next_after": None, "total": 12}
        ),
        "export_rankings": Example(
            {"after": 11, "limit": 1},
            {
                "format": "easytune-rankings",
                "format_version": 1,
                "rankings": [ranking],
                "clips": [{"clip_id": "clip-8f3a01", "prompt": prompt, "features": features}],
                "next_after": 12,
            },
        ),
        "start_job": Example(
            {"kind": "finetune", "method": "easytune", "budget": 200, "lora_rank": 8},
            {"job": _job("queued", 0)},
        ),
        "job_status": Example({"job_id": "job-0007"}, {"jobs": [_job("running", 50)]}),
        "cancel_job": Example({"job_id": "job-0007"}, {"job": _job("cancelling", 51)}),
        "list_checkpoints": Example(
            {"backbone": "mld"},
            {
                "checkpoints": [
                    {
                        "name": "mld-ft-0003",
                        "backbone": "mld",
                        "kind": "adapter",
                        "parent": "mld",
                        "job_id": "job-0003",
                        "sha256": SHA,
                        "created": 1764140000.0,
                        "active": True,
                        "metrics": {"reward": 0.44},
                    }
                ]
            },
        ),
        "activate_checkpoint": Example(
            {"name": "mld-ft-0003"},
            {"backbone": "mld", "active": "mld-ft-0003", "previous": "mld-ft-0002"},
        ),
        "rollback": Example(
            {"backbone": "mld"},
            {"backbone": "mld", "active": "mld-ft-0002", "previous": "mld-ft-0003"},
        ),
        "health": Example(
            {},
            {
                "status": "ok",
                "uptime_s": 3600.5,
                "queued_requests": 0,
                "running_jobs": 1,
                "device": "cuda:0",
            },
        ),
        "shutdown": Example({}, {"stopping": True}),
        "job_started": Example(_job_event("running", 0)),
        "job_progress": Example(_job_event("running", 50)),
        "job_finished": Example(_job_event("finished", 200) | {"checkpoint": "mld-ft-0004"}),
        "checkpoint_activated": Example(
            {"backbone": "mld", "active": "mld-ft-0004", "previous": "mld-ft-0003"}
        ),
        "engine_stopping": Example({"reason": "shutdown requested"}),
    }
