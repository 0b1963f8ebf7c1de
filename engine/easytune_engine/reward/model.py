"""The reward: a TMR-style text-motion retrieval model whose motion encoder also reads the step t.

R(x, t, c) = cos(E_M(x, t), E_T(c)), both embeddings L2-normalised (methods.md, "Reward model").
E_M: normalised 263-d features -> strided 1-D conv (x4 fewer frames) -> tokens [<cls>, t, motion...]
-> transformer -> <cls> -> linear -> latent. E_T: the built-in text encoder (`easytune_engine.text`)
-> pooled <cls> -> linear -> latent. Differentiable w.r.t. the features: the fine-tuner
back-propagates through `reward`.

    model = load_reward_model()                           # shipped weights
    r = model.reward(features, t, texts, lengths)         # (B,), features normalised (B, T, 263)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import CheckpointError, load_checkpoint, load_state_strict, save_checkpoint
from ..diffusion.schedules import NoiseSchedule
from ..layers import pre_norm_transformer, register_feature_stats, timestep_embedding
from ..text.encoder import TextEncoder, TextEncoderConfig, check_prompts

FEATURE_DIM = 263
KIND = "reward"
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "reward_tmr.safetensors"


@dataclass(frozen=True)
class RewardConfig:
    """Retrieval reward model; saved in its checkpoint."""

    width: int = 256  # motion transformer width
    layers: int = 4  # motion transformer layers
    heads: int = 4
    ff_mult: int = 2
    dropout: float = 0.1
    downsample: int = 4  # frames per motion token (strided conv)
    max_frames: int = 200  # longest motion accepted
    latent: int = 256  # shared embedding size
    num_train_timesteps: int = 1000  # t runs over 0 .. num_train_timesteps - 1
    schedule: str = "scaled_linear"  # forward process used for noise-aware training (MLD's)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)

    def __post_init__(self) -> None:
        if isinstance(self.text, dict):  # rebuilt from a checkpoint's JSON
            object.__setattr__(self, "text", TextEncoderConfig(**self.text))
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be divisible by heads ({self.heads})")
        if self.downsample < 1 or self.max_frames < self.downsample:
            raise ValueError("need 1 <= downsample <= max_frames")

    def noise_schedule(self) -> NoiseSchedule:
        return NoiseSchedule(self.schedule, self.num_train_timesteps)  # type: ignore[arg-type]


PRESETS: dict[str, RewardConfig] = {
    "tiny": RewardConfig(
        width=32,
        layers=1,
        heads=2,
        latent=32,
        dropout=0.0,
        text=TextEncoderConfig(width=32, layers=1, heads=2, num_buckets=256, dropout=0.0),
    ),
    "default": RewardConfig(
        width=128,
        layers=3,
        heads=4,
        latent=256,
        text=TextEncoderConfig(width=128, layers=3, heads=4),
    ),
}


def check_motion(
    features: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None, max_frames: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate (B, T, 263) features and lengths; ValueError names the problem."""
    if not isinstance(features, torch.Tensor):
        raise ValueError(f"features must be a torch.Tensor, got {type(features).__name__}")
    if features.dim() != 3 or features.shape[-1] != FEATURE_DIM:
        raise ValueError(
            f"features must have shape (B, T, {FEATURE_DIM}), got {tuple(features.shape)}"
        )
    b, t = features.shape[:2]
    if b == 0:
        raise ValueError("features hold no motions (batch size 0)")
    if t == 0:
        raise ValueError("motion has zero length (T = 0 frames)")
    if not features.is_floating_point():
        raise ValueError(f"features must be floating point, got {features.dtype}")
    if lengths is None:
        lengths = torch.full((b,), t, dtype=torch.long, device=features.device)
    lengths = torch.as_tensor(lengths, device=features.device).long()
    if lengths.shape != (b,):
        raise ValueError(f"lengths must have shape ({b},), got {tuple(lengths.shape)}")
    if (lengths < 1).any():
        raise ValueError(f"motion {int(torch.argmax((lengths < 1).int()))} has zero length")
    if (lengths > t).any():
        raise ValueError(f"a length exceeds the {t} frames given: {lengths.max().item()}")
    if int(lengths.max()) > max_frames:
        raise ValueError(
            f"motion too long: {int(lengths.max())} frames, at most {max_frames} allowed"
        )
    valid = torch.arange(t, device=features.device)[None] < lengths[:, None]  # (B, T)
    if not torch.isfinite(features.detach()[valid]).all():
        bad = int(torch.nonzero(~torch.isfinite(features.detach()).all(-1) & valid)[0, 0])
        raise ValueError(f"motion {bad} contains NaN or inf values")
    return features, lengths


def check_steps(t: int | torch.Tensor, batch: int, num_train_timesteps: int) -> torch.Tensor:
    """Diffusion steps as a (B,) long tensor in [0, num_train_timesteps)."""
    t = torch.as_tensor(t)
    if t.is_floating_point() and not torch.equal(t, t.round()):
        raise ValueError("diffusion step t must be an integer")
    t = t.long()
    if t.dim() == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"t must be a scalar or have shape ({batch},), got {tuple(t.shape)}")
    if (t < 0).any() or (t >= num_train_timesteps).any():
        raise ValueError(f"t must be in 0..{num_train_timesteps - 1}, got {t.min()}..{t.max()}")
    return t


