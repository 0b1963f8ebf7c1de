"""Loader for a HumanML3D-format directory (a user's own copy, or the built-in procedural corpus).

Layout (see docs/motion.md, "HumanML3D on disk"):

    new_joint_vecs/<id>.npy   (T, 263) float32 features
    new_joints/<id>.npy       (T, 22, 3) joint positions (optional; read with load_joints=True)
    texts/<id>.txt            one caption per line: caption#word/POS word/POS ...#start#end
    Mean.npy, Std.npy         (263,)
    train.txt val.txt test.txt all.txt   one id per line; 'M' prefix = mirrored copy

Semantics follow the T2M / MDM loaders (EricGuo5513/text-to-motion `Text2MotionDatasetV2`,
GuyTevet/motion-diffusion-model `data_loaders/humanml/data/dataset.py`):

- a clip is kept when `min_frames <= T <= max_clip_frames` (T2M: 40 <= T < 200); a clip outside that
  range is dropped together with its sub-spans, and its text file is not read;
- a caption with `start#end` = `0.0#0.0` (NaN reads as 0.0) describes the whole clip; any other span
  becomes its own sample `motion[int(start*20):int(end*20)]`, filtered by the same length rule. Our
  sub-span id is `<id>#<first>-<stop>` in frames (T2M used a random letter prefix); captions whose
  spans select the same frames share one sample (T2M made one sample per caption line);
- a clip with no whole-clip caption contributes only its sub-spans;
- drawing a training item (`draw_item`): pick one caption at random, crop the length to a multiple
  of `unit_length` (at most `max_frames`, 196), at a random offset, normalise with Mean/Std, pad
  with zeros to `max_frames`.

Unlike T2M, which skips missing clips silently (or crashes), every skipped clip or span is counted
by reason in `HumanML3DSplit.skipped`, and a malformed file raises `DatasetError` naming the file.
Samples keep the file order of the split (T2M sorted them by length).
Reading and validating the individual files is in `humanml3d_files.py`.

    split = load_split("~/HumanML3D", "train")
    print(len(split), split.skip_summary())
    loader = torch.utils.data.DataLoader(HumanML3DDataset(split, seed=0), batch_size=64,
                                         shuffle=True, collate_fn=collate)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch

from .humanml3d_files import (
    FEATURE_DIM,
    Caption,
    DatasetError,
    check_root,
    mean_std,
    read_captions,
    read_features,
    read_joints,
    read_split_ids,
)

FPS = 20

Split = Literal["train", "val", "test", "all"]
SPLITS: tuple[str, ...] = get_args(Split)

MIRROR_PREFIX = "M"

# Reasons a clip or sub-span is left out; keys of `HumanML3DSplit.skipped`.
SKIP_DUPLICATE = "listed twice in the split file"
SKIP_MIRRORED = "mirrored copy excluded (include_mirrored=False)"
SKIP_NO_FEATURES = "no features file in new_joint_vecs/"
SKIP_NO_TEXT = "no text file in texts/"
SKIP_TOO_SHORT = "clip shorter than min_frames"
SKIP_TOO_LONG = "clip longer than max_clip_frames"
SKIP_SPAN_TOO_SHORT = "sub-span shorter than min_frames"
SKIP_SPAN_TOO_LONG = "sub-span longer than max_clip_frames"
SKIP_NO_WHOLE_CAPTION = "no whole-clip caption (only its sub-spans are samples)"


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, eq=False)
class HumanML3DSample:
    """One sample: a whole clip, or a captioned sub-span of one. Features are not normalised."""

    id: str  # '<clip id>' for a whole clip, '<clip id>#<first>-<stop>' (frames) for a sub-span
    clip_id: str  # the file stem in new_joint_vecs/ the frames come from
    first_frame: int  # offset of features[0] within the clip
    features: np.ndarray  # (T, 263) float32, a read-only view into the clip's array
    captions: tuple[Caption, ...]
    joints: np.ndarray | None = None  # (T, 22, 3) float32 when loaded and present

    @property
    def length(self) -> int:
        return int(self.features.shape[0])

    @property
    def mirrored(self) -> bool:
        return self.clip_id.startswith(MIRROR_PREFIX)


@dataclass(frozen=True)
class LoadConfig:
    """How a split was loaded and how training items are drawn from it."""

    min_frames: int = 40  # shorter clips and sub-spans are dropped (T2M: 40; KIT: 24)
    max_clip_frames: int = 199  # longer clips and sub-spans are dropped (T2M keeps T < 200)
    max_frames: int = 196  # drawn items are cropped to at most this many frames and padded to it
    unit_length: int = 4  # drawn lengths are multiples of this (the evaluator downsamples by 4)
    max_text_tokens: int = 20  # drawn token lists are cut to this many tokens
    include_mirrored: bool = True  # load the 'M'-prefixed mirrored copies
    load_joints: bool = False  # also read new_joints/<id>.npy where present

    def __post_init__(self) -> None:
        for name in (
            "min_frames",
            "max_clip_frames",
            "max_frames",
            "unit_length",
            "max_text_tokens",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_clip_frames < self.min_frames:
            raise ValueError(
                f"max_clip_frames ({self.max_clip_frames}) must be >= min_frames "
                f"({self.min_frames})"
            )
        if self.max_frames < self.unit_length:
            raise ValueError(
                f"max_frames ({self.max_frames}) must be >= unit_length ({self.unit_length})"
            )


@dataclass(frozen=True, eq=False)
class HumanML3DSplit:
    """The samples of one split, the directory's Mean/Std, and what was skipped and why."""

    root: Path
    split: str
    config: LoadConfig
    samples: tuple[HumanML3DSample, ...]
    mean: np.ndarray  # (263,) float32, from Mean.npy
    std: np.ndarray  # (263,) float32, from Std.npy
    skipped: Mapping[str, tuple[str, ...]]  # reason -> ids (clip ids, or sub-span ids)
    missing_joints: tuple[str, ...] = ()  # clip ids without new_joints/ file (load_joints=True)
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {s.id: i for i, s in enumerate(self.samples)})

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> HumanML3DSample:
        return self.samples[index]

    def __iter__(self) -> Iterator[HumanML3DSample]:
        return iter(self.samples)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.samples]

    def by_id(self, sample_id: str) -> HumanML3DSample:
        try:
            return self.samples[self._index[sample_id]]
        except KeyError:
            raise KeyError(
                f"no sample {sample_id!r} in the {self.split} split of {self.root}"
            ) from None

    def __repr__(self) -> str:
        skipped = sum(len(ids) for ids in self.skipped.values())
        return (
            f"HumanML3DSplit(root={str(self.root)!r}, split={self.split!r}, "
            f"samples={len(self.samples)}, skipped={skipped})"
        )

    def skip_summary(self, examples: int = 3) -> str:
        """One line per skip reason: count, reason and the first few ids, e.g. for a log."""
        if not self.skipped:
            return "nothing skipped"
        lines = []
        for reason, ids in self.skipped.items():
            more = ", ..." if len(ids) > examples else ""
            lines.append(f"{len(ids):6d}  {reason} (e.g. {', '.join(ids[:examples])}{more})")
        return "\n".join(lines)

    def draw(
        self,
        index: int,
        rng: np.random.Generator,
        *,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
    ) -> TrainingItem:
        """A training item from sample `index` (normalised with Mean.npy/Std.npy by default)."""
        return draw_item(
            self.samples[index],
            rng,
            mean=self.mean if mean is None else mean,
            std=self.std if std is None else std,
            max_frames=self.config.max_frames,
            unit_length=self.config.unit_length,
            max_text_tokens=self.config.max_text_tokens,
        )


