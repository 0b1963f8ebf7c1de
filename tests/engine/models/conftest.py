"""Shared fixtures: tiny, randomly initialised backbones (one per kind) and the shipped encoder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
import torch

from easytune_engine.diffusion.sampling import Conditioning
from easytune_engine.models import (
    Backbone,
    LCMConfig,
    MDMConfig,
    MLDConfig,
    VAEConfig,
    build_backbone,
)
from easytune_engine.motion.features import FEATURE_DIM
from easytune_engine.text.encoder import TextEncoder, load_text_encoder

TINY_VAE = VAEConfig(width=64, enc_layers=1, dec_layers=1, latent_tokens=2, latent_dim=16)
TINY_FRAMES_VAE = replace(TINY_VAE, latent_layout="frames", latent_dim=8)
TINY_CONFIGS = {
    "mdm": MDMConfig(width=64, layers=2, heads=4, text_dim=128),
    "mld": MLDConfig(vae=TINY_VAE, width=64, layers=3, text_dim=128),
    "lcm": LCMConfig(vae=TINY_VAE, width=64, layers=3, text_dim=128),
    # the same kinds on a VAE with one latent per 4 frames (VAEConfig.latent_layout), scaled
    # per latent channel (MLDConfig.latent_scale)
    "mld-frames": MLDConfig(
        vae=TINY_FRAMES_VAE, width=64, layers=3, text_dim=128, latent_scale="channel"
    ),
    "lcm-frames": LCMConfig(
        vae=TINY_FRAMES_VAE, width=64, layers=3, text_dim=128, latent_scale="channel"
    ),
}
TEXT_DIM = 128

MakeBackbone = Callable[..., Backbone]
MakeCond = Callable[..., Conditioning]


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """One torch thread: these tests share 2 cores with other work; oversubscription is slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _make_backbone(name: str, seed: int = 0, stats: bool = True) -> Backbone:
    """A tiny random backbone in eval mode; non-trivial Mean/Std (and latent scale) by default."""
    torch.manual_seed(seed)
    mean = std = None
    if stats:
        rng = np.random.default_rng(seed)
        mean = rng.uniform(-1.0, 1.0, FEATURE_DIM).astype(np.float32)
        std = rng.uniform(0.5, 1.5, FEATURE_DIM).astype(np.float32)
    model = build_backbone(name.split("-")[0], TINY_CONFIGS[name], mean, std)
    if hasattr(model, "latent_std"):  # a scalar 0.8, or (d,) per channel from 0.5 to 1
        scale = model.latent_std
        scale.copy_(
            torch.linspace(0.5, 1.0, scale.numel()).reshape(scale.shape) if scale.dim() else 0.8
        )
    return model.eval()


@pytest.fixture
def make_backbone() -> MakeBackbone:
    """Factory: make_backbone(name, seed=0, stats=True) -> tiny eval-mode backbone (name: a key
    of TINY_CONFIGS, e.g. "mld" or "mld-frames")."""
    return _make_backbone


@pytest.fixture(params=list(TINY_CONFIGS))
def backbone(request: pytest.FixtureRequest) -> Backbone:
    """Each backbone kind in turn (mdm, mld, lcm; mld and lcm on both latent layouts), tiny and
    random."""
    return _make_backbone(request.param)


def _make_cond(
    lengths: list[int],
    seed: int = 0,
    use_text: list[bool] | None = None,
    guidance: float | None = 7.5,
    text: torch.Tensor | None = None,
) -> Conditioning:
    """Conditioning with random pooled text embeddings (guidance None leaves it unset)."""
    b = len(lengths)
    if text is None:
        text = torch.randn(b, TEXT_DIM, generator=torch.Generator().manual_seed(seed))
    return Conditioning(
        text=text,
        lengths=torch.tensor(lengths, dtype=torch.long),
        use_text=None if use_text is None else torch.tensor(use_text),
        guidance=None if guidance is None else torch.full((b,), float(guidance)),
    )


@pytest.fixture
def make_cond() -> MakeCond:
    """Factory: make_cond(lengths, seed=0, use_text=None, guidance=7.5, text=None)."""
    return _make_cond


@pytest.fixture(scope="session")
def tiny_configs() -> dict:
    """Backbone name -> tiny config (like the training presets' `tiny` entries)."""
    return dict(TINY_CONFIGS)


@pytest.fixture(scope="session")
def text_encoder() -> TextEncoder:
    """The shipped, frozen text encoder (width 128)."""
    return load_text_encoder()
