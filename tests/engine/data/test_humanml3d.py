"""Tests for the HumanML3D-format loader, on tiny directories written into tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from easytune_engine.data import humanml3d as h
from easytune_engine.data.humanml3d import DatasetError

D = h.FEATURE_DIM
TOKENS = "a/DET person/NOUN walk/VERB forward/ADV"

# clip id -> number of frames; a missing entry ('000006') has no features file.
CLIP_FRAMES = {
    "000001": 120,
    "M000001": 120,  # mirrored copy
    "000002": 30,  # too short
    "000003": 250,  # too long: dropped together with its (fitting) sub-span
    "000004": 199,  # kept; drawn items are cropped to 196
    "000005": 200,  # too long (T2M keeps T < 200)
    "000007": 100,  # only a sub-span caption
    "000008": 40,  # exactly min_frames; whole-clip caption written as nan#nan
}
CAPTIONS = {
    "000001": [
        f"a person walks forward#{TOKENS}#0.0#0.0",
        f"someone strolls ahead#{TOKENS}#0.0#0.0",
        f"a person takes steps#{TOKENS}#1.0#4.0",  # frames 20:80
        f"the same steps again#{TOKENS}#1.0#4.0",  # same frames: merged into that sample
        f"a tiny part#{TOKENS}#0.5#1.5",  # 20 frames: too short
    ],
    "M000001": [f"a person walks forward mirrored#{TOKENS}#0.0#0.0"],
    "000002": [f"too short#{TOKENS}#0.0#0.0"],
    "000003": [f"too long#{TOKENS}#0.0#0.0", f"a part of it#{TOKENS}#1.0#5.0"],
    "000004": [f"a long walk#{' '.join(['walk/VERB'] * 25)}#0.0#0.0"],  # 25 tokens
    "000005": [f"also too long#{TOKENS}#0.0#0.0"],
    "000006": [f"no features#{TOKENS}#0.0#0.0"],
    "000007": [f"the start#{TOKENS}#0.0#3.0", "", f"the odd span#{TOKENS}#1.15#3.35"],
    "000008": [f"a short clip#{TOKENS}#nan#nan"],
}
TRAIN = ["000001", "M000001", "000002", "000003", "000004", "000005", "000006", "000007", "000008"]
TRAIN_IDS = [
    "000001",
    "000001#20-80",
    "M000001",
    "000004",
    "000007#0-60",
    f"000007#{int(1.15 * 20)}-{int(3.35 * 20)}",
    "000008",
]


def write_dir(root: Path, *, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    for clip_id, n in CLIP_FRAMES.items():
        np.save(root / "new_joint_vecs" / f"{clip_id}.npy", rng.normal(size=(n, D)).astype("f4"))
    for clip_id, lines in CAPTIONS.items():
        (root / "texts" / f"{clip_id}.txt").write_text("\n".join(lines) + "\n")
    np.save(root / "Mean.npy", rng.normal(size=D).astype("f4"))
    np.save(root / "Std.npy", rng.uniform(0.5, 2.0, size=D).astype("f4"))
    for split, ids in {
        "train": TRAIN,
        "val": ["000002", "000006"],  # nothing loadable
        "test": ["000004", "000008"],
        "all": TRAIN,
    }.items():
        (root / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_dir(tmp_path / "HumanML3D")


def raw(root: Path, clip_id: str) -> np.ndarray:
    return np.load(root / "new_joint_vecs" / f"{clip_id}.npy")


# ---------------------------------------------------------------------------------------------
# Loading


def test_split_lists_expected_samples(root: Path) -> None:
    split = h.load_split(root, "train")
    assert split.ids == TRAIN_IDS
    assert h.load_split(root, "test").ids == ["000004", "000008"]
    assert split.skipped == {
        h.SKIP_SPAN_TOO_SHORT: ("000001#10-30",),
        h.SKIP_TOO_SHORT: ("000002",),
        h.SKIP_TOO_LONG: ("000003", "000005"),
        h.SKIP_NO_FEATURES: ("000006",),
        h.SKIP_NO_WHOLE_CAPTION: ("000007",),
    }
    assert "no features file in new_joint_vecs/ (e.g. 000006)" in split.skip_summary()
    assert repr(split).endswith("samples=7, skipped=6)")


def test_whole_clips_and_captions(root: Path) -> None:
    split = h.load_split(root, "train")
    s = split.by_id("000001")
    np.testing.assert_array_equal(s.features, raw(root, "000001"))
    assert s.features.dtype == np.float32 and s.length == 120 and s.first_frame == 0
    assert [c.text for c in s.captions] == ["a person walks forward", "someone strolls ahead"]
    assert s.captions[0].tokens == tuple(TOKENS.split())
    assert split.by_id("M000001").mirrored and not s.mirrored
    assert split.by_id("000008").length == 40  # nan#nan = whole clip; 40 frames is kept
    assert split.by_id("000004").length == 199  # kept whole; drawn items crop it to 196


def test_sub_spans_are_their_own_samples(root: Path) -> None:
    split = h.load_split(root, "train")
    s = split.by_id("000001#20-80")
    np.testing.assert_array_equal(s.features, raw(root, "000001")[int(1.0 * 20) : int(4.0 * 20)])
    assert s.clip_id == "000001" and s.first_frame == 20 and s.length == 60
    assert [c.text for c in s.captions] == ["a person takes steps", "the same steps again"]
    odd = split.by_id(TRAIN_IDS[5])
    np.testing.assert_array_equal(
        odd.features, raw(root, "000007")[int(1.15 * 20) : int(3.35 * 20)]
    )
    assert [c.text for c in split.by_id("000007#0-60").captions] == ["the start"]


def test_options(root: Path) -> None:
    split = h.load_split(root, "train", include_mirrored=False)
    assert "M000001" not in split.ids
    assert split.skipped[h.SKIP_MIRRORED] == ("M000001",)
    (root / "all.txt").write_text("000001\n000001\n")
    assert h.load_split(root, "all").skipped == {
        h.SKIP_SPAN_TOO_SHORT: ("000001#10-30",),
        h.SKIP_DUPLICATE: ("000001",),
    }
    loose = h.load_split(root, "train", min_frames=20, max_clip_frames=250)
    assert {"000001#10-30", "000002", "000003", "000003#20-100", "000005"} <= set(loose.ids)
    tight = h.load_split(root, "train", max_clip_frames=119)  # drops 000001 with its sub-spans
    assert tight.ids == TRAIN_IDS[4:]
    with pytest.raises(ValueError, match="valid splits: train, val, test, all"):
        h.load_split(root, "dev")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unit_length"):
        h.load_split(root, "train", unit_length=0)


def test_joints_loaded_on_request(root: Path) -> None:
    joints = np.random.default_rng(1).normal(size=(120, 22, 3)).astype("f4")
    (root / "new_joints").mkdir()
    np.save(root / "new_joints" / "000001.npy", joints)
    assert h.load_split(root, "train").by_id("000001").joints is None
    split = h.load_split(root, "train", load_joints=True)
    np.testing.assert_array_equal(split.by_id("000001").joints, joints)
    np.testing.assert_array_equal(split.by_id("000001#20-80").joints, joints[20:80])
    assert split.by_id("M000001").joints is None and "M000001" in split.missing_joints


def test_float64_features_become_float32(root: Path) -> None:
    np.save(root / "new_joint_vecs" / "000008.npy", raw(root, "000008").astype("f8"))
    assert h.load_split(root, "test").by_id("000008").features.dtype == np.float32


def test_mean_std(root: Path) -> None:
    mean, std = h.mean_std(root)
    np.testing.assert_array_equal(mean, np.load(root / "Mean.npy"))
    np.testing.assert_array_equal(std, np.load(root / "Std.npy"))
    assert mean.dtype == std.dtype == np.float32 and mean.shape == std.shape == (D,)


# ---------------------------------------------------------------------------------------------
# Validation: every bad-directory case names the file and the problem


def _save(rel: str, array: np.ndarray) -> Callable[[Path], None]:
    return lambda root: np.save(root / rel, array)


def _write(rel: str, text: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).write_text(text)


def _remove(rel: str) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        p = root / rel
        if p.is_dir():
            for child in p.iterdir():
                child.unlink()
            p.rmdir()
        else:
            p.unlink()

    return go


def _with_nan(shape: tuple[int, ...], value: float = np.nan) -> np.ndarray:
    a = np.ones(shape, dtype="f4")
    a.flat[7] = value
    return a


TXT = "texts/000001.txt"
VEC = "new_joint_vecs/000001.npy"
BAD_CASES = {
    "missing Mean": (_remove("Mean.npy"), "Mean.npy", "missing Mean"),
    "missing Std": (_remove("Std.npy"), "Std.npy", "missing Std"),
    "missing split": (_remove("train.txt"), "train.txt", "missing split file"),
    "missing vec dir": (_remove("new_joint_vecs"), "new_joint_vecs", "missing directory"),
    "missing text dir": (_remove("texts"), "texts", "missing directory"),
    "Mean shape": (_save("Mean.npy", np.zeros(262, "f4")), "Mean.npy", "shape (263,)"),
    "Mean NaN": (_save("Mean.npy", _with_nan((D,))), "Mean.npy", "NaN or inf"),
    "Std inf": (_save("Std.npy", _with_nan((D,), np.inf)), "Std.npy", "NaN or inf"),
    "Std zero": (_save("Std.npy", _with_nan((D,), 0.0)), "Std.npy", "Std must be > 0"),
    "Std negative": (_save("Std.npy", _with_nan((D,), -1.0)), "Std.npy", "Std must be > 0"),
    "Mean not npy": (_write("Mean.npy", "hello"), "Mean.npy", "cannot read"),
    "features ndim": (_save(VEC, np.zeros((120, D, 1), "f4")), VEC, "shape (T, 263)"),
    "features dim": (_save(VEC, np.zeros((120, 262), "f4")), VEC, "shape (T, 263)"),
    "features NaN": (_save(VEC, _with_nan((120, D))), VEC, "NaN or inf"),
    "features inf": (_save(VEC, _with_nan((120, D), -np.inf)), VEC, "NaN or inf"),
    "features object": (
        lambda root: np.save(root / VEC, np.array([None], dtype=object), allow_pickle=True),
        VEC,
        "cannot read",
    ),
    "text empty": (_write(TXT, "\n\n"), TXT, "empty"),
    "text 3 fields": (_write(TXT, f"a caption#{TOKENS}#0.0\n"), TXT, "line 1: expected 4"),
    "text 5 fields": (_write(TXT, f"a#b#{TOKENS}#0.0#0.0\n"), TXT, "line 1: expected 4"),
    "start not a number": (
        _write(TXT, f"fine#{TOKENS}#0.0#0.0\nbad#{TOKENS}#zero#1.0\n"),
        TXT,
        "line 2: start time 'zero' is not a number",
    ),
    "end not a number": (_write(TXT, f"bad#{TOKENS}#0.0#\n"), TXT, "end time '' is not a number"),
    "end before start": (
        _write(TXT, f"bad#{TOKENS}#3.0#2.0\n"),
        TXT,
        "line 1: end '2.0' is before",
    ),
    "negative start": (_write(TXT, f"bad#{TOKENS}#-1.0#2.0\n"), TXT, "must be finite and >= 0"),
    "empty caption": (_write(TXT, f" #{TOKENS}#0.0#0.0\n"), TXT, "line 1: empty caption"),
}


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_directory_raises(root: Path, case: str) -> None:
    corrupt, rel, problem = BAD_CASES[case]
    corrupt(root)
    with pytest.raises(DatasetError) as info:
        h.load_split(root, "train")
    message = str(info.value)
    assert str(root / rel) in message and problem in message, message
    assert info.value.path == root / rel
    assert isinstance(info.value, ValueError)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        h.load_split(tmp_path / "nowhere", "train")
    with pytest.raises(DatasetError, match="does not exist"):
        h.mean_std(tmp_path / "nowhere")


def test_split_with_nothing_loadable_raises(root: Path) -> None:
    with pytest.raises(DatasetError) as info:
        h.load_split(root, "val")
    message = str(info.value)
    assert str(root / "val.txt") in message and "no loadable clips" in message
    assert "1 clip shorter than min_frames" in message and "1 no features file" in message
    (root / "val.txt").write_text("")
    with pytest.raises(DatasetError, match=r"no loadable clips.*empty"):
        h.load_split(root, "val")


def test_bad_joints_raise(root: Path) -> None:
    (root / "new_joints").mkdir()
    np.save(root / "new_joints" / "000001.npy", np.zeros((119, 22, 3), "f4"))
    with pytest.raises(DatasetError, match=r"000001\.npy: joints must have shape \(120, 22, 3\)"):
        h.load_split(root, "train", load_joints=True)


# ---------------------------------------------------------------------------------------------
# Drawing items and batches


def _find_window(normalised: np.ndarray, source: np.ndarray, mean, std) -> int:
    """The offset of `normalised` (de-normalised) inside `source`; fails if there is none."""
    window = normalised * std + mean
    n = len(window)
    for offset in range(len(source) - n + 1):
        if np.allclose(source[offset : offset + n], window, atol=1e-5):
            return offset
    raise AssertionError("drawn features are not a normalised window of the source")


def test_draw_crops_normalises_and_pads(root: Path) -> None:
    split = h.load_split(root, "train")
    mean, std = np.load(root / "Mean.npy"), np.load(root / "Std.npy")
    rng = np.random.default_rng(0)
    for index, sample in enumerate(split):
        for _ in range(5):
            item = split.draw(index, rng)
            assert item.features.shape == (196, D) and item.features.dtype == np.float32
            assert item.length % 4 == 0 and item.length <= min(sample.length, 196)
            assert item.mask.sum() == item.length and item.mask[: item.length].all()
            assert not item.features[item.length :].any()
            assert item.text in [c.text for c in sample.captions]
            _find_window(item.features[: item.length], sample.features, mean, std)
    # Explicit normalisation on the 40-frame clip: with a unit of 10 there is no coin, so the
    # crop is the whole clip.
    sample = split.by_id("000008")
    item = h.draw_item(sample, np.random.default_rng(3), mean=mean, std=std, unit_length=10)
    assert item.length == 40
    np.testing.assert_allclose(item.features[:40], (raw(root, "000008") - mean) / std, atol=1e-6)
    # A given mean/std replaces the directory's.
    zero, one = np.zeros(D, "f4"), np.ones(D, "f4")
    item = split.draw(split.ids.index("000008"), np.random.default_rng(3), mean=zero, std=one)
    _find_window(item.features[: item.length], sample.features, zero, one)


def test_unit_length_coin(root: Path) -> None:
    split = h.load_split(root, "train")
    index = split.ids.index("000004")  # 199 frames
    rng = np.random.default_rng(0)
    lengths = np.array([split.draw(index, rng).length for _ in range(600)])
    assert set(lengths.tolist()) == {196, 192}  # 'single' and 'double' (one unit shorter)
    assert 0.25 < (lengths == 192).mean() < 0.42  # the coin shows 'double' 1/3 of the time
    coin = [h.crop_length(61, rng, max_frames=196, unit_length=4) for _ in range(100)]
    assert set(coin) == {60, 56}
    assert {h.crop_length(61, rng, max_frames=196, unit_length=10) for _ in range(50)} == {60}
    assert h.crop_length(3, rng, max_frames=196, unit_length=4) == 3


def test_tokens_are_capped(root: Path) -> None:
    split = h.load_split(root, "test", max_text_tokens=20)
    item = split.draw(split.ids.index("000004"), np.random.default_rng(0))
    assert len(split.by_id("000004").captions[0].tokens) == 25 and len(item.tokens) == 20


def test_collate_and_sample_batch(root: Path) -> None:
    split = h.load_split(root, "train")
    batch = h.sample_batch(split, 8, np.random.default_rng(0))
    assert batch.features.shape == (8, 196, D) and batch.features.dtype == torch.float32
    assert batch.lengths.shape == (8,) and batch.lengths.dtype == torch.int64
    assert batch.mask.shape == (8, 196) and batch.mask.dtype == torch.bool
    assert torch.equal(batch.mask.sum(1), batch.lengths)
    assert torch.equal(batch.mask, torch.arange(196)[None] < batch.lengths[:, None])
    assert not batch.features[~batch.mask].any()
    assert len(batch.texts) == len(batch.tokens) == len(batch.ids) == len(batch) == 8
    assert all(isinstance(t, list) and all("/" in w for w in t) for t in batch.tokens)

    loader = torch.utils.data.DataLoader(
        h.HumanML3DDataset(split, seed=0), batch_size=4, collate_fn=h.collate
    )
    batches = list(loader)
    assert [len(b) for b in batches] == [4, 3]
    assert [i for b in batches for i in b.ids] == TRAIN_IDS


def test_determinism(root: Path) -> None:
    split = h.load_split(root, "train")
    a = h.sample_batch(split, 16, np.random.default_rng(42))
    b = h.sample_batch(split, 16, np.random.default_rng(42))
    c = h.sample_batch(split, 16, np.random.default_rng(43))
    assert torch.equal(a.features, b.features) and a.texts == b.texts and a.ids == b.ids
    assert not torch.equal(a.features, c.features)

    dataset = h.HumanML3DDataset(split, seed=7)
    forward = [dataset[i] for i in range(len(dataset))]
    backward = [dataset[i] for i in reversed(range(len(dataset)))][::-1]
    for x, y in zip(forward, backward, strict=True):
        assert np.array_equal(x.features, y.features) and x.text == y.text
    dataset.set_epoch(1)
    later = [dataset[i] for i in range(len(dataset))]
    assert any(
        not np.array_equal(x.features, y.features) for x, y in zip(forward, later, strict=True)
    )
