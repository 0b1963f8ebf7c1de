"""Checkpoints: round trip, atomic, refused when corrupted or mismatched, never half-loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from easytune_engine.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state_strict,
    save_checkpoint,
)


@dataclass(frozen=True)
class TinyConfig:
    width: int = 4
    depth: int = 2


def _model(width: int = 4) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.Linear(width, 2))


def test_round_trip_restores_weights_config_and_extra(tmp_path: Path) -> None:
    model = _model()
    path = tmp_path / "m.safetensors"
    digest = save_checkpoint(path, "tiny", TinyConfig(), model.state_dict(), extra={"corpus": 1})
    ckpt = load_checkpoint(path, "tiny")
    assert ckpt.sha256 == digest
    assert ckpt.config_as(TinyConfig) == TinyConfig()
    assert ckpt.extra == {"corpus": 1}
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    load_state_strict(fresh, ckpt.state, path)
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not list(tmp_path.glob(".m.safetensors.*")), "temp file left behind"


def test_fp16_storage_loads_into_fp32_model(tmp_path: Path) -> None:
    model = _model()
    path = tmp_path / "h.safetensors"
    save_checkpoint(path, "tiny", TinyConfig(), model.state_dict(), dtype=torch.float16)
    ckpt = load_checkpoint(path, "tiny")
    assert all(t.dtype == torch.float16 for t in ckpt.state.values())
    fresh = _model()
    load_state_strict(fresh, ckpt.state, path)
    w = fresh.state_dict()["0.weight"]
    assert w.dtype == torch.float32
    assert torch.allclose(w, model.state_dict()["0.weight"], atol=1e-3)


def test_truncated_and_modified_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, "tiny", TinyConfig(), _model().state_dict())
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors: not a readable"):
        load_checkpoint(tmp_path / "cut.safetensors", "tiny")
    flipped = bytearray(data)
    flipped[-3] ^= 0xFF  # a byte inside the last tensor's data
    (tmp_path / "flip.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="content hash mismatch"):
        load_checkpoint(tmp_path / "flip.safetensors", "tiny")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.safetensors", "tiny")
    with pytest.raises(CheckpointError, match="holds a 'tiny' checkpoint, expected 'reward'"):
        load_checkpoint(path, "reward")


def test_mismatched_shapes_leave_the_model_untouched(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, "tiny", TinyConfig(width=4), _model(4).state_dict())
    wide = _model(8)
    before = {k: v.clone() for k, v in wide.state_dict().items()}
    with pytest.raises(CheckpointError, match="wrong shapes"):
        load_state_strict(wide, load_checkpoint(path, "tiny").state, path)
    for k, v in wide.state_dict().items():
        assert torch.equal(v, before[k])


def test_config_with_unknown_fields_is_refused(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Other:
        width: int = 4

    path = tmp_path / "m.safetensors"
    save_checkpoint(path, "tiny", TinyConfig(), _model().state_dict())
    with pytest.raises(CheckpointError, match="unknown to Other"):
        load_checkpoint(path, "tiny").config_as(Other)
