"""The comparison harness: the LoRA row trains only the adapters (the base weights stay as they
were), writes an adapter file far smaller than the full checkpoint and counts what it trains; the
reward target's base is the untuned model's reward on the very trajectories the methods see."""

from __future__ import annotations

import math
import re
from dataclasses import asdict

import pytest
import torch

from easytune_engine.finetune.compare import (
    ALL_METHODS,
    LORA_SET,
    METHOD_SET,
    CompareConfig,
    base_reward,
    method_spec,
    table,
    train_method,
)
from easytune_engine.finetune.lora import adapter_state
from easytune_engine.finetune.methods import MethodConfig
from easytune_engine.finetune.trainer import FinetuneConfig, Finetuner, PromptPool
from easytune_engine.models import MLD, MLDConfig, VAEConfig
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.reward.model import load_reward_model
from easytune_engine.text.encoder import load_text_encoder

POOL = PromptPool(("a person jumps", "a person waves"), (40, 36))
TINY = CompareConfig(trajectories=1, batch_size=2, lr=1e-3)


def _tiny_generator() -> MotionGenerator:
    torch.manual_seed(0)
    enc = load_text_encoder()
    vae = VAEConfig(width=32, enc_layers=1, dec_layers=1, latent_tokens=2, latent_dim=8)
    cfg = MLDConfig(vae=vae, width=64, layers=1, heads=4, text_dim=enc.width, steps=4)
    return MotionGenerator(MLD(cfg).eval(), enc)


def test_method_names() -> None:
    """The LoRA rows reuse an existing method's settings; METHOD_SET itself is unchanged."""
    assert set(METHOD_SET) <= set(ALL_METHODS) and set(LORA_SET) <= set(ALL_METHODS)
    assert method_spec("EasyTune-step LoRA-8") == (METHOD_SET["EasyTune-step"], 8)
    assert method_spec("DRaFT-50") == (METHOD_SET["DRaFT-50"], 0)
    with pytest.raises(KeyError):
        method_spec("nope")


def test_lora_row_trains_only_adapters_and_writes_a_small_file() -> None:
    reward = load_reward_model()
    gen = _tiny_generator()
    base = {k: v.clone() for k, v in gen.backbone.state_dict().items()}
    row, gen = train_method("EasyTune-step LoRA-8", TINY, reward, POOL, math.inf, gen=gen)
    adapters = adapter_state(gen.backbone)
    assert row.lora_rank == 8 and row.updates > 0
    assert row.trainable_params == sum(v.numel() for v in adapters.values())
    assert any(v.abs().sum() > 0 for k, v in adapters.items() if "lora_B" in k)  # it trained
    after = {  # the base weights, wrapped by LoRA as `<owner>.parametrizations.<name>.original`
        re.sub(r"parametrizations\.(\w+)\.original$", r"\1", k): v
        for k, v in gen.backbone.state_dict().items()
        if "lora_" not in k
    }
    assert after.keys() == base.keys()
    for k, v in base.items():
        torch.testing.assert_close(after[k], v, rtol=0, atol=0)
    assert row.artifact == "adapter.safetensors"

    full, _ = train_method("EasyTune-step", TINY, reward, POOL, math.inf, gen=_tiny_generator())
    assert full.lora_rank == 0 and full.artifact == "model.safetensors"
    assert row.trainable_params < full.trainable_params / 2
    assert row.artifact_bytes < full.artifact_bytes / 4
    text = table({"equal_trajectories": {"full": asdict(full), "lora": asdict(row)}})
    assert "| lora |" in text and f"{row.trainable_params:,}" in text


def test_base_reward_replays_the_training_stream() -> None:
    """An untrained model's first trajectories score exactly the base the target builds on."""
    reward = load_reward_model()
    c = CompareConfig(trajectories=8, batch_size=2)  # base_reward: max(2, 8 // 4) = 2 batches
    base = base_reward(_tiny_generator(), reward, POOL, c)
    cfg = FinetuneConfig(MethodConfig("draft", k=1), trajectories=2, batch_size=2, lr=1e-30)
    tuner = Finetuner(_tiny_generator(), reward, cfg, POOL)
    first = [tuner.step()[0].reward for _ in range(2)]  # lr 1e-30: the weights do not move
    assert sum(first) / 2 == pytest.approx(base, abs=1e-5)
