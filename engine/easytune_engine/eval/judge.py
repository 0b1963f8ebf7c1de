"""Judging motions: embed with the evaluator, compute the metrics, build the report.

`evaluate_real` gives the papers' real-data row for a HumanML3D directory; `evaluate_generated`
judges a generated-motions directory (`motions.py`) against a real test split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from easytune_engine.eval import metrics as M
from easytune_engine.eval.evaluator import Evaluator
from easytune_engine.eval.motions import Motion, read_motions
from easytune_engine.eval.vectorizer import prompt_tokens

KEYS = ("R@1", "R@2", "R@3", "FID", "MM-Dist", "Diversity", "MultiModality", "oracle_accuracy")

# ---------------------------------------------------------------------------------------------
# Embedding


@torch.no_grad()
def embed_features(model: Evaluator, motions: list[np.ndarray], batch: int = 128) -> np.ndarray:
    """Un-normalised (T_i, 263) motions -> (N, D) embeddings."""
    out = []
    for s in range(0, len(motions), batch):
        chunk = motions[s : s + batch]
        lengths = torch.tensor([len(m) for m in chunk])
        x = torch.zeros(len(chunk), int(lengths.max()), 263)
        for i, m in enumerate(chunk):
            x[i, : len(m)] = torch.from_numpy(np.array(m, dtype=np.float32))
        out.append(model.embed_motion(x, lengths))
    return torch.cat(out).numpy()


@torch.no_grad()
def embed_texts(model: Evaluator, tokens: list[list[str]], batch: int = 256) -> np.ndarray:
    return torch.cat(
        [model.embed_text(tokens[s : s + batch]) for s in range(0, len(tokens), batch)]
    ).numpy()


def _crop(length: int, rng: np.random.Generator) -> tuple[int, int]:
    """T2M's evaluation crop: a multiple of 4 frames (at most 196) at a random offset."""
    n = min(length, 196) // 4 * 4
    start = int(rng.integers(length - n + 1))
    return start, n


def draw_real(split, rng: np.random.Generator) -> tuple[list[np.ndarray], list[list[str]]]:
    """One T2M-style draw of a split: per sample a random caption and a random 4-frame crop."""
    feats, tokens = [], []
    for s in split:
        cap = s.captions[int(rng.integers(len(s.captions)))]
        start, n = _crop(s.length, rng)
        feats.append(s.features[start : start + n])
        tokens.append(list(cap.tokens) or prompt_tokens(cap.text))
    return feats, tokens


# ---------------------------------------------------------------------------------------------
# Judging


@dataclass(frozen=True)
class Report:
    """The metrics (name -> Estimate, or None where not applicable) and what was judged."""

    metrics: dict[str, M.Estimate | None]
    info: dict

    def as_json(self) -> dict:
        out: dict = {}
        for key in KEYS:
            est = self.metrics.get(key)
            out[key] = None if est is None else round(est.mean, 6)
            out[f"{key}_ci"] = None if est is None else round(est.ci, 6)
        return out | self.info

    def table(self) -> str:
        head = ["R@1", "R@2", "R@3", "FID", "MM-Dist", "Diversity", "MModality", "Oracle"]
        cells = []
        for key in KEYS:
            est = self.metrics.get(key)
            cells.append("N/A" if est is None else f"{est.mean:.3f}±{est.ci:.3f}")
        widths = [max(len(h), len(c)) for h, c in zip(head, cells, strict=True)]
        line = "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"
        rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        row = "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"
        return "\n".join([line, rule, row])


def oracle_verdicts(items: list[tuple[np.ndarray, object]]) -> list[bool]:
    """Whether the corpus oracle accepts each (joints (T, 22, 3), program) pair."""
    from easytune_engine.data.corpus.oracle import judge

    verdicts = []
    for joints, program in items:
        try:
            verdicts.append(bool(judge(joints, program.actions).accepted))
        except ValueError:  # e.g. too short to hold every action: not what was asked for
            verdicts.append(False)
    return verdicts


def _oracle(items: list[tuple[np.ndarray, object]]) -> M.Estimate | None:
    """Share of (joints, program) pairs the corpus oracle accepts; None when none has a program."""
    verdicts = oracle_verdicts(items)
    return M.accuracy(verdicts) if verdicts else None


def _repeat_rows(
    draws, ref_mu, ref_cov, repeats: int, rng: np.random.Generator, bootstrap_fid: bool = False
) -> dict[str, M.Estimate]:
    """R@1-3, FID, MM-Dist, Diversity over `repeats` draws of (text, motion) embeddings.

    Each repetition regroups the pairs at random for R-Precision. bootstrap_fid: for a fixed set
    (generated motions), repetitions after the first fit FID on a bootstrap resample of it.
    """
    rows: dict[str, list[float]] = {
        k: [] for k in ("R@1", "R@2", "R@3", "FID", "MM-Dist", "Diversity")
    }
    for r in range(repeats):
        t, m = draws(r)
        if len(t) >= M.GROUP:
            order = rng.permutation(len(t))
            for k, v in enumerate(M.r_precision(t[order], m[order], 3)):
                rows[f"R@{k + 1}"].append(float(v))
        m_fid = m[rng.choice(len(m), len(m))] if bootstrap_fid and r > 0 else m
        rows["FID"].append(M.frechet_distance(*M.gaussian(m_fid), ref_mu, ref_cov))
        rows["MM-Dist"].append(M.mm_dist(t, m))
        rows["Diversity"].append(M.diversity(m, rng))
    return {k: M.confidence(v) for k, v in rows.items() if v}