@dataclass(frozen=True, eq=False)
class TrainingItem:
    """One drawn (motion, caption) pair, normalised and padded."""

    id: str
    features: np.ndarray  # (max_frames, 263) float32, normalised, zeros after `length`
    length: int
    mask: np.ndarray  # (max_frames,) bool, True on the first `length` frames
    text: str
    tokens: tuple[str, ...]  # at most max_text_tokens `word/POS` tokens


@dataclass(frozen=True, eq=False)
class Batch:
    """Collated training items."""

    features: torch.Tensor  # (B, T_max, 263) float32
    lengths: torch.Tensor  # (B,) int64
    mask: torch.Tensor  # (B, T_max) bool
    texts: list[str]
    tokens: list[list[str]]
    ids: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The same batch with its tensors on `device` (texts, tokens and ids stay)."""
        return replace(
            self,
            features=self.features.to(device, non_blocking=non_blocking),
            lengths=self.lengths.to(device, non_blocking=non_blocking),
            mask=self.mask.to(device, non_blocking=non_blocking),
        )


# ---------------------------------------------------------------------------------------------
# Loading a split


def load_split(
    root: str | Path,
    split: Split,
    *,
    min_frames: int = 40,
    max_clip_frames: int = 199,
    max_frames: int = 196,
    unit_length: int = 4,
    max_text_tokens: int = 20,
    include_mirrored: bool = True,
    load_joints: bool = False,
) -> HumanML3DSplit:
    """Load every sample of `<root>/<split>.txt`; see the module docstring for the rules.

    Raises `DatasetError` for a missing or malformed directory/file, or when the split file lists
    no loadable clip; clips that are merely absent or out of range are counted in `skipped`.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    config = LoadConfig(
        min_frames=min_frames,
        max_clip_frames=max_clip_frames,
        max_frames=max_frames,
        unit_length=unit_length,
        max_text_tokens=max_text_tokens,
        include_mirrored=include_mirrored,
        load_joints=load_joints,
    )
    root = Path(root).expanduser()
    check_root(root)
    mean, std = mean_std(root)
    split_path = root / f"{split}.txt"
    ids = read_split_ids(split_path)
    motion_dir, text_dir, joints_dir = root / "new_joint_vecs", root / "texts", root / "new_joints"
    for d in (motion_dir, text_dir):
        if not d.is_dir():
            raise DatasetError(d, "missing directory")

    # One directory listing each instead of a stat per clip (fast on network file systems).
    have_motion = {p.stem for p in motion_dir.glob("*.npy")}
    have_text = {p.stem for p in text_dir.glob("*.txt")}
    have_joints = {p.stem for p in joints_dir.glob("*.npy")} if load_joints else set()

    def fits(n: int) -> bool:
        return config.min_frames <= n <= config.max_clip_frames

    samples: list[HumanML3DSample] = []
    skipped: dict[str, list[str]] = {}
    missing_joints: list[str] = []
    seen: set[str] = set()

    def skip(reason: str, sample_id: str) -> None:
        skipped.setdefault(reason, []).append(sample_id)

    for clip_id in ids:
        if clip_id in seen:
            skip(SKIP_DUPLICATE, clip_id)
            continue
        seen.add(clip_id)
        if not include_mirrored and clip_id.startswith(MIRROR_PREFIX):
            skip(SKIP_MIRRORED, clip_id)
            continue
        if clip_id not in have_motion:
            skip(SKIP_NO_FEATURES, clip_id)
            continue
        if clip_id not in have_text:
            skip(SKIP_NO_TEXT, clip_id)
            continue
        motion = read_features(motion_dir / f"{clip_id}.npy")
        n = motion.shape[0]
        if not fits(n):  # T2M drops the clip together with its sub-spans
            skip(SKIP_TOO_SHORT if n < config.min_frames else SKIP_TOO_LONG, clip_id)
            continue
        joints = None
        if load_joints:
            if clip_id in have_joints:
                joints = read_joints(joints_dir / f"{clip_id}.npy", n)
            else:
                missing_joints.append(clip_id)

        whole: list[Caption] = []
        spans: dict[tuple[int, int], list[Caption]] = {}  # (first, stop) frames -> captions
        for caption, start, end in read_captions(text_dir / f"{clip_id}.txt"):
            if start == 0.0 and end == 0.0:
                whole.append(caption)
                continue
            first, stop = min(int(start * FPS), n), min(int(end * FPS), n)
            span_id = f"{clip_id}#{first}-{stop}"
            if not fits(stop - first):
                too_short = stop - first < config.min_frames
                skip(SKIP_SPAN_TOO_SHORT if too_short else SKIP_SPAN_TOO_LONG, span_id)
                continue
            spans.setdefault((first, stop), []).append(caption)

        if whole:
            samples.append(HumanML3DSample(clip_id, clip_id, 0, motion, tuple(whole), joints))
        else:
            skip(SKIP_NO_WHOLE_CAPTION, clip_id)
        for (first, stop), captions in spans.items():
            samples.append(
                HumanML3DSample(
                    id=f"{clip_id}#{first}-{stop}",
                    clip_id=clip_id,
                    first_frame=first,
                    features=motion[first:stop],
                    captions=tuple(captions),
                    joints=None if joints is None else joints[first:stop],
                )
            )

    frozen_skips = {reason: tuple(v) for reason, v in skipped.items()}
    if not samples:
        detail = "; ".join(f"{len(v)} {r}" for r, v in frozen_skips.items()) or "it is empty"
        raise DatasetError(split_path, f"split lists no loadable clips ({detail})")
    return HumanML3DSplit(
        root=root,
        split=split,
        config=config,
        samples=tuple(samples),
        mean=mean,
        std=std,
        skipped=frozen_skips,
        missing_joints=tuple(missing_joints),
    )


