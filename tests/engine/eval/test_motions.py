"""The generated-motions directory format and its bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from easytune_engine.data.corpus.program import program_from_dict
from easytune_engine.eval.motions import read_motions, write_motions


def clip(root: Path, cid: str) -> tuple[np.ndarray, np.ndarray, str, dict]:
    feats = np.load(root / "new_joint_vecs" / f"{cid}.npy")
    joints = np.load(root / "new_joints" / f"{cid}.npy")
    text = (root / "texts" / f"{cid}.txt").read_text().splitlines()[0].split("#")[0]
    program = json.loads((root / "programs" / f"{cid}.json").read_text())
    return feats, joints, text, program


def test_round_trip_features_and_joints(tiny_corpus: Path, tmp_path: Path) -> None:
    cid = (tiny_corpus / "test.txt").read_text().split()[0]
    feats, joints, text, program = clip(tiny_corpus, cid)
    write_motions(
        tmp_path, [("a", feats, text), ("b", joints, text)], [program_from_dict(program), None]
    )
    a, b = read_motions(tmp_path)
    assert a.features.shape == feats.shape and a.program is not None and a.joints is None
    assert b.features.shape == (len(joints) - 1, 263) and b.joints is not None
    assert b.program is None and a.text == text


def test_program_id_resolves_against_the_corpus(tiny_corpus: Path, tmp_path: Path) -> None:
    cid = (tiny_corpus / "test.txt").read_text().split()[0]
    feats, _, text, _ = clip(tiny_corpus, cid)
    write_motions(tmp_path, [("a", feats, text)])
    doc = json.loads((tmp_path / "motions.json").read_text())
    doc["motions"][0]["program_id"] = cid
    (tmp_path / "motions.json").write_text(json.dumps(doc))
    assert read_motions(tmp_path, tiny_corpus)[0].program is not None
    doc["motions"][0]["program_id"] = "nope"
    (tmp_path / "motions.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="unknown program id 'nope'"):
        read_motions(tmp_path, tiny_corpus)


def good() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(40, 263)).astype(np.float32)


def nan_motion() -> np.ndarray:
    x = good()
    x[3, 7] = np.nan
    return x


def inf_motion() -> np.ndarray:
    x = good()
    x[0, 0] = np.inf
    return x


@pytest.mark.parametrize(
    ("array", "text", "message"),
    [
        (nan_motion(), "walk", "NaN or inf"),
        (inf_motion(), "walk", "NaN or inf"),
        (np.zeros((0, 263), np.float32), "walk", "zero-length"),
        (np.zeros((3, 263), np.float32), "walk", "too short"),
        (np.zeros((400, 263), np.float32), "walk", "over-length"),
        (np.zeros((40, 251), np.float32), "walk", "wrong feature size"),
        (np.zeros((40, 22, 2), np.float32), "walk", "expected"),
        (good(), "   ", "empty prompt"),
    ],
)
def test_bad_motions_are_refused(tmp_path: Path, array, text: str, message: str) -> None:
    write_motions(tmp_path, [("m", array, text)])
    with pytest.raises(ValueError, match=message):
        read_motions(tmp_path)


def test_missing_index_and_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing motions\.json"):
        read_motions(tmp_path)
    write_motions(tmp_path, [("m", good(), "walk")])
    (tmp_path / "m.npy").unlink()
    with pytest.raises(ValueError, match="does not exist"):
        read_motions(tmp_path)


def test_bad_index_entries_are_refused(tmp_path: Path) -> None:
    write_motions(tmp_path, [("m", good(), "walk")])
    doc = json.loads((tmp_path / "motions.json").read_text())
    doc["motions"].append(dict(doc["motions"][0]))
    (tmp_path / "motions.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="listed twice"):
        read_motions(tmp_path)
    doc["motions"] = [{"id": "../x", "text": "walk"}]
    (tmp_path / "motions.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="invalid id"):
        read_motions(tmp_path)
    (tmp_path / "motions.json").write_text("{not json")
    with pytest.raises(ValueError, match="not readable JSON"):
        read_motions(tmp_path)
