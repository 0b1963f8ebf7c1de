"""The JSON manifest shipped beside a weights file: what it is, how it was made, how well it does.

Every manifest has the same common fields, written here; each component adds its own (corpus,
dtype, training details, ...) through `fields`:

    file            the weights file's name (the manifest sits beside it)
    kind            the component ("reward", "t2m_evaluator", "backbone/mld", ...)
    bytes           the file's size
    file_sha256     SHA-256 of the file's bytes
    payload_sha256  the tensor-payload hash stored in the checkpoint (see `checkpoint.py`)
    parameters      the number of model parameters
    config          the component's config dataclass, as a dict
    reproduce       the command that rebuilds the weights
    metrics         measured quality (may be attached later with `attach_metrics`)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .fileio import atomic_write_bytes

SUFFIX = ".manifest.json"


def manifest_path(weights: Path) -> Path:
    """`<dir>/<name>.manifest.json` for the weights file `<dir>/<name>.safetensors`."""
    weights = Path(weights)
    return weights.with_name(weights.stem + SUFFIX)


def build_manifest(
    weights: Path,
    *,
    kind: str,
    payload_sha256: str,
    config: dict[str, Any],
    parameters: int,
    reproduce: str | None,
    metrics: dict | None,
    fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of `weights`: the common fields, then the component's own `fields`."""
    weights = Path(weights)
    record: dict[str, Any] = {
        "file": weights.name,
        "kind": kind,
        "bytes": weights.stat().st_size,
        "file_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "payload_sha256": payload_sha256,
        "parameters": int(parameters),
        "config": config,
    }
    clash = sorted(set(fields or {}) & (set(record) | {"reproduce", "metrics"}))
    if clash:
        raise ValueError(f"fields {clash} are common manifest fields; pass them as arguments")
    return record | (fields or {}) | {"reproduce": reproduce, "metrics": metrics}


def save_manifest(path: Path, manifest: dict[str, Any]) -> Path:
    """Write `manifest` as indented JSON to `path`, atomically; returns `path`."""
    path = Path(path)
    atomic_write_bytes(path, (json.dumps(manifest, indent=2) + "\n").encode())
    return path


def attach_metrics(path: Path, metrics: dict) -> Path:
    """Replace the metrics of the manifest at `path` (after benchmarking the shipped weights)."""
    manifest = json.loads(Path(path).read_text())
    manifest["metrics"] = metrics
    return save_manifest(path, manifest)
