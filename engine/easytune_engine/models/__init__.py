"""Text-to-motion backbones (MDM-, MLD-, MotionLCM-style) behind one denoiser contract."""

from .base import MAX_FRAMES, Backbone, SamplingDefaults, check_lengths, length_mask
from .io import BACKBONES, build_backbone, check_backbone_name, load_backbone, save_backbone
from .latent import LCM, MLD, LCMConfig, MLDConfig
from .mdm import MDM, MDMConfig
from .vae import MotionVAE, VAEConfig

__all__ = [
    "BACKBONES",
    "LCM",
    "MAX_FRAMES",
    "MDM",
    "MLD",
    "Backbone",
    "LCMConfig",
    "MDMConfig",
    "MLDConfig",
    "MotionVAE",
    "SamplingDefaults",
    "VAEConfig",
    "build_backbone",
    "check_backbone_name",
    "check_lengths",
    "length_mask",
    "load_backbone",
    "save_backbone",
]
