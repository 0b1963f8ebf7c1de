"""VAE round-trip check: encode and decode real test clips, judge them with the corpus oracle.

    report = vae_round_trip_report(load_backbone("mld"), corpus)   # 512 test clips, seconds
    report["accuracy"], report["accuracy_ci95"], report["group_error"]["root_rot_vel"]

Nothing decoded by a latent backbone (MLD, LCM) can be better than its VAE's reconstructions, so
the share of real clips that still pass the oracle after a round trip is the ceiling of those
backbones' oracle accuracy. The clips are the same whole test clips (at the same lengths) that
`backbone.test_prompts` picks for the generation benchmarks.

`group_error` is the normalised reconstruction error per feature group: the group's squared error
summed over its channels and averaged over all valid frames, divided by the sum of the same
channels' variances over those frames (0: a perfect reconstruction; 1: no better than each
channel's mean). A ratio of sums, so near-constant channels cannot dominate a group.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..motion.features import FEATURE_DIM
from .metrics import wilson

# feature groups of the 263-d layout (motion/features.py)
FEATURE_GROUPS: dict[str, slice] = {
    "root_rot_vel": slice(0, 1),
    "root_lin_vel": slice(1, 3),
    "root_side_vel": slice(1, 2),  # x in the facing frame: sideways (part of root_lin_vel)
    "root_fwd_vel": slice(2, 3),  # z in the facing frame: forward (part of root_lin_vel)
    "root_height": slice(3, 4),
    "local_positions": slice(4, 67),
    "rotations": slice(67, 193),
    "local_velocities": slice(193, 259),
    "contacts": slice(259, 263),
}


def load_vae(name_or_path: str | Path, latent_scale: str | None = None):
    """An MLD (or LCM) of a checkpoint's config that holds its VAE and feature statistics, the
    denoiser and latent scale left fresh: what a round trip or a new denoiser stage needs. It also
    reads VAE-stage checkpoints whose untrained denoiser has another shape than this code's
    (`benchmarks/vae_experiment.py` runs started before a denoiser change). `latent_scale`
    replaces the config's (MLDConfig.latent_scale) for a new denoiser stage."""
    from ..checkpoint import CheckpointError, load_checkpoint
    from ..models.io import BACKBONES, peek_kind, shipped_path
    from ..models.latent import LCM, MLD, LCMConfig, MLDConfig

    path = shipped_path(name_or_path) if name_or_path in BACKBONES else Path(name_or_path)
    kind = peek_kind(path)
    if kind not in ("mld", "lcm"):
        raise CheckpointError(f"{path}: an {kind} checkpoint has no VAE (valid: mld, lcm)")
    ckpt = load_checkpoint(path, f"backbone/{kind}")
    config = ckpt.config_as(LCMConfig if kind == "lcm" else MLDConfig)
    if latent_scale is not None:
        config = replace(config, latent_scale=latent_scale)
    model = LCM(config) if kind == "lcm" else MLD(config)
    fresh = ("denoiser.", "latent_std")
    state = {k: v for k, v in ckpt.state.items() if not k.startswith(fresh)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or not all(k.startswith(fresh) for k in missing):
        raise CheckpointError(f"{path}: its VAE does not fit: {unexpected or missing}")
    model.checkpoint_sha256 = ckpt.sha256  # type: ignore[attr-defined]
    return model.eval()


@torch.no_grad()
def encode_clips(backbone, feats: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw (T, 263) clips -> (their scaled latents (B, n, d), lengths (B,)), padded to the
    longest, on the backbone's device."""
    device = backbone.mean.device
    lengths = torch.tensor([len(f) for f in feats], device=device)
    x = torch.zeros(len(feats), int(lengths.max()), FEATURE_DIM, device=device)
    for i, f in enumerate(feats):
        x[i, : len(f)] = torch.from_numpy(np.array(f, dtype=np.float32))
    return backbone.encode((x - backbone.mean) / backbone.std, lengths), lengths


@torch.no_grad()
def vae_round_trip(backbone, feats: Sequence[np.ndarray], batch: int = 32) -> list[np.ndarray]:
    """Raw (T, 263) features -> the same clips encoded and decoded by a latent backbone's VAE
    (posterior mean, no sampling), raw features again."""
    out = []
    for s in range(0, len(feats), batch):
        z, lengths = encode_clips(backbone, feats[s : s + batch])
        rec = backbone.denormalize(backbone.decode(z, lengths))
        out += [rec[i, : int(n)].float().cpu().numpy() for i, n in enumerate(lengths)]
    return out


def group_errors(real: Sequence[np.ndarray], rec: Sequence[np.ndarray]) -> dict[str, float]:
    """Per feature group: squared error / variance, summed over its channels (see module doc)."""
    x = np.concatenate([np.asarray(f, dtype=np.float64) for f in real])
    y = np.concatenate([np.asarray(f, dtype=np.float64) for f in rec])
    var = x.var(axis=0)
    se = ((y - x) ** 2).mean(axis=0)
    groups = FEATURE_GROUPS | {"all": slice(0, FEATURE_DIM)}
    return {n: float(se[sl].sum() / max(var[sl].sum(), 1e-12)) for n, sl in groups.items()}


def judge_clips(feats: Sequence[np.ndarray], programs: Sequence[Sequence]) -> list:
    """Oracle verdicts of raw features against their programs (too short for it: rejected)."""
    from ..data.corpus.oracle import Verdict, judge
    from ..motion.features import features_to_joints

    out = []
    for f, actions in zip(feats, programs, strict=True):
        try:
            out.append(judge(features_to_joints(np.asarray(f)), actions))
        except ValueError as exc:
            out.append(Verdict(False, (), str(exc)))
    return out


def segment_pass_rates(verdicts: Sequence) -> dict[str, float]:
    """Per action type: the share of its segments that pass (on the split the oracle chose)."""
    by_kind: dict[str, list[bool]] = {}
    for v in verdicts:
        for seg in v.segments:
            by_kind.setdefault(seg.name, []).append(bool(seg.passed))
    return {k: float(np.mean(by_kind[k])) for k in sorted(by_kind)}


def round_trip_clips(
    corpus: Path, samples: int = 512, seed: int = 0, split: str = "test"
) -> tuple[list[str], list[np.ndarray], list[tuple]]:
    """(ids, raw features cropped as in the generation benchmarks, programs' actions) of whole
    clips of a split (test; "val" for decisions taken during development)."""
    from ..data.corpus.program import program_from_dict
    from ..data.humanml3d import load_split
    from .backbone import test_prompts

    corpus = Path(corpus)
    prompts = test_prompts(corpus, samples, seed, split)
    clips = load_split(corpus, split)
    feats = [clips.by_id(p.program_id).features[: p.length] for p in prompts]
    programs = []
    for p in prompts:
        doc = json.loads((corpus / "programs" / f"{p.program_id}.json").read_text())
        programs.append(tuple(program_from_dict(doc).actions))
    return [p.program_id for p in prompts], feats, programs


def vae_round_trip_report(
    backbone,
    corpus: Path | None = None,
    *,
    samples: int = 512,
    seed: int = 0,
    clips: tuple[list[str], list[np.ndarray], list[tuple]] | None = None,
) -> dict:
    """Round-trip oracle accuracy (+ Wilson 95% CI) and per-group error of a latent backbone.

    Pass `clips` (from `round_trip_clips`) to judge several checkpoints on the same clips without
    reading the corpus again.
    """
    if clips is None:
        if corpus is None:
            raise ValueError("give a corpus directory or the clips")
        clips = round_trip_clips(corpus, samples, seed)
    ids, feats, programs = clips
    was_training = backbone.training
    backbone.eval()
    try:
        rec = vae_round_trip(backbone, feats)
    finally:
        backbone.train(was_training)
    verdicts = judge_clips(rec, programs)
    passed = [bool(v.accepted) for v in verdicts]
    n = len(passed)
    k = sum(passed)
    by_actions: dict[str, list[bool]] = {}
    for ok, actions in zip(passed, programs, strict=True):
        by_actions.setdefault(str(len(actions)), []).append(ok)
    return {
        "clips": n,
        "accuracy": k / max(n, 1),
        "accuracy_ci95": wilson(k, n),
        "accuracy_by_actions": {a: float(np.mean(v)) for a, v in sorted(by_actions.items())},
        "segment_pass_by_action": segment_pass_rates(verdicts),
        "group_error": group_errors(feats, rec),
        "passed_ids": [i for i, ok in zip(ids, passed, strict=True) if ok],
    }


__all__ = [
    "FEATURE_GROUPS",
    "encode_clips",
    "group_errors",
    "judge_clips",
    "round_trip_clips",
    "segment_pass_rates",
    "vae_round_trip",
    "vae_round_trip_report",
]