class MotionEncoder(nn.Module):
    """(B, T, 263) normalised features + step t -> (B, width) pooled feature."""

    def __init__(self, config: RewardConfig) -> None:
        super().__init__()
        self.config = config
        d, k = config.width, config.downsample
        self.conv = nn.Conv1d(FEATURE_DIM, d, kernel_size=k, stride=k)  # x4 fewer tokens
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.02)  # TMR's learned distribution token
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        n_tokens = math.ceil(config.max_frames / k)
        self.pos_emb = nn.Parameter(torch.randn(n_tokens, d) * 0.02)
        self.transformer = pre_norm_transformer(
            d, config.heads, config.ff_mult, config.dropout, config.layers
        )
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, t: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        b, frames, _ = x.shape
        k = self.config.downsample
        valid = torch.arange(frames, device=x.device)[None] < lengths[:, None]  # (B, T)
        x = torch.where(valid[..., None], x, 0.0)  # padding (even NaN) never leaks into a token
        pad = (-frames) % k
        x = F.pad(x, (0, 0, 0, pad))
        h = F.gelu(self.conv(x.transpose(1, 2))).transpose(1, 2)  # (B, T/k, D)
        n = h.shape[1]
        h = h + self.pos_emb[:n]
        tok_valid = torch.arange(n, device=x.device)[None] * k < lengths[:, None]  # (B, T/k)
        t_tok = self.time_mlp(timestep_embedding(t, h.shape[-1]).to(h.dtype))[:, None]  # (B, 1, D)
        seq = torch.cat([self.cls.expand(b, -1, -1), t_tok, h], dim=1)  # (B, 2 + T/k, D)
        keep = torch.cat([torch.ones(b, 2, dtype=torch.bool, device=x.device), tok_valid], 1)
        out = self.transformer(seq, src_key_padding_mask=~keep)
        return self.norm(out[:, 0])


class RewardModel(nn.Module):
    """Noise-aware text-motion retrieval model; `reward` is the cosine similarity."""

    def __init__(
        self,
        config: RewardConfig,
        vocabulary: Sequence[str] | None = None,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.motion_encoder = MotionEncoder(config)
        self.text_encoder = TextEncoder(config.text, vocabulary)
        self.motion_proj = nn.Linear(config.width, config.latent)
        self.text_proj = nn.Linear(config.text.width, config.latent)
        # Normalisation stats of the corpus the model was trained on (raw -> normalised features).
        register_feature_stats(self, mean, std)

    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw HumanML3D features -> the normalised features the model reads."""
        return (raw - self.mean) / self.std

    def embed_motion(
        self,
        features: torch.Tensor,
        t: int | torch.Tensor = 0,
        lengths: torch.Tensor | Sequence[int] | None = None,
    ) -> torch.Tensor:
        """(B, T, 263) normalised features at step t -> (B, latent) unit vectors."""
        features, lengths = check_motion(features, lengths, self.config.max_frames)
        steps = check_steps(t, features.shape[0], self.config.num_train_timesteps)
        dev = self.mean.device
        h = self.motion_encoder(features.to(dev), steps.to(dev), lengths.to(dev))
        return F.normalize(self.motion_proj(h), dim=-1)

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Prompts -> (B, latent) unit vectors."""
        enc = self.text_encoder(self.text_encoder.tokenizer(check_prompts(texts)))
        return F.normalize(self.text_proj(enc.pooled), dim=-1)

    def reward(
        self,
        features: torch.Tensor,
        t: int | torch.Tensor,
        texts: Sequence[str],
        lengths: torch.Tensor | Sequence[int] | None = None,
    ) -> torch.Tensor:
        """R(x, t, c) = cos(E_M(x, t), E_T(c)): (B,), differentiable w.r.t. `features`."""
        texts = check_prompts(texts)
        if isinstance(features, torch.Tensor) and features.dim() == 3:
            if len(texts) != features.shape[0]:
                raise ValueError(f"{len(texts)} prompts for {features.shape[0]} motions")
        m = self.embed_motion(features, t, lengths)
        return (m * self.embed_text(texts)).sum(-1)

    # -- checkpoints ---------------------------------------------------------------------------

    def save(self, path: str | Path, extra: dict | None = None, dtype=None) -> str:
        """Write an atomic safetensors checkpoint (config, vocabulary, stats inside)."""
        meta = {"vocabulary": list(self.text_encoder.vocabulary)} | (extra or {})
        state = self.state_dict()
        if dtype is not None:  # weights in `dtype`; the normalisation stats stay float32
            state = {
                k: v if k in ("mean", "std") or not v.is_floating_point() else v.to(dtype)
                for k, v in state.items()
            }
        return save_checkpoint(Path(path), KIND, self.config, state, meta)


def load_reward_model(path: str | Path | None = None, device: str = "cpu") -> RewardModel:
    """Load a reward checkpoint (default: the shipped weights) in eval mode; float32 on `device`."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file() and path == DEFAULT_WEIGHTS:
        raise CheckpointError(
            f"{path}: the shipped reward weights are missing; train them with "
            "`easytune-engine reward train` or pass --model FILE"
        )
    ckpt = load_checkpoint(path, KIND, device=device)
    config = ckpt.config_as(RewardConfig)
    vocab = ckpt.extra.get("vocabulary")
    if not isinstance(vocab, list):
        raise CheckpointError(f"{path}: checkpoint has no tokenizer vocabulary")
    model = RewardModel(config, vocab)
    load_state_strict(model, ckpt.state, path)
    model.checkpoint_extra = ckpt.extra  # type: ignore[attr-defined]
    model.checkpoint_sha256 = ckpt.sha256  # type: ignore[attr-defined]
    return model.to(device).eval()


def config_dict(config: RewardConfig) -> dict:
    return asdict(config)
