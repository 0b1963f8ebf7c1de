"""`easytune-engine generate --model CHECKPOINT`: the files it writes, determinism, bad input."""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from easytune_engine.checkpoint import load_checkpoint
from easytune_engine.cli import main
from easytune_engine.motion.features import features_to_joints

with warnings.catch_warnings():
    warnings.simplefilter("ignore", PendingDeprecationWarning)  # bvhio's "import glm"
    import bvhio


def _shared_runs():
    """tests/engine/training/conftest.py, whose session-wide tiny runs this file reuses."""
    name = "_easytune_shared_runs"
    if name not in sys.modules:
        path = Path(__file__).parent / "training" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


PROMPT = "a person jumps twice"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASYTUNE_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def mdm_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _shared_runs().shared_backbone(tmp_path_factory, "mdm") / "model.safetensors"


def generate(model: Path, out: Path, *args: str) -> int:
    argv = ["generate", PROMPT, "--model", str(model), "--out", str(out), "--threads", "1"]
    return main([*argv, *args])


@pytest.fixture(scope="module")
def generated(mdm_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three candidates of 40 frames, seed 5, the backbone's default sampling."""
    out = tmp_path_factory.mktemp("generate") / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EASYTUNE_HOME", str(out.parent / "home"))
        assert generate(mdm_model, out, "--n", "3", "--frames", "40", "--seed", "5") == 0
    return out


def test_writes_every_candidate_file(generated: Path):
    """cK.npy (T, 263) features, cK.joints.npy (T, 22, 3) = FK of those features, cK.bvh, a
    preview GIF; nothing for candidates that were not asked for."""
    for k in range(3):
        feats = np.load(generated / f"c{k}.npy")
        joints = np.load(generated / f"c{k}.joints.npy")
        assert feats.shape == (40, 263) and feats.dtype == np.float32
        assert joints.shape == (40, 22, 3) and joints.dtype == np.float32
        assert np.isfinite(feats).all() and np.isfinite(joints).all()
        np.testing.assert_allclose(joints, features_to_joints(feats), atol=1e-5)
        assert (generated / f"c{k}.bvh").stat().st_size > 0
    assert not (generated / "c3.npy").exists()
    assert (generated / "preview.gif").read_bytes()[:4] == b"GIF8"
    assert not [p for p in generated.iterdir() if p.name.startswith(".")]  # no temp files


def test_result_json_describes_the_call(generated: Path, mdm_model: Path):
    """result.json: the request, the resolved sampling (the MDM defaults), the checkpoint hash and
    one entry per candidate whose named files all exist."""
    doc = json.loads((generated / "result.json").read_text())
    assert doc["format"] == "easytune-generation" and doc["version"] == 1
    assert (doc["prompt"], doc["fps"], doc["seed"]) == (PROMPT, 20, 5)
    assert (doc["sampler"], doc["steps"], doc["guidance"]) == ("ddpm", 50, 2.5)
    assert doc["precision"] == "fp32"
    assert doc["backbone"] == "mdm"
    assert doc["checkpoint_sha256"] == load_checkpoint(mdm_model, "backbone/mdm").sha256
    assert doc["generation_seconds"] > 0
    assert doc["preview"] == "preview.gif"
    assert [c["id"] for c in doc["candidates"]] == ["c0", "c1", "c2"]
    for c in doc["candidates"]:
        assert (c["frames"], c["seconds"]) == (40, 2.0)
        for key in ("features", "joints", "bvh"):
            assert (generated / c[key]).is_file(), c[key]
    assert (generated / doc["preview"]).is_file()


def test_motions_json_indexes_the_candidates(generated: Path):
    """motions.json lists each candidate with the prompt, so `eval --motions DIR` can read it."""
    doc = json.loads((generated / "motions.json").read_text())
    assert doc["fps"] == 20
    assert [(m["id"], m["text"]) for m in doc["motions"]] == [(f"c{k}", PROMPT) for k in range(3)]


def test_bvh_reads_back_with_the_frame_count(generated: Path):
    """An independent reader (bvhio) sees every frame at 20 fps."""
    for k in range(3):
        bvh = bvhio.readAsBvh(str(generated / f"c{k}.bvh"))
        assert bvh.FrameCount == 40
        assert bvh.FrameTime == pytest.approx(1 / 20)


def test_same_seed_same_motion(mdm_model: Path, tmp_path: Path):
    """The same seed gives byte-identical features; another seed gives other ones. --no-gif skips
    the preview; --seconds sets the length."""
    quick = ("--n", "1", "--steps", "4", "--no-gif")
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        assert generate(mdm_model, tmp_path / name, *quick, "--seed", seed, "--seconds", "1.5") == 0
    a, b, c = (np.load(tmp_path / n / "c0.npy") for n in "abc")
    assert a.shape == (30, 263)
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)
    assert not (tmp_path / "a" / "preview.gif").exists()
    assert json.loads((tmp_path / "a" / "result.json").read_text())["preview"] is None


def test_typed_words_are_rewritten_and_reported(mdm_model: Path, tmp_path: Path, capsys):
    """A slip reaches the model corrected (the same motion as the corrected prompt), result.json
    and the console say so; --no-rewrite gives the model the prompt as typed."""
    quick = ("--n", "1", "--steps", "2", "--no-gif", "--frames", "20", "--seed", "3")
    main(["generate", "a person jmups twice", "--model", str(mdm_model), "--out",
          str(tmp_path / "typo"), "--threads", "1", *quick])  # fmt: skip
    assert "read as: 'a person jumps twice'" in capsys.readouterr().out
    assert generate(mdm_model, tmp_path / "right", *quick) == 0
    main(["generate", "a person jmups twice", "--model", str(mdm_model), "--out",
          str(tmp_path / "raw"), "--threads", "1", "--no-rewrite", *quick])  # fmt: skip
    doc = json.loads((tmp_path / "typo" / "result.json").read_text())
    assert doc["prompt"] == "a person jmups twice"
    assert doc["interpreted_prompt"] == "a person jumps twice"
    assert [(s["word"], s["replacement"], s["reason"]) for s in doc["substitutions"]] == [
        ("jmups", "jumps", "typo")
    ]
    typo, right, raw = (np.load(tmp_path / n / "c0.npy") for n in ("typo", "right", "raw"))
    assert typo.tobytes() == right.tobytes()
    assert typo.tobytes() != raw.tobytes()
    assert "interpreted_prompt" not in json.loads((tmp_path / "raw" / "result.json").read_text())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frames", "0"], "motion length 0 frames is out of range"),
        (["--frames", "197"], "motion length 197 frames is out of range"),
        (["--n", "0"], "--n must be in 1..16"),
        (["--n", "17"], "--n must be in 1..16"),
        (["--guidance", "-1"], "guidance must be in 0..50"),
        (["--backbone", "nope"], "unknown backbone name"),
        (["--model", "TRUNCATED"], "not a readable safetensors checkpoint"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    mdm_model: Path, tmp_path: Path, capsys, args: list[str], message: str
):
    """Exit code 2, `error: ...` on stderr naming the problem, no traceback, nothing written."""
    out = tmp_path / "out"
    argv = ["generate", PROMPT, "--out", str(out), "--threads", "1"]
    if args[0] == "--model":
        truncated = tmp_path / "truncated.safetensors"
        truncated.write_bytes(mdm_model.read_bytes()[:1000])
        args = ["--model", str(truncated)]
    elif args[0] != "--backbone":
        argv += ["--model", str(mdm_model)]
    assert main([*argv, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err
    assert "Traceback" not in err
    if args[0] == "--backbone":
        assert "nope" in err
    assert not out.exists()
