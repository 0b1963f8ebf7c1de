"""A fine-tuning run on disk (`finetune/run.py`): a stopped run resumes to the same weights as an
uninterrupted one, and the fine-tuned checkpoint says where it came from and how it was made."""

from __future__ import annotations

from pathlib import Path

import torch

from easytune_engine.finetune.run import run_finetune
from easytune_engine.finetune.trainer import FinetuneConfig, Finetuner, PromptPool
from easytune_engine.models import MLD, MLDConfig, VAEConfig
from easytune_engine.models.io import load_backbone, save_backbone
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.reward.model import load_reward_model
from easytune_engine.text.encoder import load_text_encoder

POOL = PromptPool(("a person jumps", "a person waves", "someone walks forward"), (40, 36, 44))
CONFIG = FinetuneConfig(trajectories=4, batch_size=2, lr=1e-3, warmup=1, seed=3)
BASE_LINEAGE = {
    "reproduce": "easytune-engine train --backbone mld --preset tiny",
    "averaged_from": [{"weight": 1.0, "sha256": "ab" * 32, "reproduce": "x"}],
}


def _base(tmp_path: Path) -> Path:
    """A tiny MLD checkpoint on disk, with a lineage of its own."""
    torch.manual_seed(0)
    vae = VAEConfig(width=32, enc_layers=1, dec_layers=1, latent_tokens=2, latent_dim=8)
    width = load_text_encoder().width
    model = MLD(MLDConfig(vae=vae, width=32, layers=1, heads=4, text_dim=width, steps=4))
    path = tmp_path / "base.safetensors"
    save_backbone(path, model.eval(), {"corpus": {"name": "tiny"}} | BASE_LINEAGE)
    return path


def _tuner(base: Path) -> Finetuner:
    gen = MotionGenerator(load_backbone(base), load_text_encoder())
    return Finetuner(gen, load_reward_model(), CONFIG, POOL)


def test_a_stopped_run_resumes_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    base = _base(tmp_path)
    whole = run_finetune(_tuner(base), tmp_path / "whole")
    assert (whole.stopped, whole.trajectories) == ("done", 4)

    asked = iter([False, False, True])  # stop before the third trajectory
    part = run_finetune(_tuner(base), tmp_path / "split", should_stop=lambda: next(asked))
    assert (part.stopped, part.trajectories) == ("cancelled", 2)
    rest = run_finetune(_tuner(base), tmp_path / "split", resume=True)
    assert (rest.stopped, rest.trajectories, rest.updates) == ("done", 4, whole.updates)

    a, b = load_backbone(whole.model_path), load_backbone(rest.model_path)
    changed = False
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-6, msg=name)
    for x, y in zip(
        a.state_dict().values(), load_backbone(base).state_dict().values(), strict=True
    ):
        changed |= not torch.equal(x, y)
    assert changed, "the run did not change the weights"
    assert [h["reward"] for h in rest.history] == [h["reward"] for h in whole.history]


def test_the_tuned_checkpoint_records_its_base_and_command(tmp_path: Path) -> None:
    base = _base(tmp_path)
    command = "easytune-engine finetune --model base.safetensors --steps 4 --out run"
    result = run_finetune(_tuner(base), tmp_path / "run", command=command)
    extra = load_backbone(result.model_path).checkpoint_extra
    # the run's own command, not the base's; the base's lineage kept under finetuned_from
    assert extra["reproduce"] == command
    assert extra["finetuned_from"] == {"sha256": load_backbone(base).checkpoint_sha256} | (
        BASE_LINEAGE
    )
    assert "averaged_from" not in extra  # that describes the base, not this model
    assert extra["finetune"]["trajectories"] == 4 and extra["finetune_trajectories"] == 4
    assert extra["corpus"] == {"name": "tiny"}

    # a run without a command (a server job) claims none rather than the base's
    quiet = run_finetune(_tuner(result.model_path), tmp_path / "again")
    again = load_backbone(quiet.model_path).checkpoint_extra
    assert again["reproduce"] is None
    assert again["finetuned_from"]["reproduce"] == command
    assert again["finetuned_from"]["finetuned_from"]["reproduce"] == BASE_LINEAGE["reproduce"]