# ---------------------------------------------------------------------------------------------
# Drawing training items


def crop_length(length: int, rng: np.random.Generator, *, max_frames: int, unit_length: int) -> int:
    """The T2M length coin: a multiple of `unit_length`, at most `max_frames`.

    T2M draws `coin2 = choice(['single', 'single', 'double'])` when unit_length < 10: 'single'
    floors the length to a multiple of the unit, 'double' (probability 1/3) takes one unit less,
    so the model also sees motions that end early. A length shorter than two units stays 'single'.
    """
    units = min(length, max_frames) // unit_length
    if units == 0:  # shorter than one unit (only with min_frames < unit_length): keep it whole
        return min(length, max_frames)
    if unit_length < 10 and units >= 2 and rng.integers(3) == 2:  # 'double'
        units -= 1
    return units * unit_length


def draw_item(
    sample: HumanML3DSample,
    rng: np.random.Generator,
    *,
    mean: np.ndarray,
    std: np.ndarray,
    max_frames: int = 196,
    unit_length: int = 4,
    max_text_tokens: int = 20,
) -> TrainingItem:
    """One (motion, caption) pair: random caption, random unit-length crop, normalised, padded."""
    if mean.shape != (FEATURE_DIM,) or std.shape != (FEATURE_DIM,):
        raise ValueError(
            f"mean and std must have shape ({FEATURE_DIM},), got {mean.shape}, {std.shape}"
        )
    caption = sample.captions[int(rng.integers(len(sample.captions)))]
    length = crop_length(sample.length, rng, max_frames=max_frames, unit_length=unit_length)
    offset = int(rng.integers(sample.length - length + 1))
    features = np.zeros((max_frames, FEATURE_DIM), dtype=np.float32)
    window = sample.features[offset : offset + length]
    features[:length] = (window - mean) / std
    mask = np.zeros(max_frames, dtype=bool)
    mask[:length] = True
    return TrainingItem(
        id=sample.id,
        features=features,
        length=length,
        mask=mask,
        text=caption.text,
        tokens=caption.tokens[:max_text_tokens],
    )


