"""Model and optimisation presets per backbone.

- `tiny`: what tests use, ≤ 2 min on 2 CPU cores;
- `default`: sized for the measured 2-core CPU budget (a few hours per backbone);
- `large`: the same networks (MLD/LCM with a 16 x 32 latent), batch 256 and many more steps,
  for a GPU (`--device cuda --workers N`); with `--fit-minutes` the steps are cut to a time
  budget and the manifest records them;
- `frames` (MLD, LCM): the `large` schedule on a VAE with one latent per 4 frames
  (`VAEConfig.latent_layout`), whose round trip keeps fast events that 4 or 16 global latent
  tokens lose (benchmarks/results/vae_round_trip.json); for a GPU;
- `refine`: continues a trained model (`--init`, required) at a low learning rate. MDM: with the
  integrated root-trajectory term on (`benchmarks/mdm_trajectory.py` measured it). MLD: more
  training of the VAE's decoder (encoder frozen, so the latent space stays put) and of the
  denoiser, at batch 64, the 2-core CPU's budget for what a GPU run cut short. LCM: continues
  distilling a trained LCM's denoiser from such a refined teacher.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..models.io import check_backbone_name
from ..models.latent import LCMConfig, MLDConfig
from ..models.mdm import MDMConfig
from ..models.vae import VAEConfig
from .loop import StageConfig

PRESETS = ("tiny", "default", "large", "frames", "refine")


@dataclass(frozen=True)
class Preset:
    model: MDMConfig | MLDConfig | LCMConfig
    stages: dict[str, StageConfig]  # stage name -> optimisation settings, in training order
    needs_init: bool = False  # continues trained weights (`--init`) rather than starting fresh


_TINY_VAE = VAEConfig(width=64, enc_layers=1, dec_layers=1, latent_tokens=2, latent_dim=16)
_VAE = VAEConfig(width=192, enc_layers=3, dec_layers=3, latent_tokens=4, latent_dim=32)
# MLD++'s larger latent (16 x 32): 4 x 32 loses the take-offs of jumps (docs/backbones.md); root
# channels weighted 10x (+2.7 points of round-trip oracle accuracy on the CPU) and a mild
# integrated-trajectory term (at 5 it fixed turns and side steps but cost bows; see
# benchmarks/results/vae_round_trip.json)
_VAE_LARGE = VAEConfig(
    width=192,
    enc_layers=3,
    dec_layers=3,
    latent_tokens=16,
    latent_dim=32,
    root_weight=10.0,
    trajectory_weight=1.5,
)

# one latent of 8 per 4 frames (49 x 8 for 196 frames), root channels weighted 10x as above
# plus the height term at 0.3: 33.8% -> 52.0% round trip after 2,000 CPU steps from scratch
# (paired +18.2 points; hops, walks, jogs and kicks come back, side steps and turns do not;
# benchmarks/results/height_term/README.md)
_VAE_FRAMES = replace(
    _VAE, latent_dim=8, root_weight=10.0, latent_layout="frames", height_weight=0.3
)

# the GPU schedules of the latent chain (`large` and `frames`), batch 256
_GPU_MLD_STAGES = {
    "vae": StageConfig(
        steps=30000, batch_size=256, lr=5e-4, warmup=500, ema_decay=0.995, save_every=2000
    ),
    "denoiser": StageConfig(steps=40000, batch_size=256, lr=3e-4, warmup=1000, save_every=2000),
}
_GPU_LCM_STAGES = {
    "lcm": StageConfig(
        steps=10000, batch_size=256, lr=1e-4, warmup=200, ema_decay=0.999, save_every=2000
    )
}


def _gpu_chain(name: str, vae: VAEConfig) -> dict[tuple[str, str], Preset]:
    """The MLD and LCM presets `name` of a GPU-sized latent chain on `vae`."""
    return {
        ("mld", name): Preset(MLDConfig(vae=vae, width=256, layers=5), _GPU_MLD_STAGES),
        ("lcm", name): Preset(LCMConfig(vae=vae, width=256, layers=5), _GPU_LCM_STAGES),
    }


_TABLE: dict[tuple[str, str], Preset] = {
    ("mdm", "tiny"): Preset(
        MDMConfig(width=64, layers=2, heads=4),
        {"mdm": StageConfig(steps=300, batch_size=16, lr=1e-3, warmup=30, save_every=100)},
    ),
    ("mdm", "default"): Preset(
        MDMConfig(),
        {"mdm": StageConfig(steps=6000, batch_size=64, lr=3e-4, warmup=500, eval_every=2000)},
    ),
    # 2,000 steps of 64 from the `large` model, trajectory term 3: on the val split R@1 0.485 ->
    # 0.522 against 0.495 for the same run without the term (results/mdm_trajectory.json)
    ("mdm", "refine"): Preset(
        MDMConfig(sampler="ddim", trajectory_weight=3.0),
        {
            "mdm": StageConfig(
                steps=2000, batch_size=64, lr=5e-5, warmup=50, ema_decay=0.995, save_every=100
            )
        },
        needs_init=True,
    ),
    ("mld", "tiny"): Preset(
        MLDConfig(vae=_TINY_VAE, width=64, layers=3),
        {
            "vae": StageConfig(steps=200, batch_size=16, lr=1e-3, warmup=20, save_every=100),
            "denoiser": StageConfig(steps=200, batch_size=32, lr=1e-3, warmup=20, save_every=100),
        },
    ),
    ("mld", "default"): Preset(
        MLDConfig(vae=_VAE, width=256, layers=5),
        {
            "vae": StageConfig(steps=3500, batch_size=64, lr=4e-4, warmup=200, ema_decay=0.995),
            "denoiser": StageConfig(steps=5000, batch_size=64, lr=2e-4, warmup=300),
        },
    ),
    ("mld", "refine"): Preset(
        MLDConfig(vae=_VAE_LARGE, width=256, layers=5),
        {
            "decoder": StageConfig(
                steps=2500, batch_size=64, lr=1e-4, warmup=100, ema_decay=0.995, save_every=250
            ),
            "denoiser": StageConfig(
                steps=7000, batch_size=64, lr=1e-4, warmup=100, ema_decay=0.999, save_every=500
            ),
        },
        needs_init=True,
    ),
    ("mdm", "large"): Preset(
        MDMConfig(sampler="ddim"),  # DDIM beats DDPM on every metric here (docs/backbones.md)
        {"mdm": StageConfig(steps=40000, batch_size=256, lr=4e-4, warmup=1000, save_every=2000)},
    ),
    # continues distilling a trained LCM (`--init`) from a refined MLD teacher (same latent space;
    # the student takes the teacher's refined decoder)
    ("lcm", "refine"): Preset(
        LCMConfig(vae=_VAE_LARGE, width=256, layers=5),
        {
            "lcm": StageConfig(
                steps=1000, batch_size=128, lr=5e-5, warmup=50, ema_decay=0.999, save_every=100
            )
        },
        needs_init=True,
    ),
    ("lcm", "tiny"): Preset(
        LCMConfig(vae=_TINY_VAE, width=64, layers=3),
        {"lcm": StageConfig(steps=100, batch_size=32, lr=1e-4, warmup=10, save_every=50)},
    ),
    ("lcm", "default"): Preset(
        LCMConfig(vae=_VAE, width=256, layers=5),
        {"lcm": StageConfig(steps=1500, batch_size=64, lr=1e-4, warmup=100, ema_decay=0.999)},
    ),
    **_gpu_chain("large", _VAE_LARGE),
    **_gpu_chain("frames", _VAE_FRAMES),
}


def get_preset(backbone: str, preset: str) -> Preset:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    check_backbone_name(backbone)
    try:
        return _TABLE[(backbone, preset)]
    except KeyError:
        valid = ", ".join(p for p in PRESETS if (backbone, p) in _TABLE)
        raise ValueError(f"{backbone} has no preset {preset!r}; its presets: {valid}") from None
