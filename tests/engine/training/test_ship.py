"""Shipping a run (`training/ship.py`): fp16 weights only when they keep the motion, and a
manifest that carries the run's command and how its weights came from other weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from easytune_engine.models import MLD, MLDConfig, VAEConfig
from easytune_engine.models.io import load_backbone, save_backbone
from easytune_engine.text.encoder import load_text_encoder
from easytune_engine.training import ship

LINEAGE = {
    "reproduce": "easytune-engine finetune --model base.safetensors --steps 4 --out run",
    "finetuned_from": {"sha256": "cd" * 32, "reproduce": "easytune-engine train --backbone mld"},
    "finetune": {"trajectories": 4, "lr": 1e-5},
    "finetune_trajectories": 4,
    "merged_from": ["easytune-engine train --steps decoder=0", "easytune-engine train --steps x=0"],
    "init_lineage": {"reproduce": "easytune-engine train --backbone mld --preset refine"},
}


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(ship, "WEIGHTS_DIR", tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    torch.manual_seed(0)
    vae = VAEConfig(width=32, enc_layers=1, dec_layers=1, latent_tokens=2, latent_dim=8)
    width = load_text_encoder().width
    model = MLD(MLDConfig(vae=vae, width=32, layers=1, heads=4, text_dim=width, steps=4))
    path = tmp_path / "run" / "model.safetensors"
    path.parent.mkdir()
    save_backbone(path, model.eval(), {"corpus": {"name": "tiny"}} | LINEAGE)
    return path


def test_the_manifest_carries_the_command_and_lineage(run: Path, tmp_path: Path) -> None:
    out = ship.ship("mld", run, {"R@1": 0.5}, max_joint_error=1.0)
    manifest = json.loads((tmp_path / "weights" / "mld.manifest.json").read_text())
    assert manifest["reproduce"] == LINEAGE["reproduce"]
    assert manifest["finetuned_from"] == LINEAGE["finetuned_from"]
    assert manifest["finetune"] == LINEAGE["finetune"] and manifest["finetune_trajectories"] == 4
    assert manifest["merged_from"] == LINEAGE["merged_from"]
    assert manifest["init_lineage"] == LINEAGE["init_lineage"]
    assert manifest["metrics"] == {"R@1": 0.5}
    assert manifest["fp16_max_joint_error_m"] <= 1.0 and manifest["dtype"].startswith("float16")
    shipped = load_backbone(out)
    for (name, a), b in zip(
        shipped.state_dict().items(), load_backbone(run).state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3, msg=name)


def test_float32_ships_when_fp16_moves_the_motion(run: Path, tmp_path: Path) -> None:
    ship.ship("mld", run, None, max_joint_error=0.0)
    manifest = json.loads((tmp_path / "weights" / "mld.manifest.json").read_text())
    assert manifest["dtype"] == "float32" and manifest["fp16_max_joint_error_m"] > 0.0


def test_another_backbone_kind_is_refused(run: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="holds a mld backbone, not mdm"):
        ship.ship("mdm", run, None, max_joint_error=0.01)
    assert not list((tmp_path / "weights").iterdir())
