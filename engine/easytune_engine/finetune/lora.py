"""LoRA adapters for the denoiser: W ← W + (α / r) · B A on every 2-D weight of its linear maps.

    adapters = add_lora(backbone, LoRAConfig(rank=8))     # B = 0: the model is unchanged
    ... fine-tune only `adapters.parameters()` ...
    save_adapter(path, backbone)                          # a small file: A, B, config, base hash
    load_adapter(path, backbone)                          # switch adapters, base weights untouched
    clear_adapter(backbone)                               # back to the base model

Implemented as a `torch.nn.utils.parametrize` parametrization, so it covers `nn.Linear` weights and
the attention's packed `in_proj_weight` alike, and switching adapters only copies A and B.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint

KIND = "lora_adapter"


@dataclass(frozen=True)
class LoRAConfig:
    rank: int = 8
    alpha: float = 8.0

    def __post_init__(self) -> None:
        if not 1 <= self.rank <= 256:
            raise ValueError(f"LoRA rank must be in 1..256, got {self.rank}")
        if not self.alpha > 0:
            raise ValueError(f"LoRA alpha must be > 0, got {self.alpha}")


class LowRankDelta(nn.Module):
    """The parametrization W ↦ W + (α / r) · B A with A (r, in) small random and B (out, r) = 0."""

    def __init__(self, out_features: int, in_features: int, config: LoRAConfig) -> None:
        super().__init__()
        self.scale = config.alpha / config.rank
        self.lora_A = nn.Parameter(torch.randn(config.rank, in_features) / in_features**0.5)
        self.lora_B = nn.Parameter(torch.zeros(out_features, config.rank))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.scale * (self.lora_B @ self.lora_A).to(weight.dtype)


def _targets(module: nn.Module) -> list[tuple[nn.Module, str]]:
    """(owner, parameter name) of every 2-D linear weight in `module`."""
    out = []
    for owner in module.modules():
        if isinstance(owner, nn.Linear):
            out.append((owner, "weight"))
        elif isinstance(owner, nn.MultiheadAttention) and owner.in_proj_weight is not None:
            out.append((owner, "in_proj_weight"))
    return out


def denoiser_of(backbone: nn.Module) -> nn.Module:
    return getattr(backbone, "denoiser", backbone)


def add_lora(backbone: nn.Module, config: LoRAConfig) -> list[nn.Parameter]:
    """Add adapters to the denoiser's linear weights; returns the adapter parameters."""
    den = denoiser_of(backbone)
    if has_lora(backbone):
        raise ValueError("this backbone already has LoRA adapters")
    params = []
    for owner, name in _targets(den):
        w = getattr(owner, name)
        delta = LowRankDelta(w.shape[0], w.shape[1], config).to(w.device)
        parametrize.register_parametrization(owner, name, delta)
        params += [delta.lora_A, delta.lora_B]
    backbone.lora_config = config  # type: ignore[attr-defined]
    return params


def has_lora(backbone: nn.Module) -> bool:
    return any(isinstance(m, LowRankDelta) for m in denoiser_of(backbone).modules())


def adapter_state(backbone: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors, by their names in the backbone's state dict."""
    return {k: v for k, v in backbone.state_dict().items() if ".lora_A" in k or ".lora_B" in k}


def save_adapter(path: Path, backbone: nn.Module, extra: dict | None = None) -> str:
    if not has_lora(backbone):
        raise ValueError("this backbone has no LoRA adapters to save")
    extra = {
        "base_sha256": getattr(backbone, "checkpoint_sha256", None),
        "backbone": getattr(backbone, "kind", None),
    } | (extra or {})
    return save_checkpoint(Path(path), KIND, backbone.lora_config, adapter_state(backbone), extra)


def load_adapter(path: Path, backbone: nn.Module) -> dict:
    """Switch to the adapter in `path` (adding adapter slots if needed); returns its extra."""
    ckpt = load_checkpoint(Path(path), KIND)
    config = ckpt.config_as(LoRAConfig)
    base = ckpt.extra.get("base_sha256")
    own = getattr(backbone, "checkpoint_sha256", None)
    if base is not None and own is not None and base != own:
        raise CheckpointError(
            f"{path}: adapter was trained on base {base[:12]}…, this model is {own[:12]}…"
        )
    if not has_lora(backbone):
        add_lora(backbone, config)
    elif backbone.lora_config != config:
        raise CheckpointError(f"{path}: rank/alpha {config} differ from the loaded adapters")
    slots = adapter_state(backbone)
    if set(slots) != set(ckpt.state) or any(
        slots[k].shape != v.shape for k, v in ckpt.state.items()
    ):
        raise CheckpointError(f"{path}: adapter tensors do not fit this backbone")
    with torch.no_grad():
        for k, v in ckpt.state.items():
            slots[k].copy_(v)
    return ckpt.extra


@torch.no_grad()
def clear_adapter(backbone: nn.Module) -> None:
    """Zero every B: the model is the base model again (adapter slots stay for switching)."""
    for m in denoiser_of(backbone).modules():
        if isinstance(m, LowRankDelta):
            m.lora_B.zero_()