def evaluate_real(
    model: Evaluator, root: Path, split: str = "test", repeats: int = 20, seed: int = 0
) -> Report:
    """The real-data row: `split` of a HumanML3D directory, FID against its train split."""
    from easytune_engine.data.humanml3d import load_split

    data = load_split(root, split, load_joints=True)
    ref_split = load_split(root, "train") if (root / "train.txt").is_file() else data
    rng = np.random.default_rng(seed)
    ref_feats, _ = draw_real(ref_split, rng)
    ref_mu, ref_cov = M.gaussian(embed_features(model, ref_feats))

    def draws(r: int):
        feats, tokens = draw_real(data, rng)
        return embed_texts(model, tokens), embed_features(model, feats)

    metrics: dict[str, M.Estimate | None] = dict(_repeat_rows(draws, ref_mu, ref_cov, repeats, rng))
    metrics["MultiModality"] = None  # one motion per text in real data
    metrics["oracle_accuracy"] = _oracle(_real_programs(root, data))
    info = {
        "source": "humanml3d",
        "motions_dir": str(root),
        "split": split,
        "samples": len(data),
        "fid_reference": f"{root} train split" if ref_split is not data else "itself",
        "repeats": repeats,
    }
    return Report(metrics, info)


def _real_programs(root: Path, data) -> list[tuple[np.ndarray, object]]:
    """Whole-clip samples with a corpus program sidecar (sub-spans hold only part of one)."""
    from easytune_engine.data.corpus.program import program_from_dict
    from easytune_engine.motion.features import features_to_joints

    items = []
    for s in data:
        path = root / "programs" / f"{s.clip_id}.json"
        if s.id != s.clip_id or not path.is_file():
            continue
        joints = s.joints if s.joints is not None else features_to_joints(s.features)
        items.append((joints, program_from_dict(json.loads(path.read_text()))))
    return items


def evaluate_generated(
    model: Evaluator,
    root: Path,
    corpus: Path,
    repeats: int = 20,
    seed: int = 0,
    split: str = "test",
) -> Report:
    """A generated-motions directory, FID against the real `split` (test) of `corpus`."""
    from easytune_engine.data.humanml3d import load_split
    from easytune_engine.motion.features import features_to_joints

    every: list[Motion] = read_motions(root, corpus)
    motions = [m for m in every if not m.multimodality_only]
    if len(motions) < 2:
        raise ValueError(f"{root}: need at least 2 motions to judge, got {len(motions)}")
    rng = np.random.default_rng(seed)
    real = load_split(corpus, split)
    ref_feats, _ = draw_real(real, rng)
    ref_mu, ref_cov = M.gaussian(embed_features(model, ref_feats))
    tokens = [list(m.tokens) if m.tokens else prompt_tokens(m.text) for m in motions]
    text_emb = embed_texts(model, tokens)
    motion_emb = embed_features(model, [m.features for m in motions])

    def draws(r: int):
        return text_emb, motion_emb  # a fixed set: repetitions regroup and resample it

    metrics: dict[str, M.Estimate | None] = dict(
        _repeat_rows(draws, ref_mu, ref_cov, repeats, rng, bootstrap_fid=True)
    )
    for key in ("R@1", "R@2", "R@3"):
        metrics.setdefault(key, None)  # fewer than 32 motions
    extra = [m for m in every if m.multimodality_only]
    extra_emb = embed_features(model, [m.features for m in extra]) if extra else motion_emb[:0]
    metrics["MultiModality"] = _multimodality(
        motions + extra, np.concatenate([motion_emb, extra_emb]), repeats, rng
    )
    metrics["oracle_accuracy"] = _oracle(
        [
            (m.joints if m.joints is not None else features_to_joints(m.features), m.program)
            for m in motions
            if m.program is not None
        ]
    )
    info = {
        "source": "generated",
        "motions_dir": str(root),
        "samples": len(motions),
        "fid_reference": f"{corpus} {split} split",
        "repeats": repeats,
        "oracle_judged": sum(m.program is not None for m in motions),
    }
    return Report(metrics, info)


def _multimodality(motions: list[Motion], emb: np.ndarray, repeats: int, rng) -> M.Estimate | None:
    """Over texts with >= 2 generations (up to 100 texts, equal counts), else None."""
    by_text: dict[str, list[int]] = {}
    for i, m in enumerate(motions):
        by_text.setdefault(m.text, []).append(i)
    groups = [g for g in by_text.values() if len(g) >= 2][:100]
    if not groups:
        return None
    n = min(len(g) for g in groups)
    stacked = np.stack([emb[g[:n]] for g in groups])  # (texts, n, D)
    return M.repeat(lambda r: M.multimodality(stacked, r), repeats, int(rng.integers(1 << 31)))
