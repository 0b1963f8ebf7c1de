"""The T2M-style evaluator: a text bi-GRU and a motion conv + bi-GRU embedding into one space.

After Guo et al., "Generating Diverse and Natural 3D Human Motions from Text" (CVPR 2022), the
evaluator every HumanML3D paper reports with (EricGuo5513/text-to-motion `networks/modules.py`):

- text: word embedding (T2M: GloVe 300-d; here learned) concatenated with a one-hot part of speech
  -> linear -> bi-GRU -> both final hidden states -> MLP -> embedding;
- motion: two strided 1-D convolutions (kernel 4, stride 2: x4 temporal downsampling, T2M's
  `MovementConvEncoder`) -> bi-GRU over the T/4 steps -> both final hidden states -> MLP;
- loss: margin contrastive on Euclidean distances (T2M `ContrastiveLoss`, margin 10): matched
  pairs pulled together (d^2), mismatched pairs pushed past the margin (max(0, m - d)^2).

Features enter normalised with the evaluator's own Mean/Std (stored in its checkpoint): the
corpus statistics with the std of the root and foot-contact groups divided by 5, as T2M does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from easytune_engine.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state_strict,
    save_checkpoint,
)
from easytune_engine.eval.vectorizer import POS_TAGS, TextBatch, Vocabulary
from easytune_engine.motion.normalize import FEATURE_SLICES

FEATURE_DIM = 263
CHECKPOINT_KIND = "t2m_evaluator"
DOWNSAMPLE = 4  # the conv stack halves time twice


@dataclass(frozen=True)
class EvaluatorConfig:
    """Sizes and loss settings of the evaluator; saved inside every checkpoint."""

    word_dim: int = 256  # learned word embedding size (T2M: 300-d GloVe)
    text_hidden: int = 256  # text bi-GRU hidden size per direction
    motion_conv: int = 384  # channels of the two temporal convolutions
    motion_hidden: int = 256  # motion bi-GRU hidden size per direction
    embed_dim: int = 512  # shared embedding size (T2M: 512)
    dropout: float = 0.2  # after each convolution (T2M: 0.2)
    margin: float = 10.0  # contrastive margin on Euclidean distance (T2M: 10)
    hash_buckets: int = 256  # word rows for lemmas outside the vocabulary
    max_tokens: int = 20  # caption tokens kept (T2M: 20)
    root_contact_std_divisor: float = 5.0  # T2M's feature weighting of root + foot contacts

    def __post_init__(self) -> None:
        for name in ("word_dim", "text_hidden", "motion_conv", "motion_hidden", "embed_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.margin <= 0:
            raise ValueError(f"margin must be > 0, got {self.margin}")


def evaluator_stats(
    mean: np.ndarray, std: np.ndarray, divisor: float
) -> tuple[np.ndarray, np.ndarray]:
    """The evaluator's own normalisation: corpus Mean, Std with root/contact groups / divisor."""
    std = np.array(std, dtype=np.float32, copy=True)
    for group in ("root_angular_velocity", "root_linear_velocity", "root_height", "foot_contacts"):
        std[FEATURE_SLICES[group]] /= divisor
    return np.asarray(mean, dtype=np.float32).copy(), std


def _head(inp: int, hidden: int, out: int) -> nn.Sequential:
    # T2M's output_net: Linear, LayerNorm, LeakyReLU, Linear
    return nn.Sequential(
        nn.Linear(inp, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, out)
    )


class TextEncoder(nn.Module):
    """(word ids, POS ids, lengths) -> (B, embed_dim)."""

    def __init__(self, vocab_size: int, cfg: EvaluatorConfig) -> None:
        super().__init__()
        self.word = nn.Embedding(vocab_size, cfg.word_dim, padding_idx=0)
        self.inp = nn.Linear(cfg.word_dim + len(POS_TAGS), cfg.text_hidden)
        self.gru = nn.GRU(cfg.text_hidden, cfg.text_hidden, batch_first=True, bidirectional=True)
        self.h0 = nn.Parameter(torch.zeros(2, 1, cfg.text_hidden))
        self.head = _head(2 * cfg.text_hidden, cfg.text_hidden, cfg.embed_dim)

    def forward(self, text: TextBatch) -> torch.Tensor:
        pos = nn.functional.one_hot(text.pos, len(POS_TAGS)).float()  # (B, L, P)
        x = self.inp(torch.cat([self.word(text.words), pos], dim=-1))  # (B, L, H)
        packed = pack_padded_sequence(x, text.lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed, self.h0.expand(-1, x.shape[0], -1).contiguous())  # (2, B, H)
        return self.head(torch.cat([h[0], h[1]], dim=-1))