def collate(items: Sequence[TrainingItem]) -> Batch:
    """Stack items into a `Batch`, padding with zeros to the longest item's padded length."""
    if not items:
        raise ValueError("cannot collate an empty list of items")
    t_max = max(item.features.shape[0] for item in items)
    features = np.zeros((len(items), t_max, FEATURE_DIM), dtype=np.float32)
    for b, item in enumerate(items):
        features[b, : item.features.shape[0]] = item.features
    lengths = torch.tensor([item.length for item in items], dtype=torch.int64)
    mask = torch.arange(t_max)[None, :] < lengths[:, None]  # (B, T_max)
    return Batch(
        features=torch.from_numpy(features),
        lengths=lengths,
        mask=mask,
        texts=[item.text for item in items],
        tokens=[list(item.tokens) for item in items],
        ids=[item.id for item in items],
    )


def sample_batch(
    split: HumanML3DSplit,
    batch_size: int,
    rng: np.random.Generator,
    *,
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
) -> Batch:
    """A batch of `batch_size` samples drawn uniformly with replacement, collated."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    indices = rng.integers(len(split), size=batch_size)
    return collate([split.draw(int(i), rng, mean=mean, std=std) for i in indices])


class HumanML3DDataset(torch.utils.data.Dataset[TrainingItem]):
    """A map-style torch Dataset over a split; use with `collate_fn=collate`.

    Item `i` in epoch `e` is drawn with `np.random.default_rng([seed, e, i])`, so the result does
    not depend on the number of DataLoader workers or the order items are fetched in. Call
    `set_epoch` each epoch to get fresh crops and captions.
    """

    def __init__(
        self,
        split: HumanML3DSplit,
        *,
        seed: int = 0,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
    ) -> None:
        self.split = split
        self.seed = seed
        self.epoch = 0
        self.mean = split.mean if mean is None else np.asarray(mean, dtype=np.float32)
        self.std = split.std if std is None else np.asarray(std, dtype=np.float32)
        for name, stat in (("mean", self.mean), ("std", self.std)):
            if stat.shape != (FEATURE_DIM,):
                raise ValueError(f"{name} must have shape ({FEATURE_DIM},), got {stat.shape}")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> TrainingItem:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return self.split.draw(index, rng, mean=self.mean, std=self.std)
