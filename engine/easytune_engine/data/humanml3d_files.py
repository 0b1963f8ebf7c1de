"""Reading and validating the files of a HumanML3D-format directory (see `humanml3d.py`).

Every reader checks shape, dtype and finiteness and raises `DatasetError` naming the file and the
problem; arrays come back float32 and read-only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FEATURE_DIM = 263
NUM_JOINTS = 22


class DatasetError(ValueError):
    """A HumanML3D directory or file is missing or malformed; the message names the path."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


@dataclass(frozen=True)
class Caption:
    """One caption line: the sentence and its `word/POS` tokens."""

    text: str
    tokens: tuple[str, ...]


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:  # truncated file, pickle/object array, not .npy
        raise DatasetError(path, f"cannot read as a .npy array ({e})") from e


def _check_finite(path: Path, array: np.ndarray, what: str) -> None:
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        raise DatasetError(path, f"{what}: NaN or inf at index {tuple(bad.tolist())}")


def _read_stat(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(path, f"missing {what} file")
    array = _load_npy(path)
    if array.shape != (FEATURE_DIM,):
        raise DatasetError(path, f"{what} must have shape ({FEATURE_DIM},), got {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise DatasetError(path, f"{what} must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float32)
    _check_finite(path, array, what)
    return array


def check_root(root: Path) -> None:
    if not root.is_dir():
        raise DatasetError(root, "HumanML3D directory does not exist (or is not a directory)")


def mean_std(root: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate `Mean.npy` and `Std.npy`: shape (263,), finite, Std > 0; float32."""
    root = Path(root).expanduser()
    check_root(root)
    mean = _read_stat(root / "Mean.npy", "Mean")
    std = _read_stat(root / "Std.npy", "Std")
    if not (std > 0).all():
        i = int(np.argmax(~(std > 0)))
        raise DatasetError(
            root / "Std.npy", f"Std must be > 0 everywhere, got {std[i]} at index {i}"
        )
    mean.setflags(write=False)
    std.setflags(write=False)
    return mean, std


def read_features(path: Path) -> np.ndarray:
    x = _load_npy(path)
    if x.ndim != 2 or x.shape[1] != FEATURE_DIM:
        raise DatasetError(path, f"features must have shape (T, {FEATURE_DIM}), got {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise DatasetError(path, f"features must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    _check_finite(path, x, "features")
    x.setflags(write=False)
    return x


def read_joints(path: Path, num_frames: int) -> np.ndarray:
    j = _load_npy(path)
    if j.shape != (num_frames, NUM_JOINTS, 3):
        raise DatasetError(
            path,
            f"joints must have shape ({num_frames}, {NUM_JOINTS}, 3) to match the features, "
            f"got {j.shape}",
        )
    j = j.astype(np.float32, copy=False)
    _check_finite(path, j, "joints")
    j.setflags(write=False)
    return j


def read_split_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(path, "missing split file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(path, f"cannot read split file ({e})") from e
    return [line.strip() for line in text.splitlines() if line.strip()]


def _parse_time(path: Path, lineno: int, value: str, what: str) -> float:
    try:
        t = float(value)
    except ValueError:
        raise DatasetError(
            path, f"line {lineno}: {what} time {value!r} is not a number (seconds)"
        ) from None
    if math.isnan(t):  # T2M reads NaN as 0.0
        return 0.0
    if math.isinf(t) or t < 0:
        raise DatasetError(path, f"line {lineno}: {what} time {value!r} must be finite and >= 0")
    return t


def read_captions(path: Path) -> list[tuple[Caption, float, float]]:
    """Parse a texts/<id>.txt file into (caption, start s, end s); blank lines are ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(path, f"cannot read text file ({e})") from e
    out: list[tuple[Caption, float, float]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        fields = line.split("#")
        if len(fields) != 4:
            raise DatasetError(
                path,
                f"line {lineno}: expected 4 '#'-separated fields caption#tokens#start#end, "
                f"got {len(fields)}: {line[:80]!r}",
            )
        caption, tokens, start_s, end_s = fields
        caption = caption.strip()
        if not caption:
            raise DatasetError(path, f"line {lineno}: empty caption")
        start = _parse_time(path, lineno, start_s, "start")
        end = _parse_time(path, lineno, end_s, "end")
        if end < start:
            raise DatasetError(path, f"line {lineno}: end {end_s!r} is before start {start_s!r}")
        out.append((Caption(caption, tuple(tokens.split())), start, end))
    if not out:
        raise DatasetError(path, "text file has no captions (empty)")
    return out
