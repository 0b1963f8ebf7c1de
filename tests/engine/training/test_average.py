"""python -m easytune_engine.training.average: the weighted mean of runs of one network."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from easytune_engine.models.io import load_backbone, save_backbone
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.text.encoder import load_text_encoder
from easytune_engine.training import average
from easytune_engine.training.average import average_runs

MODEL = "model.safetensors"


def shifted(run: Path, out: Path, prefix: str, by: float, extra: dict | None = None) -> Path:
    """A copy of `run`'s model with `by` added to every float weight named `prefix`... (and
    `extra` merged into its metadata)"""
    model = load_backbone(run / MODEL)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(prefix):
                p.add_(by)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_backbone(out, model, dict(model.checkpoint_extra) | (extra or {}))
    return out


def test_metadata_the_parents_disagree_on_stays_with_each_parent(lcm_run: Path, tmp_path: Path):
    """Two fine-tunes of one base: their shared base describes the average; each one's own
    settings do not (None at the top), and are kept in that parent's entry."""
    base = {"finetuned_from": {"sha256": "ab" * 32}, "finetune_trajectories": 400}
    a = shifted(
        lcm_run, tmp_path / "a" / MODEL, "denoiser.", 0.5, base | {"finetune": {"steps": 4}}
    )
    b = shifted(
        lcm_run, tmp_path / "b" / MODEL, "denoiser.", 1.0, base | {"finetune": {"steps": 2}}
    )
    extra = load_backbone(
        average_runs([a, b], [0.5, 0.5], tmp_path / "avg" / MODEL)
    ).checkpoint_extra
    assert extra["finetuned_from"] == base["finetuned_from"]
    assert extra["finetune_trajectories"] == 400 and extra["corpus"] is not None
    assert extra["finetune"] is None
    parents = extra["averaged_from"]
    assert [p["differs"] for p in parents] == [
        {"finetune": {"steps": 4}},
        {"finetune": {"steps": 2}},
    ]
    assert extra["reproduce"].startswith("python -m easytune_engine.training.average")


def test_average_is_the_weighted_mean_of_the_denoisers_and_samples(lcm_run: Path, tmp_path: Path):
    """Denoiser weights: 0.25 A + 0.75 B exactly (B = A + 1); the shared VAE and statistics stay
    as they are; the result loads, samples finite motion, and records where it came from."""
    a = lcm_run / MODEL
    b = shifted(lcm_run, tmp_path / "b" / MODEL, "denoiser.", 1.0)
    out = average_runs([a, b], [0.25, 0.75], tmp_path / "avg" / MODEL)
    mixed, first = load_backbone(out), load_backbone(a)
    ref, got = first.state_dict(), mixed.state_dict()
    for name, value in ref.items():
        if name.startswith("denoiser.") and value.is_floating_point():
            torch.testing.assert_close(got[name], value + 0.75, rtol=0, atol=1e-6)
        else:
            assert torch.equal(got[name], value), name
    parents = mixed.checkpoint_extra["averaged_from"]
    assert [p["weight"] for p in parents] == [0.25, 0.75]
    assert parents[0]["sha256"] == first.checkpoint_sha256
    assert "--weights 0.25 0.75" in mixed.checkpoint_extra["reproduce"]
    motion = MotionGenerator(mixed, load_text_encoder()).generate(["a person walks"], [40], seed=0)
    assert motion.features[0].shape == (40, 263) and np.isfinite(motion.features[0]).all()


def test_equal_weights_from_the_command_line(lcm_run: Path, tmp_path: Path, monkeypatch, capsys):
    b = shifted(lcm_run, tmp_path / "b" / MODEL, "denoiser.", 2.0)
    argv = ["average", str(lcm_run), str(b.parent), "--out", str(tmp_path / "avg")]
    monkeypatch.setattr(sys, "argv", argv)
    average.main()
    assert str(tmp_path / "avg" / MODEL) in capsys.readouterr().out
    got = load_backbone(tmp_path / "avg" / MODEL).state_dict()
    ref = load_backbone(lcm_run / MODEL).state_dict()
    name = next(k for k in ref if k.startswith("denoiser.") and ref[k].is_floating_point())
    torch.testing.assert_close(got[name], ref[name] + 1.0, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([0.5, 0.6], "sum to 1"),
        ([1.5, -0.5], ">= 0"),
        ([float("nan"), 1.0], ">= 0"),
        ([1.0], "one per run"),
    ],
)
def test_bad_weights_are_refused(lcm_run: Path, tmp_path: Path, weights, message: str):
    out = tmp_path / "avg" / MODEL
    with pytest.raises(ValueError, match=message):
        average_runs([lcm_run / MODEL, lcm_run / MODEL], weights, out)
    assert not out.exists()


def test_runs_that_cannot_be_averaged_are_named(
    lcm_run: Path, mdm_run: Path, tmp_path: Path
) -> None:
    """Another VAE (its denoiser learned another latent space), another network, a single run:
    refused with the reason, nothing written."""
    out = tmp_path / "avg" / MODEL
    other_vae = shifted(lcm_run, tmp_path / "v" / MODEL, "vae.", 0.01)
    with pytest.raises(ValueError, match="its VAE differs"):
        average_runs([lcm_run / MODEL, other_vae], [0.5, 0.5], out)
    with pytest.raises(ValueError, match="another network"):
        average_runs([lcm_run / MODEL, mdm_run / MODEL], [0.5, 0.5], out)
    with pytest.raises(ValueError, match="at least two runs"):
        average_runs([lcm_run / MODEL], [1.0], out)
    assert not out.exists()
