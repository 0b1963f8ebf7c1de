"""The fine-tuning harness: one trainer, any method (methods.py), any backbone.

    tuner = Finetuner(MotionGenerator.load("mld"), load_reward_model(), FinetuneConfig(),
                      PromptPool.from_corpus(corpus))
    for result in tuner.run():   # one TrajectoryResult per sampled trajectory
        ...

It owns what the methods share: AdamW (lr 1e-5, β (0.9, 0.999), no weight decay), linear warm-up
then cosine decay over the planned updates, gradient clipping at 1.0, guidance during fine-tuning,
the prompts, the reward (decoded features → the reward model's normalisation → R(x, t, c)),
EasyTune-chain's parameter copy θ′, and seeded randomness. Only the denoiser is trained; the VAE,
the text encoder and the reward are frozen.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..models.latent import LCM
from ..models.pipeline import MotionGenerator
from .distributed import average_gradients, current_world, shard
from .lora import LoRAConfig, add_lora, denoiser_of
from .methods import MethodConfig, Trajectory, TrajectoryResult, run_method

# Learning rates measured on the shipped MLD-style model (README, "LoRA against full fine-tuning"):
# rank-8 adapters need about 30x the full fine-tune's rate to move the model as much.
LR_FULL = 1e-5
LR_LORA = 3e-4


def default_lr(lora_rank: int) -> float:
    """The fine-tuning learning rate to use when none is given: LR_LORA with adapters."""
    return LR_LORA if lora_rank > 0 else LR_FULL


@dataclass(frozen=True)
class FinetuneConfig:
    method: MethodConfig = field(default_factory=MethodConfig)
    trajectories: int = 50  # budget of sampled trajectories
    batch_size: int = 8  # prompts per trajectory (all processes together)
    lr: float = 1e-5
    warmup: int = 10  # optimizer updates of linear warm-up
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    steps: int | None = None  # sampling steps (default: the backbone's)
    guidance: float | None = None  # default: the backbone's
    lora_rank: int = 0  # > 0: train rank-r LoRA adapters on the denoiser instead of its weights
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.method, dict):
            object.__setattr__(self, "method", MethodConfig(**self.method))
        if self.trajectories < 1 or self.batch_size < 1:
            raise ValueError("trajectories and batch_size must be >= 1")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass(frozen=True)
class PromptPool:
    """Prompts with the motion length they go with."""

    texts: tuple[str, ...]
    lengths: tuple[int, ...]

    @classmethod
    def from_corpus(cls, root: Path, split: str = "train") -> PromptPool:
        from ..data.humanml3d import load_split

        data = load_split(root, split)
        texts, lengths = [], []
        for s in data:
            if s.mirrored:
                continue
            for cap in s.captions:
                texts.append(cap.text)
                lengths.append(min(s.length, 196))
        if not texts:
            raise ValueError(f"{root}: no captions in the {split} split")
        return cls(tuple(texts), tuple(lengths))

    def draw(self, n: int, rng: np.random.Generator) -> tuple[list[str], list[int]]:
        idx = rng.integers(len(self.texts), size=n)
        return [self.texts[i] for i in idx], [self.lengths[i] for i in idx]


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU if it has none)."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu")


def planned_updates(cfg: FinetuneConfig, sampling_steps: int) -> int:
    """Optimizer updates the run will take (for the learning-rate schedule)."""
    m = cfg.method
    if m.name in ("easytune", "easytune-chain"):
        per = sampling_steps if m.window == 0 else min(m.window, sampling_steps)
        return cfg.trajectories * per
    return cfg.trajectories


class Finetuner:
    def __init__(
        self, generator: MotionGenerator, reward, config: FinetuneConfig, prompts: PromptPool
    ):
        self.gen = generator
        self.config = c = config
        self.prompts = prompts
        backbone = generator.backbone
        # Everything a trajectory creates lives on the backbone's device; the reward (frozen)
        # moves there too, so its scores and the loss never cross devices.
        self.device = module_device(backbone)
        self.reward = reward.to(self.device).eval().requires_grad_(False)
        if c.method.reward == "noisy" and backbone.space != "features":
            raise ValueError(
                "the noise-aware reward scores noisy motion features; a latent backbone's x_t is "
                "not one (use reward 'x0')"
            )
        self.opts = generator.options(c.steps, c.guidance)
        backbone.requires_grad_(False)
        # the anchor's reference: a frozen copy of the base, taken before anything trains
        self.reference = copy.deepcopy(backbone).eval() if c.method.anchor_weight > 0 else None
        if c.lora_rank > 0:
            self.params = add_lora(backbone, LoRAConfig(rank=c.lora_rank, alpha=c.lora_rank))
        else:
            self.params = list(denoiser_of(backbone).parameters())
        for p in self.params:
            p.requires_grad_(True)
        self.opt = torch.optim.AdamW(
            self.params, lr=c.lr, betas=(0.9, 0.999), weight_decay=c.weight_decay
        )
        self.total_updates = planned_updates(c, self.opts.steps)
        self.updates = 0
        self.rng = np.random.default_rng(c.seed)
        self.torch_gen = torch.Generator().manual_seed(c.seed)
        self.world = current_world()
        if c.batch_size % self.world.size:
            raise ValueError(
                f"batch_size {c.batch_size} must split evenly over {self.world.size} processes"
            )
        self._shadow: list[torch.Tensor] | None = None
        self._reward_abar = reward.config.noise_schedule().alphas_cumprod()
        self._model_abar = backbone.schedule.alphas_cumprod()

    # -- the trainer's side of a trajectory ------------------------------------------------------

    def lr_now(self) -> float:
        c, u = self.config, self.updates
        if u < c.warmup:
            return c.lr * (u + 1) / c.warmup
        p = min(1.0, (u - c.warmup) / max(1, self.total_updates - c.warmup))
        return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))

    def _backward(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite fine-tuning loss {loss.item()} at update {self.updates}"
            )
        loss.backward()
        average_gradients(self.params, self.world)  # the data-parallel step (no-op alone)
        torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        for g in self.opt.param_groups:
            g["lr"] = self.lr_now()

    def update(self, loss: torch.Tensor) -> None:
        """backward, clip, AdamW step on θ, zero grads."""
        self._backward(loss)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.updates += 1

    @torch.no_grad()
    def _swap(self) -> None:
        assert self._shadow is not None
        for p, s in zip(self.params, self._shadow, strict=True):
            tmp = p.detach().clone()
            p.copy_(s)
            s.copy_(tmp)

    def shadow_update(self, loss: torch.Tensor) -> None:
        """EasyTune-chain: the gradient taken at θ updates the copy θ′; sampling keeps using θ."""
        if self._shadow is None:
            self._shadow = [p.detach().clone() for p in self.params]
        self._backward(loss)
        self._swap()  # params hold θ′
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self._swap()  # params hold θ again, θ′ updated
        self.updates += 1

    @torch.no_grad()
    def commit_shadow(self) -> None:
        if self._shadow is not None:
            for p, s in zip(self.params, self._shadow, strict=True):
                p.copy_(s)
            self._shadow = None

    def reward_step(self, t: int) -> int:
        """The reward's timestep with the same noise level ᾱ as the backbone's step t."""
        if t <= 0:
            return 0
        target = self._model_abar[t]
        return int(torch.argmin((self._reward_abar - target).abs()))

    def scorer(self, prompts: list[str], lengths: torch.Tensor):
        backbone = self.gen.backbone

        def score(x: torch.Tensor, t: int) -> torch.Tensor:
            raw = backbone.denormalize(backbone.decode(x, lengths))
            return self.reward.reward(
                self.reward.normalize(raw), self.reward_step(t), prompts, lengths
            )

        return score

    def trajectory(self, prompts: list[str], lengths: list[int], first_row: int = 0) -> Trajectory:
        """A trajectory for rows first_row … of the global batch (this process's shard)."""
        gen = self.gen
        # On the model's device: the scorer's decode and reward masks are built from these lengths.
        lens = torch.tensor(lengths, dtype=torch.long, device=self.device)
        seed = int(self.rng.integers(2**31))
        noise = gen.generators(len(prompts), seed, first=first_row)
        return Trajectory(
            model=gen.backbone,
            scheduler=gen.scheduler(self.opts),
            cond=gen.conditioning(prompts, lens, self.opts),
            x_T=gen.initial_noise(lens, noise),
            guidance=1.0 if isinstance(gen.backbone, LCM) else self.opts.guidance,
            score=self.scorer(prompts, lens),
            update=self.update,
            shadow_update=self.shadow_update,
            commit_shadow=self.commit_shadow,
            generator=self.torch_gen,
            noise=noise,
            reference=self.reference,
        )

    def step(self) -> tuple[TrajectoryResult, float]:
        """Sample one trajectory of fresh prompts and train on it; (result, seconds)."""
        t0 = time.perf_counter()
        prompts, lengths = self.prompts.draw(self.config.batch_size, self.rng)  # global batch
        prompts, lengths = shard(prompts, self.world), shard(lengths, self.world)
        first = self.world.rank * len(prompts)
        # The backbone stays in eval mode (no dropout): fine-tuning follows the sampler exactly,
        # and a split batch sees the same network as one process would.
        self.gen.backbone.eval()
        result = run_method(self.trajectory(prompts, lengths, first), self.config.method)
        return result, time.perf_counter() - t0

    def run(self) -> Iterator[tuple[TrajectoryResult, float]]:
        for _ in range(self.config.trajectories):
            yield self.step()
