"""Judge a backbone: generate for test-split prompts, then score with the evaluator and oracle.

    report = evaluate_backbone(MotionGenerator.load("mld"), corpus, load_evaluator(path))

Each judged prompt is a caption of one whole, un-mirrored test clip that has a program sidecar, at
that clip's length, so the oracle can check the motion against the program it describes.
MultiModality regenerates `mm_per_text` motions for the first `mm_texts` prompts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .evaluator import Evaluator
from .judge import Report, evaluate_generated
from .motions import write_motions


@dataclass(frozen=True)
class TestPrompt:
    text: str
    tokens: tuple[str, ...]
    length: int
    program_id: str


def test_prompts(
    corpus: Path, samples: int, seed: int = 0, split_name: str = "test"
) -> list[TestPrompt]:
    """`samples` prompts from whole clips of a split (test) with programs (fewer if it is smaller).

    Sampling settings (guidance, steps) are chosen on "val"; the figures reported are "test".
    """
    from ..data.humanml3d import load_split

    split = load_split(corpus, split_name)
    rng = np.random.default_rng(seed)
    whole = [s for s in split if s.id == s.clip_id and not s.mirrored]
    whole = [s for s in whole if (Path(corpus) / "programs" / f"{s.clip_id}.json").is_file()]
    if not whole:
        raise ValueError(
            f"{corpus}: no whole {split_name} clips with programs/<id>.json to judge against"
        )
    order = rng.permutation(len(whole))[:samples]
    out = []
    for i in order:
        s = whole[int(i)]
        cap = s.captions[int(rng.integers(len(s.captions)))]
        out.append(TestPrompt(cap.text, tuple(cap.tokens), min(s.length, 196), s.clip_id))
    return out


def generate_test_set(
    generator,
    prompts: list[TestPrompt],
    out: Path,
    *,
    seed: int = 0,
    batch: int = 32,
    mm_texts: int = 0,
    mm_per_text: int = 10,
    **sampling,
) -> Path:
    """Write a generated-motions directory for `prompts` (plus MultiModality repeats)."""
    jobs = [(p, f"g{i:05d}", seed, False) for i, p in enumerate(prompts)]
    for i, p in enumerate(prompts[:mm_texts]):
        jobs += [(p, f"g{i:05d}_mm{r}", seed + 1 + r, True) for r in range(mm_per_text - 1)]
    motions, extra = [], []
    for start in range(0, len(jobs), batch):
        chunk = jobs[start : start + batch]
        # one seed per batch; candidate streams differ by position, so motions stay distinct
        result = generator.generate(
            [p.text for p, *_ in chunk],
            [p.length for p, *_ in chunk],
            seed=chunk[0][2] * 7919 + start,
            **sampling,
        )
        for (p, mid, _, mm_only), feats in zip(chunk, result.features, strict=True):
            motions.append((mid, feats, p.text))
            entry: dict = {"program_id": p.program_id}
            if mm_only:
                entry["multimodality_only"] = True
            if p.tokens:  # otherwise the evaluator analyses the prompt itself
                entry["tokens"] = list(p.tokens)
            extra.append(entry)
    return write_motions(out, motions, extra=extra)


def evaluate_backbone(
    generator,
    corpus: Path,
    evaluator: Evaluator,
    *,
    samples: int = 1024,
    repeats: int = 20,
    seed: int = 0,
    mm_texts: int = 32,
    keep: Path | None = None,
    split: str = "test",
    **sampling,
) -> Report:
    """Generate for `samples` prompts of `split` and judge them (FID against that real split)."""
    prompts = test_prompts(corpus, samples, seed, split)
    with tempfile.TemporaryDirectory(prefix="easytune-eval-") as tmp:
        out = Path(keep) if keep is not None else Path(tmp)
        generate_test_set(generator, prompts, out, seed=seed, mm_texts=mm_texts, **sampling)
        report = evaluate_generated(evaluator, out, Path(corpus), repeats, seed, split)
    info = report.info | {
        "requested_samples": samples,  # fewer are judged when the test split is smaller
        "backbone": generator.backbone.kind,
        "checkpoint_sha256": getattr(generator.backbone, "checkpoint_sha256", None),
        "sampling": sampling or "backbone defaults",
        "split": split,
        "motions_dir": str(keep) if keep is not None else None,
    }
    return Report(report.metrics, info)


def periodic_evaluator(
    corpus: Path,
    samples: int = 128,
    seed: int = 0,
    evaluator_path: Path | None = None,
    split: str = "val",
) -> Callable:
    """For training: `fn(backbone, step) -> {"R@1": .., "FID": .., "oracle_accuracy": ..}`, on
    `split` (the validation split: what a run is watched and chosen by never touches test)."""
    from ..models.pipeline import MotionGenerator
    from ..text.encoder import load_text_encoder
    from .cli import default_evaluator
    from .evaluator import load_evaluator

    evaluator = load_evaluator(evaluator_path or default_evaluator())
    encoder = load_text_encoder()

    def run(backbone, step: int) -> dict:
        report = evaluate_backbone(
            MotionGenerator(backbone, encoder),
            corpus,
            evaluator,
            samples=samples,
            repeats=3,
            seed=seed,
            mm_texts=0,
            split=split,
        )
        out = report.as_json()
        return {k: out[k] for k in ("R@1", "FID", "oracle_accuracy") if out.get(k) is not None}

    return run
