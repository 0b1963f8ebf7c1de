"""Text -> motion with any backbone: the frozen text encoder, the sampler, guidance, decoding.

    gen = MotionGenerator.load("mld")                       # shipped weights + text encoder
    out = gen.generate(["a person jumps twice"] * 4, [120] * 4, seed=0)
    out.features[0]                                         # (120, 263) raw HumanML3D features

`sample` is the differentiable core (no `no_grad`, a per-step hook) that the fine-tuner drives;
`generate` wraps it for inference and validates everything a user can get wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..diffusion.sampling import Conditioning, StepHook, classifier_free_guidance, sample_loop
from ..diffusion.schedulers import SAMPLERS, Generators, Scheduler, make_scheduler, row_noise
from ..text.encoder import TextEncoderLike, check_prompts
from .base import Backbone, check_lengths
from .latent import LCM

MAX_CANDIDATES = 64  # prompts x candidates in one call
MAX_STEPS = 1000
MAX_GUIDANCE = 50.0
PRECISIONS = ("fp32", "bf16")  # the network's matrix products; the sampler's arithmetic stays fp32


@dataclass(frozen=True)
class SamplingOptions:
    """Resolved sampling settings of one call (the backbone's defaults where not given)."""

    sampler: str
    steps: int
    guidance: float
    eta: float = 0.0
    precision: str = "fp32"


@dataclass(frozen=True)
class Generation:
    """What `generate` returns."""

    features: list[np.ndarray]  # per motion (length_i, 263) raw HumanML3D features, float32
    normalized: torch.Tensor  # (B, T_max, 263) normalised features, zero after each length
    lengths: list[int]
    options: SamplingOptions
    seed: int


class MotionGenerator:
    def __init__(self, backbone: Backbone, text_encoder: TextEncoderLike) -> None:
        if backbone.text_dim != text_encoder.width:
            raise ValueError(
                f"backbone expects {backbone.text_dim}-d text embeddings, the encoder gives "
                f"{text_encoder.width}"
            )
        self.backbone = backbone
        self.text_encoder = text_encoder

    @classmethod
    def load(cls, name_or_path: str | Path, device: str = "cpu") -> MotionGenerator:
        """A shipped backbone ('mdm', 'mld', 'lcm') or a checkpoint, with the built-in encoder."""
        from ..text.encoder import load_text_encoder
        from .io import load_backbone

        encoder = load_text_encoder(device=device)
        backbone = load_backbone(
            name_or_path, device=device, text_encoder_sha256=encoder.source_sha256
        )
        return cls(backbone, encoder)

    @property
    def device(self) -> torch.device:
        return self.backbone.mean.device

    # -- options -------------------------------------------------------------------------------

    def options(
        self,
        steps: int | None = None,
        guidance: float | None = None,
        sampler: str | None = None,
        eta: float = 0.0,
        precision: str = "fp32",
    ) -> SamplingOptions:
        d = self.backbone.sampling
        sampler = d.sampler if sampler is None else sampler
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}")
        if (sampler == "lcm") != isinstance(self.backbone, LCM):
            raise ValueError(
                "the 'lcm' sampler goes with the lcm backbone only"
                if sampler == "lcm"
                else f"the lcm backbone samples with 'lcm', not {sampler!r}"
            )
        steps = d.steps if steps is None else steps
        limit = getattr(self.backbone.config, "origin_steps", MAX_STEPS)
        if not isinstance(steps, int) or not 1 <= steps <= limit:
            raise ValueError(f"steps must be an integer in 1..{limit}, got {steps!r}")
        guidance = d.guidance if guidance is None else float(guidance)
        if not math.isfinite(guidance) or not 0.0 <= guidance <= MAX_GUIDANCE:
            raise ValueError(f"guidance must be in 0..{MAX_GUIDANCE:g}, got {guidance}")
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1], got {eta}")
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
        return SamplingOptions(sampler, steps, guidance, eta, precision)

    def scheduler(self, opts: SamplingOptions) -> Scheduler:
        b = self.backbone
        kwargs = {"origin_steps": b.config.origin_steps} if isinstance(b, LCM) else {}
        sched = make_scheduler(opts.sampler, b.schedule, b.prediction_type, eta=opts.eta, **kwargs)
        sched.set_timesteps(opts.steps)
        return sched

    # -- sampling ------------------------------------------------------------------------------

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """Pooled text embeddings (B, D) from the frozen encoder."""
        return self.text_encoder.encode(check_prompts(prompts)).pooled.float().to(self.device)

    def conditioning(
        self, prompts: Sequence[str], lengths: torch.Tensor, opts: SamplingOptions
    ) -> Conditioning:
        text = self.encode(prompts)
        guidance = None
        if isinstance(self.backbone, LCM):  # w goes into the guidance embedding
            guidance = torch.full((text.shape[0],), opts.guidance, device=self.device)
        return Conditioning(text=text, lengths=lengths.to(self.device), guidance=guidance)

    def generators(self, count: int, seed: int, first: int = 0) -> list[torch.Generator]:
        """One random stream per candidate (rows first … first + count − 1 of a batch), so a
        candidate never depends on the batch size or on how a batch is split across processes."""
        return [
            torch.Generator().manual_seed(seed * 100_003 + i) for i in range(first, first + count)
        ]

    def initial_noise(
        self, lengths: torch.Tensor, generators: list[torch.Generator]
    ) -> torch.Tensor:
        """x_T (B, ...) drawn row by row from `generators`."""
        shape = self.backbone.noise_shape(lengths)
        return torch.stack([row_noise(shape[1:], g) for g in generators]).to(self.device)

    def sample(
        self,
        cond: Conditioning,
        x_T: torch.Tensor,
        opts: SamplingOptions,
        *,
        hook: StepHook | None = None,
        generator: Generators = None,
    ) -> torch.Tensor:
        """The final sample in the backbone's space; gradients flow wherever the caller lets.

        With `opts.precision` "bf16" the network runs under bfloat16 autocast (its matrix
        products; guidance, the noise and the scheduler's update stay float32): the same R@1, FID
        and oracle accuracy (benchmarks/precision_quality.py); up to 1.9x faster on an AMD EPYC,
        1.6x slower on an Intel Xeon with AVX512-BF16 but no AMX (benchmarks/backbone_speed.py).
        """
        scale = 1.0 if isinstance(self.backbone, LCM) else opts.guidance
        net = self.backbone if opts.precision == "fp32" else self._bf16_network
        model = classifier_free_guidance(net, scale)
        return sample_loop(model, self.scheduler(opts), x_T, cond, hook=hook, generator=generator)

    def _bf16_network(self, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        """The backbone under bfloat16 autocast; its output back in float32 before guidance."""
        with torch.autocast(x_t.device.type, dtype=torch.bfloat16):
            return self.backbone(x_t, t, cond).float()

    def generate(
        self,
        prompts: Sequence[str],
        lengths: Sequence[int],
        *,
        seed: int = 0,
        steps: int | None = None,
        guidance: float | None = None,
        sampler: str | None = None,
        eta: float = 0.0,
        precision: str = "fp32",
    ) -> Generation:
        """Generate one motion per (prompt, length); same seed, same motions (and the same
        precision: bf16 motions differ from fp32 ones by its rounding)."""
        prompts = check_prompts(prompts)
        lens = check_lengths(list(lengths))
        if len(prompts) != lens.numel():
            raise ValueError(f"{len(prompts)} prompts but {lens.numel()} lengths")
        if len(prompts) > MAX_CANDIDATES:
            raise ValueError(
                f"too many motions in one call: {len(prompts)}, at most {MAX_CANDIDATES}"
            )
        if not isinstance(seed, int) or not 0 <= seed < 2**31:
            raise ValueError(f"seed must be an integer in 0..2^31-1, got {seed!r}")
        opts = self.options(steps, guidance, sampler, eta, precision)
        gens = self.generators(len(prompts), seed)
        with torch.no_grad():
            cond = self.conditioning(prompts, lens, opts)
            x0 = self.sample(cond, self.initial_noise(lens, gens), opts, generator=gens)
            feats = self.backbone.decode(x0, cond.lengths)
            raw = self.backbone.denormalize(feats).cpu().numpy().astype(np.float32)
        out = [raw[i, : int(n)] for i, n in enumerate(lens)]
        return Generation(out, feats, [int(n) for n in lens], opts, seed)
