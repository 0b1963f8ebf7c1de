"""One manifest writer: common fields, atomic write, and the shipped manifests still match it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from safetensors import safe_open

from easytune_engine.manifest import attach_metrics, build_manifest, manifest_path, save_manifest
from easytune_engine.models.io import WEIGHTS_DIR

COMMON = ["file", "kind", "bytes", "file_sha256", "payload_sha256", "parameters", "config"]


def _build(weights: Path, **fields) -> dict:
    return build_manifest(
        weights,
        kind="demo",
        payload_sha256="abc",
        config={"width": 4},
        parameters=12,
        reproduce="make it",
        metrics=None,
        fields=fields,
    )


def test_build_save_and_attach_metrics(tmp_path: Path) -> None:
    weights = tmp_path / "demo.safetensors"
    weights.write_bytes(b"12345")
    record = _build(weights, corpus={"version": 2})
    assert list(record) == [*COMMON, "corpus", "reproduce", "metrics"]
    assert record["file"] == "demo.safetensors" and record["bytes"] == 5
    assert record["file_sha256"] == hashlib.sha256(b"12345").hexdigest()
    path = save_manifest(manifest_path(weights), record)
    assert path == tmp_path / "demo.manifest.json"
    attach_metrics(path, {"R@1": 0.5})
    assert json.loads(path.read_text()) == record | {"metrics": {"R@1": 0.5}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.manifest.json", "demo.safetensors"]


def test_fields_may_not_shadow_common_ones(tmp_path: Path) -> None:
    weights = tmp_path / "demo.safetensors"
    weights.write_bytes(b"x")
    with pytest.raises(ValueError, match="reproduce"):
        _build(weights, reproduce="other")


@pytest.mark.parametrize("manifest", sorted(WEIGHTS_DIR.glob("*.manifest.json")), ids=str)
def test_shipped_manifests_have_the_common_fields(manifest: Path) -> None:
    record = json.loads(manifest.read_text())
    assert {*COMMON, "reproduce", "metrics"} <= set(record)
    weights = manifest.with_name(record["file"])
    assert manifest_path(weights) == manifest
    assert record["bytes"] == weights.stat().st_size
    assert record["file_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    with safe_open(str(weights), framework="pt") as f:
        assert record["payload_sha256"] == f.metadata()["sha256"]


def test_reward_writer_reproduces_the_shipped_manifest(tmp_path: Path) -> None:
    from easytune_engine.reward.cli import write_manifest

    shipped = json.loads((WEIGHTS_DIR / "reward_tmr.manifest.json").read_text())
    weights = tmp_path / "reward_tmr.safetensors"
    shutil.copyfile(WEIGHTS_DIR / "reward_tmr.safetensors", weights)
    hand_added = {k: shipped[k] for k in ("notes", "metrics_fp16", "benchmark")}
    written = json.loads(write_manifest(weights, shipped["reproduce"], hand_added).read_text())
    assert written == shipped


def test_evaluator_writer_reproduces_the_shipped_manifest(tmp_path: Path) -> None:
    from easytune_engine.eval.train import write_manifest

    shipped = json.loads((WEIGHTS_DIR / "evaluator.manifest.json").read_text())
    out = tmp_path / "evaluator.manifest.json"
    record = write_manifest(
        WEIGHTS_DIR / "evaluator.safetensors", out, shipped["metrics"], shipped["reproduce"]
    )
    assert json.loads(out.read_text()) == record
    hand_added = ("corpus", "reproducibility", "benchmark")
    assert record == {k: v for k, v in shipped.items() if k not in hand_added}
