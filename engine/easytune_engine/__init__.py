"""easytune_engine: text-to-motion diffusion, rewards and step-aware fine-tuning (EasyTune)."""

__version__ = "0.1.0"
