"""Build the built-in text-motion corpus on disk, in HumanML3D's exact format.

    new_joint_vecs/<id>.npy   (T-1, 263) float32 features
    new_joints/<id>.npy       (T-1, 22, 3) float32 joints recovered from the features
    texts/<id>.txt            caption#lemma/POS ...#start#end, one per line
    programs/<id>.json        the clip's program (actions, parameters, frame spans), body scale
    Mean.npy, Std.npy         (263,) over the training split, group-averaged std
    train.txt val.txt test.txt all.txt
    corpus.json               version, config, counts, timings, quality figures

Clips are made in parallel worker processes, each clip from its own seed `(seed, index)`, so the
corpus is identical whatever the number of workers. The build writes into a temporary sibling
directory and renames it into place at the end: an interrupted build never looks complete.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ...motion.features import canonicalize_joints, features_to_joints, joints_to_features
from ...motion.normalize import compute_mean_std
from ...paths import CORPUS_ENV, corpus_cache_dir
from .captions import caption_program
from .program import program_to_dict
from .synth import sample_body, sample_program, synthesize

CORPUS_VERSION = 2  # bump whenever the synthesiser or the captions change what is built
SPLIT_FRACTIONS = {"train": 0.85, "val": 0.05, "test": 0.10}


@dataclass(frozen=True)
class CorpusConfig:
    """What a corpus build depends on; saved in corpus.json."""

    clips: int = 8000  # number of clips
    seed: int = 0  # master seed; clip i uses the generator seeded with (seed, i)
    captions_per_clip: int = 4  # whole-clip captions per clip (at least 3)

    def __post_init__(self) -> None:
        if self.clips < 20:
            raise ValueError(
                f"clips must be at least 20 (for train/val/test splits), got {self.clips}"
            )
        if self.captions_per_clip < 3:
            raise ValueError(f"captions_per_clip must be at least 3, got {self.captions_per_clip}")


@dataclass(frozen=True)
class ClipRecord:
    """What a worker reports about one clip it wrote."""

    clip_id: str
    frames: int  # feature frames
    captions: int
    roundtrip_error_m: float
    kinds: tuple[str, ...]


def clip_id(index: int) -> str:
    return f"{index:06d}"


def make_clip(index: int, config: CorpusConfig):
    """Synthesise clip `index`: program, joints (T, 22, 3), features (T-1, 263), captions."""
    rng = np.random.default_rng([config.seed, index])
    program = sample_program(rng)
    body, scale = sample_body(rng)
    program = replace(program, body_scale=scale, seed=index)
    joints = synthesize(program, body, rng)
    features = joints_to_features(joints).astype(np.float32)
    captions = caption_program(program, rng, config.captions_per_clip)
    return program, joints, features, captions


def _write_clip(root: Path, index: int, config: CorpusConfig) -> ClipRecord:
    program, joints, features, captions = make_clip(index, config)
    recovered = features_to_joints(features)
    expected = canonicalize_joints(joints)[:-1]
    error = float(np.abs(recovered - expected).max())
    cid = clip_id(index)
    np.save(root / "new_joint_vecs" / f"{cid}.npy", features)
    np.save(root / "new_joints" / f"{cid}.npy", recovered.astype(np.float32))
    (root / "texts" / f"{cid}.txt").write_text("\n".join(c.to_line() for c in captions) + "\n")
    (root / "programs" / f"{cid}.json").write_text(json.dumps(program_to_dict(program)))
    kinds = tuple(a.kind for a in program.actions)
    return ClipRecord(cid, len(features), len(captions), error, kinds)


def _worker(args: tuple[str, int, int, CorpusConfig]) -> list[ClipRecord]:
    root, start, stop, config = args
    return [_write_clip(Path(root), i, config) for i in range(start, stop)]


def _split_ids(ids: list[str], seed: int) -> dict[str, list[str]]:
    order = np.random.default_rng([seed, 7919]).permutation(len(ids))
    n_val = max(1, round(SPLIT_FRACTIONS["val"] * len(ids)))
    n_test = max(1, round(SPLIT_FRACTIONS["test"] * len(ids)))
    shuffled = [ids[i] for i in order]
    splits = {
        "test": sorted(shuffled[:n_test]),
        "val": sorted(shuffled[n_test : n_test + n_val]),
        "train": sorted(shuffled[n_test + n_val :]),
    }
    splits["all"] = sorted(ids)
    return splits


def build_corpus(
    out: Path, config: CorpusConfig = CorpusConfig(), workers: int | None = None, progress=None
) -> dict:
    """Build the corpus into `out` (replacing it) and return the corpus.json record."""
    out = Path(out)
    started = time.perf_counter()
    tmp = out.with_name(out.name + f".building-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    for sub in ("new_joint_vecs", "new_joints", "texts", "programs"):
        (tmp / sub).mkdir(parents=True)
    workers = max(1, workers or os.cpu_count() or 1)
    chunk = 50
    jobs = [
        (str(tmp), s, min(s + chunk, config.clips), config) for s in range(0, config.clips, chunk)
    ]
    records: list[ClipRecord] = []
    if workers == 1:
        for job in jobs:
            records.extend(_worker(job))
            if progress:
                progress(len(records), config.clips)
    else:
        with mp.get_context("spawn" if os.name == "nt" else "fork").Pool(workers) as pool:
            for batch in pool.imap_unordered(_worker, jobs):
                records.extend(batch)
                if progress:
                    progress(len(records), config.clips)
    records.sort(key=lambda r: r.clip_id)

    ids = [r.clip_id for r in records]
    splits = _split_ids(ids, config.seed)
    for name, split_ids in splits.items():
        (tmp / f"{name}.txt").write_text("\n".join(split_ids) + "\n")
    train = (np.load(tmp / "new_joint_vecs" / f"{cid}.npy") for cid in splits["train"])
    mean, std = compute_mean_std(train)
    np.save(tmp / "Mean.npy", mean)
    np.save(tmp / "Std.npy", std)

    kinds = Counter(k for r in records for k in r.kinds)
    frames = np.array([r.frames for r in records])
    info = {
        "name": "easytune-builtin",
        "version": CORPUS_VERSION,
        "config": asdict(config),
        "clips": len(records),
        "action_types": len(kinds),
        "action_counts": dict(sorted(kinds.items())),
        "compositions": int(sum(len(r.kinds) > 1 for r in records)),
        "captions": int(sum(r.captions for r in records)),
        "frames_min": int(frames.min()),
        "frames_max": int(frames.max()),
        "seconds_mean": float(frames.mean() / 20.0),
        "splits": {k: len(v) for k, v in splits.items()},
        "roundtrip_max_error_m": float(max(r.roundtrip_error_m for r in records)),
        "build_seconds": round(time.perf_counter() - started, 2),
        "workers": workers,
    }
    (tmp / "corpus.json").write_text(json.dumps(info, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return info


def read_info(root: Path) -> dict:
    """The corpus.json of a built corpus; ValueError if `root` is not one."""
    path = Path(root) / "corpus.json"
    if not path.is_file():
        raise ValueError(
            f"{root} is not a built corpus (no corpus.json); run `easytune-engine data build`"
        )
    return json.loads(path.read_text())


def write_info(root: Path, info: dict) -> None:
    """Replace corpus.json atomically."""
    path = Path(root) / "corpus.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, path)


def default_corpus_dir(config: CorpusConfig = CorpusConfig()) -> Path:
    """$EASYTUNE_CORPUS if set, else the cache directory for this config."""
    if os.environ.get(CORPUS_ENV):
        return Path(os.environ[CORPUS_ENV]).expanduser()
    return corpus_cache_dir() / f"builtin-v{CORPUS_VERSION}-{config.clips}-s{config.seed}"


def ensure_corpus(config: CorpusConfig = CorpusConfig(), progress=None) -> Path:
    """The default corpus directory, built first if it is not there yet."""
    root = default_corpus_dir(config)
    info_path = root / "corpus.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        if info.get("version") == CORPUS_VERSION:
            return root
    build_corpus(root, config, progress=progress)
    return root
