"""The built corpus on disk: HumanML3D's exact format, loadable by the same loader, deterministic,
round-trip exact, physically sane, and reported by the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from easytune_engine.cli import main
from easytune_engine.data.corpus.build import CorpusConfig, build_corpus, read_info
from easytune_engine.data.corpus.program import ACTION_TYPES, program_from_dict
from easytune_engine.data.corpus.quality import sanity
from easytune_engine.data.humanml3d import load_split, mean_std
from easytune_engine.motion.features import features_to_joints

CLIPS = 60


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "builtin"
    build_corpus(root, CorpusConfig(clips=CLIPS, seed=5), workers=2)
    return root


def _ids(root: Path, split: str) -> list[str]:
    return (root / f"{split}.txt").read_text().split()


def test_layout_is_humanml3d(corpus: Path) -> None:
    ids = _ids(corpus, "all")
    assert len(ids) == CLIPS
    for split in ("train", "val", "test"):
        assert _ids(corpus, split)
    assert sorted(_ids(corpus, "train") + _ids(corpus, "val") + _ids(corpus, "test")) == ids
    assert len(_ids(corpus, "test")) == round(0.1 * CLIPS)
    mean, std = np.load(corpus / "Mean.npy"), np.load(corpus / "Std.npy")
    assert mean.shape == std.shape == (263,) and (std > 0).all()
    for cid in ids:
        features = np.load(corpus / "new_joint_vecs" / f"{cid}.npy")
        joints = np.load(corpus / "new_joints" / f"{cid}.npy")
        assert features.dtype == np.float32 and features.shape[1] == 263
        assert 40 <= len(features) <= 196
        assert joints.shape == (len(features), 22, 3)
        lines = (corpus / "texts" / f"{cid}.txt").read_text().splitlines()
        whole = [line for line in lines if line.endswith("#0.0#0.0")]
        assert len(whole) >= 3
        for line in lines:
            caption, tokens, start, end = line.split("#")
            assert caption.strip() and all("/" in t for t in tokens.split())
            assert float(end) >= float(start) >= 0.0
        program = program_from_dict(json.loads((corpus / "programs" / f"{cid}.json").read_text()))
        assert program.num_frames == len(features) + 1


def test_the_humanml3d_loader_reads_it(corpus: Path) -> None:
    split = load_split(corpus, "train")
    assert len({s.clip_id for s in split.samples}) == len(_ids(corpus, "train"))
    mean, _ = mean_std(corpus)
    assert mean.shape == (263,)
    item = split.draw(0, np.random.default_rng(0))
    assert item.length % 4 == 0 and item.text


def test_stored_joints_are_the_recovery_of_the_features(corpus: Path) -> None:
    info = read_info(corpus)
    assert info["roundtrip_max_error_m"] < 1e-4
    for cid in _ids(corpus, "all")[:10]:
        features = np.load(corpus / "new_joint_vecs" / f"{cid}.npy")
        joints = np.load(corpus / "new_joints" / f"{cid}.npy")
        np.testing.assert_allclose(features_to_joints(features), joints, atol=1e-5)


def test_every_clip_is_physically_sane(corpus: Path) -> None:
    for cid in _ids(corpus, "all"):
        joints = np.load(corpus / "new_joints" / f"{cid}.npy").astype(np.float64)
        s = sanity(joints)
        assert s.min_height_m >= -0.01, (cid, s)
        assert s.foot_slide_m_s <= 0.02, (cid, s)
        assert s.bone_length_spread_m < 1e-4, (cid, s)
        assert s.max_joint_speed_m_s <= 12.0, (cid, s)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for sub in ("new_joint_vecs", "texts", "programs"):
        for f in sorted((root / sub).iterdir()):
            h.update(f.read_bytes())
    for name in ("Mean.npy", "Std.npy", "train.txt", "test.txt"):
        h.update((root / name).read_bytes())
    return h.hexdigest()


def test_build_is_deterministic_whatever_the_workers(tmp_path: Path) -> None:
    a = tmp_path / "a"
    b = tmp_path / "b"
    build_corpus(a, CorpusConfig(clips=24, seed=9), workers=1)
    build_corpus(b, CorpusConfig(clips=24, seed=9), workers=2)
    assert _digest(a) == _digest(b)
    c = tmp_path / "c"
    build_corpus(c, CorpusConfig(clips=24, seed=10), workers=1)
    assert _digest(a) != _digest(c)


def test_config_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="clips must be at least 20"):
        CorpusConfig(clips=3)
    with pytest.raises(ValueError, match="captions_per_clip must be at least 3"):
        CorpusConfig(captions_per_clip=2)


def test_cli_build_and_info_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["data", "build", "--out", str(out), "--clips", "30", "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["data", "info", str(out), "--json", "--sample", "30"]) == 0
    info = json.loads(capsys.readouterr().out)
    for key in (
        "clips",
        "action_types",
        "captions",
        "build_seconds",
        "roundtrip_max_error_m",
        "oracle_accept_rate",
        "oracle_reject_rate",
        "ik_max_error_m",
    ):
        assert key in info, key
    assert info["clips"] == 30
    assert info["captions"] >= 90
    assert 1 <= info["action_types"] <= len(ACTION_TYPES)
    assert info["ik_max_error_m"] < 1e-3
    assert 0.0 <= info["oracle_accept_rate"] <= 1.0


def test_cli_reports_a_missing_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="no built corpus"):
        main(["data", "info", str(tmp_path / "nothing")])