class MotionEncoder(nn.Module):
    """(normalised features (B, T, 263), lengths (B,)) -> (B, embed_dim)."""

    def __init__(self, cfg: EvaluatorConfig) -> None:
        super().__init__()
        c = cfg.motion_conv
        self.conv = nn.Sequential(  # (B, 263, T) -> (B, c, T/4)
            nn.Conv1d(FEATURE_DIM, c, 4, 2, 1),
            nn.Dropout(cfg.dropout),
            nn.LeakyReLU(0.2),
            nn.Conv1d(c, c, 4, 2, 1),
            nn.Dropout(cfg.dropout),
            nn.LeakyReLU(0.2),
        )
        self.inp = nn.Linear(c, cfg.motion_hidden)
        self.gru = nn.GRU(
            cfg.motion_hidden, cfg.motion_hidden, batch_first=True, bidirectional=True
        )
        self.h0 = nn.Parameter(torch.zeros(2, 1, cfg.motion_hidden))
        self.head = _head(2 * cfg.motion_hidden, cfg.motion_hidden, cfg.embed_dim)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.conv(features.transpose(1, 2)).transpose(1, 2)  # (B, T/4, c)
        x = self.inp(x)
        steps = (lengths.cpu() // DOWNSAMPLE).clamp(min=1, max=x.shape[1])
        packed = pack_padded_sequence(x, steps, batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed, self.h0.expand(-1, x.shape[0], -1).contiguous())
        return self.head(torch.cat([h[0], h[1]], dim=-1))


class Evaluator(nn.Module):
    """Both encoders plus what they need to read data: vocabulary and normalisation."""

    def __init__(
        self, cfg: EvaluatorConfig, vocab: Vocabulary, mean: np.ndarray, std: np.ndarray
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.vocab = vocab
        self.text = TextEncoder(vocab.size, cfg)
        self.motion = MotionEncoder(cfg)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).clone())
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).clone())

    def embed_text(self, tokens: list[list[str]]) -> torch.Tensor:
        """`lemma/POS` token lists -> (B, embed_dim)."""
        return self.text(self.vocab.batch(tokens))

    def embed_motion(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Un-normalised features (B, T, 263) padded, lengths (B,) -> (B, embed_dim)."""
        if features.ndim != 3 or features.shape[-1] != FEATURE_DIM:
            raise ValueError(f"features must be (B, T, {FEATURE_DIM}), got {tuple(features.shape)}")
        x = (features - self.mean) / self.std
        # Zero-pad to a multiple of 4 at least 4 frames past the longest motion, as in training
        # (items padded to 196), so an embedding does not depend on how much padding came along.
        t = max(x.shape[1], int(lengths.max()) + DOWNSAMPLE)
        t = -(-t // DOWNSAMPLE) * DOWNSAMPLE
        x = nn.functional.pad(x, (0, 0, 0, t - x.shape[1]))
        mask = torch.arange(t)[None, :] < lengths[:, None]
        return self.motion(x * mask[..., None], lengths)


def margin_loss(text: torch.Tensor, motion: torch.Tensor, margin: float, same: torch.Tensor):
    """T2M's contrastive loss over all pairs of a batch: (pos, neg) terms, each a scalar.

    same: (B, B) bool, True where text i and motion j should count as a match (the diagonal and
    identical captions), so a duplicate caption is never pushed away from its own kind of motion.
    """
    d = torch.cdist(text, motion)  # (B, B) Euclidean
    pos = d.diagonal().pow(2).mean()
    hinge = (margin - d).clamp(min=0).pow(2)
    neg = hinge.masked_fill(same, 0.0).sum() / (~same).sum().clamp(min=1)
    return pos, neg


def save_evaluator(path: Path, model: Evaluator, extra: dict, dtype=torch.float16) -> str:
    """Weights, config, vocabulary and normalisation in one safetensors file; returns the hash."""
    state = {k: v for k, v in model.state_dict().items() if k not in ("mean", "std")}
    state["norm.mean"], state["norm.std"] = model.mean, model.std
    info = dict(extra, vocab=list(model.vocab.words))
    # the normalisation stays float32 even when the weights are stored in float16
    ckpt_state = {k: (v if k.startswith("norm.") else v.to(dtype)) for k, v in state.items()}
    return save_checkpoint(path, CHECKPOINT_KIND, model.cfg, ckpt_state, extra=info)


def load_evaluator(path: Path) -> Evaluator:
    """Load a checkpoint written by `save_evaluator`; CheckpointError names any problem."""
    ckpt = load_checkpoint(path, CHECKPOINT_KIND)
    cfg = ckpt.config_as(EvaluatorConfig)
    words = ckpt.extra.get("vocab")
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise CheckpointError(f"{path}: checkpoint has no vocabulary list")
    vocab = Vocabulary(tuple(words), cfg.hash_buckets, cfg.max_tokens)
    state = dict(ckpt.state)
    mean, std = state.pop("norm.mean", None), state.pop("norm.std", None)
    if mean is None or std is None or mean.shape != (FEATURE_DIM,) or std.shape != (FEATURE_DIM,):
        raise CheckpointError(f"{path}: checkpoint lacks a (263,) normalisation Mean/Std")
    model = Evaluator(cfg, vocab, mean.float().numpy(), std.float().numpy())
    state["mean"], state["std"] = mean.float(), std.float()
    load_state_strict(model, state, Path(path))
    model.eval()
    return model
