"""Checkpoints: weights + typed config + metadata in one safetensors file, written atomically.

A checkpoint is a single `.safetensors` file. Its metadata holds the component `kind`, the config
dataclass as JSON, a format version, free-form `extra` JSON (normalisation stats names, corpus
version, metrics) and a SHA-256 of the tensor payload. Loading checks all of it and never unpickles:
a truncated, corrupted or mismatched file is refused with a message naming the problem, and nothing
is half-loaded into a model (the state dict is validated before `load_state_dict`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .fileio import atomic_write

FORMAT_VERSION = 1
C = TypeVar("C")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message says which file and why."""


def _payload_hash(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(
    path: Path,
    kind: str,
    config: Any,
    state: dict[str, torch.Tensor],
    extra: dict | None = None,
    dtype: torch.dtype | None = None,
) -> str:
    """Save `state` (a state dict) with its config dataclass; returns the payload hash.

    dtype: store floating tensors in this dtype (e.g. torch.float16 for shipped weights).
    """
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    tensors = {}
    for name, t in state.items():
        t = t.detach().cpu().contiguous()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        tensors[name] = t
    digest = _payload_hash(tensors)
    metadata = {
        "format_version": str(FORMAT_VERSION),
        "kind": kind,
        "config_class": type(config).__name__,
        "config": json.dumps(dataclasses.asdict(config)),
        "extra": json.dumps(extra or {}),
        "sha256": digest,
    }
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return digest


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A loaded and verified checkpoint."""

    path: Path
    kind: str
    config: dict  # the config dataclass's fields
    state: dict[str, torch.Tensor]
    extra: dict
    sha256: str

    def config_as(self, cls: type[C]) -> C:
        """Rebuild the typed config; unknown or missing fields are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(self.config) - names
        if unknown:
            raise CheckpointError(
                f"{self.path}: config has fields {sorted(unknown)} unknown to {cls.__name__}"
            )
        try:
            return cls(**self.config)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(
                f"{self.path}: config does not fit {cls.__name__}: {exc}"
            ) from exc


def load_checkpoint(path: Path, kind: str, device: str | torch.device = "cpu") -> Checkpoint:
    """Load and verify a checkpoint of component `kind`; CheckpointError names any problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        state = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})") from exc
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise CheckpointError(
            f"{path}: checkpoint format {metadata.get('format_version')!r} is not supported "
            f"(expected {FORMAT_VERSION})"
        )
    if metadata.get("kind") != kind:
        raise CheckpointError(
            f"{path}: holds a {metadata.get('kind')!r} checkpoint, expected {kind!r}"
        )
    digest = _payload_hash(state)
    if digest != metadata.get("sha256"):
        raise CheckpointError(
            f"{path}: content hash mismatch: the file is corrupted or was modified"
        )
    try:
        config = json.loads(metadata["config"])
        extra = json.loads(metadata.get("extra", "{}"))
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable config metadata ({exc})") from exc
    return Checkpoint(path, kind, config, state, extra, digest)


def load_state_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Copy `state` into `module` only if every name and shape matches; otherwise change nothing."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}")
        if wrong:
            parts.append(
                "wrong shapes "
                + ", ".join(
                    f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in wrong[:5]
                )
            )
        raise CheckpointError(f"{path}: weights do not fit the model: {'; '.join(parts)}")
    cast = {k: v.to(own[k].dtype) for k, v in state.items()}
    module.load_state_dict(cast, strict=True)
