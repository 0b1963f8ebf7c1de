"""The anchor (`MethodConfig.anchor_weight`, `finetune --anchor`): each EasyTune step's x̂0 is pulled
toward the frozen base model's x̂0 from the same input, the guard against a reward that can be
gamed (on the shipped MDM the plain fine-tune adds root travel, turns and hops the reward does
not see; README)."""

from __future__ import annotations

import pytest
import torch

from easytune_engine.finetune.methods import MethodConfig
from easytune_engine.finetune.trainer import FinetuneConfig, Finetuner, PromptPool
from easytune_engine.models import MDM, MLD, MDMConfig, MLDConfig, VAEConfig
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.reward.model import load_reward_model
from easytune_engine.text.encoder import load_text_encoder

POOL = PromptPool(("a person jumps", "a person waves", "someone walks forward"), (40, 36, 44))


def _generator(kind: str) -> MotionGenerator:
    torch.manual_seed(0)
    enc = load_text_encoder()
    if kind == "mdm":
        model = MDM(MDMConfig(width=32, layers=1, heads=4, text_dim=enc.width, steps=5))
    else:
        vae = VAEConfig(width=32, enc_layers=1, dec_layers=1, latent_tokens=2, latent_dim=8)
        model = MLD(MLDConfig(vae=vae, width=32, layers=1, heads=4, text_dim=enc.width, steps=5))
    return MotionGenerator(model.eval(), enc)


def _tune(kind: str, anchor: float, reward_scale: float = 1.0) -> tuple[dict, MotionGenerator]:
    gen = _generator(kind)
    base = {k: v.clone() for k, v in gen.backbone.state_dict().items()}
    method = MethodConfig(window=0, reward_scale=reward_scale, anchor_weight=anchor)
    config = FinetuneConfig(method=method, trajectories=3, batch_size=2, lr=3e-3, warmup=1)
    for _ in Finetuner(gen, load_reward_model(), config, POOL).run():
        pass
    return base, gen


def _x0_drift(gen: MotionGenerator, base: dict) -> float:
    """Mean squared difference of generated x0 between the tuned and the base weights."""
    tuned = gen.generate(["a person jumps", "someone walks forward"], [40, 44], seed=1).features
    gen.backbone.load_state_dict(base)
    ref = gen.generate(["a person jumps", "someone walks forward"], [40, 44], seed=1).features
    return sum(float(((a - b) ** 2).mean()) for a, b in zip(tuned, ref, strict=True))


@pytest.mark.parametrize("kind", ["mdm", "mld"])
def test_the_anchor_alone_keeps_the_base_exactly(kind: str) -> None:
    """With no reward the anchor's gradient is zero at the base, so nothing moves."""
    base, gen = _tune(kind, anchor=1.0, reward_scale=0.0)
    for name, value in gen.backbone.state_dict().items():
        assert torch.equal(value, base[name]), name


@pytest.mark.parametrize("kind", ["mdm", "mld"])
def test_the_anchor_holds_the_motion_near_the_base(kind: str) -> None:
    free_base, free = _tune(kind, anchor=0.0)
    held_base, held = _tune(kind, anchor=1e4)
    free_drift, held_drift = _x0_drift(free, free_base), _x0_drift(held, held_base)
    assert free_drift > 0
    assert held_drift < 0.5 * free_drift, (held_drift, free_drift)


def test_bad_anchors_are_refused() -> None:
    with pytest.raises(ValueError, match="anchor_weight must be >= 0"):
        MethodConfig(anchor_weight=-1.0)
    with pytest.raises(ValueError, match="anchor_weight must be >= 0"):
        MethodConfig(anchor_weight=float("nan"))
    with pytest.raises(ValueError, match=r"step-aware methods .* not 'draft'"):
        MethodConfig(name="draft", anchor_weight=1.0)
