"""The retrieval reward: noise-aware TMR-style model, training, SPL, the artist rankings store."""

from .model import (
    DEFAULT_WEIGHTS,
    PRESETS,
    RewardConfig,
    RewardModel,
    check_motion,
    load_reward_model,
)

__all__ = [
    "DEFAULT_WEIGHTS",
    "PRESETS",
    "RewardConfig",
    "RewardModel",
    "check_motion",
    "load_reward_model",
]
