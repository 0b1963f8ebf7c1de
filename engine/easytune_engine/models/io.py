"""Backbone checkpoints: one safetensors file per backbone (kind, typed config, Mean/Std, weights).

    save_backbone(path, model, extra={"corpus": ..., "metrics": ...})
    model = load_backbone("mld")            # the shipped default, eval mode, float32
    model = load_backbone(Path("run/model.safetensors"))

The checkpoint records the content hash of the text encoder it was trained with; loading checks it
against the encoder in use, so a backbone is never silently paired with a different text tower.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import CheckpointError, load_checkpoint, load_state_strict, save_checkpoint
from .base import Backbone
from .latent import LCM, MLD, LCMConfig, MLDConfig
from .mdm import MDM, MDMConfig

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
BACKBONES = ("mdm", "mld", "lcm")
_CLASSES: dict[str, tuple[type[Backbone], type]] = {
    "mdm": (MDM, MDMConfig),
    "mld": (MLD, MLDConfig),
    "lcm": (LCM, LCMConfig),
}


def check_backbone_name(name: str) -> str:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONES)}")
    return name


def shipped_path(name: str) -> Path:
    return WEIGHTS_DIR / f"{check_backbone_name(name)}.safetensors"


def build_backbone(name: str, config, mean=None, std=None) -> Backbone:
    cls, cfg_cls = _CLASSES[check_backbone_name(name)]
    if type(config) is not cfg_cls:
        raise TypeError(f"{name} needs a {cfg_cls.__name__}, got {type(config).__name__}")
    return cls(config, mean, std)


def save_backbone(
    path: Path, model: Backbone, extra: dict | None = None, dtype: torch.dtype | None = None
) -> str:
    """Atomic write; `dtype` (e.g. float16) applies to weights, never to Mean/Std/latent scale."""
    keep32 = ("mean", "std", "latent_std")
    state = {
        k: v if (k in keep32 or dtype is None or not v.is_floating_point()) else v.to(dtype)
        for k, v in model.state_dict().items()
    }
    return save_checkpoint(Path(path), f"backbone/{model.kind}", model.config, state, extra)


def load_backbone(
    name_or_path: str | Path, device: str = "cpu", text_encoder_sha256: str | None = None
) -> Backbone:
    """Load a backbone by shipped name ('mdm', 'mld', 'lcm') or checkpoint path, in eval mode.

    text_encoder_sha256: when given, the checkpoint must have been trained with that encoder.
    """
    if isinstance(name_or_path, str) and name_or_path in BACKBONES:
        path = shipped_path(name_or_path)
        if not path.is_file():
            raise CheckpointError(
                f"{path}: the shipped {name_or_path} weights are missing; train them with "
                f"`easytune-engine train --backbone {name_or_path}` and pass the checkpoint path"
            )
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise CheckpointError(
                f"{path}: no such backbone checkpoint (or unknown backbone name; valid names: "
                f"{', '.join(BACKBONES)})"
            )
    kind = peek_kind(path)
    ckpt = load_checkpoint(path, f"backbone/{kind}", device="cpu")
    cls, cfg_cls = _CLASSES[kind]
    model = cls(ckpt.config_as(cfg_cls))
    load_state_strict(model, ckpt.state, path)
    recorded = ckpt.extra.get("text_encoder_sha256")
    if text_encoder_sha256 is not None and recorded not in (None, text_encoder_sha256):
        raise CheckpointError(
            f"{path}: trained with text encoder {str(recorded)[:12]}…, but the encoder in use is "
            f"{text_encoder_sha256[:12]}…; use the matching reward/text-encoder weights"
        )
    model.checkpoint_extra = ckpt.extra  # type: ignore[attr-defined]
    model.checkpoint_sha256 = ckpt.sha256  # type: ignore[attr-defined]
    return model.to(device).eval()


def peek_kind(path: Path) -> str:
    """The backbone kind (mdm, mld, lcm) a checkpoint holds, read from its header only."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            kind = (f.metadata() or {}).get("kind", "")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})") from exc
    if not kind.startswith("backbone/") or kind[9:] not in BACKBONES:
        raise CheckpointError(f"{path}: holds a {kind!r} checkpoint, not a backbone")
    return kind[9:]
