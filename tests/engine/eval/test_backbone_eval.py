"""`easytune-engine eval --motions CHECKPOINT`: generate for test prompts, then judge them."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

from easytune_engine.checkpoint import load_checkpoint
from easytune_engine.cli import main

METRICS = ("R@1", "R@2", "R@3", "FID", "MM-Dist", "Diversity", "MultiModality", "oracle_accuracy")


def _shared_runs():
    """tests/engine/training/conftest.py, whose session-wide tiny runs this file reuses."""
    name = "_easytune_shared_runs"
    if name not in sys.modules:
        path = Path(__file__).parent.parent / "training" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASYTUNE_HOME", str(tmp_path / "home"))


def eval_argv(model: Path, corpus: Path, evaluator: Path, *extra: str) -> list[str]:
    return [
        "eval", "--motions", str(model), "--samples", "32", "--mm-texts", "2", "--repeats", "2",
        "--json", "--corpus", str(corpus), "--evaluator", str(evaluator), *extra,
    ]  # fmt: skip


def run_json(argv: list[str]) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.fixture(scope="module")
def judged(tiny_evaluator: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny MDM judged on 32 test prompts (the shared 320-clip corpus: 32 test clips)."""
    shared = _shared_runs()
    model = shared.shared_backbone(tmp_path_factory, "mdm") / "model.safetensors"
    corpus = shared.shared_corpus(tmp_path_factory)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EASYTUNE_HOME", str(tmp_path_factory.getbasetemp() / "eval-home"))
        result = run_json(eval_argv(model, corpus, tiny_evaluator, "--steps", "10"))
    return result | {"_model": str(model)}


def test_backbone_is_judged_on_every_metric(judged: dict):
    """One JSON object: every metric and its _ci twin, the backbone and its checkpoint hash, the
    sampling overrides."""
    for key in METRICS:
        assert judged[key] is not None and judged[f"{key}_ci"] is not None, key
    assert 0.0 <= judged["R@1"] <= judged["R@2"] <= judged["R@3"] <= 1.0
    assert 0.0 <= judged["oracle_accuracy"] <= 1.0
    assert judged["FID"] >= 0 and judged["Diversity"] > 0
    assert judged["backbone"] == "mdm" and judged["source"] == "generated"
    assert judged["checkpoint_sha256"] == load_checkpoint(judged["_model"], "backbone/mdm").sha256
    assert judged["sampling"] == {"steps": 10}
    assert judged["oracle_judged"] == judged["samples"]  # every prompt has a program


def test_multimodality_repeats_are_not_judged_as_samples(judged: dict):
    """--samples 32 judges 32 motions; MultiModality's repeats are extra, not samples."""
    assert judged["samples"] == 32


def test_the_documented_command_on_the_tiny_corpus(
    tiny_corpus: Path, tiny_evaluator: Path, tmp_path_factory: pytest.TempPathFactory, capsys
):
    """On the 96-clip corpus (10 test prompts, under one R-Precision group) the MLD is still
    judged: R@k are null, never a number from a partial group; the table goes to stderr."""
    model = _shared_runs().shared_backbone(tmp_path_factory, "mld") / "model.safetensors"
    argv = eval_argv(model, tiny_corpus, tiny_evaluator)
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "FID" in out.err
    result = json.loads(out.out.strip().splitlines()[-1])
    for key in METRICS:
        assert key in result and f"{key}_ci" in result, key
    for key in ("FID", "MM-Dist", "Diversity", "MultiModality", "oracle_accuracy"):
        assert result[key] is not None and result[f"{key}_ci"] is not None, key
    assert result["samples"] < 32 and result["R@1"] is None
    assert result["backbone"] == "mld" and result["sampling"] == "backbone defaults"


def test_fewer_than_32_samples_is_refused(tiny_corpus: Path, tiny_evaluator: Path, capsys):
    """--samples 8 cannot fill one R-Precision group: exit 2 before generating anything."""
    argv = ["eval", "--motions", "mld", "--samples", "8", "--corpus", str(tiny_corpus)]
    assert main([*argv, "--evaluator", str(tiny_evaluator)]) == 2
    err = capsys.readouterr().err
    assert "--samples must be >= 32" in err and "got 8" in err


def test_prompts_come_from_the_asked_split(tiny_corpus: Path):
    """Sampling settings are chosen on val: its prompts are val clips, never test clips."""
    from easytune_engine.eval.backbone import test_prompts

    split_ids = {
        name: set((tiny_corpus / f"{name}.txt").read_text().split()) for name in ("val", "test")
    }
    for name in ("val", "test"):
        prompts = test_prompts(tiny_corpus, 8, seed=0, split_name=name)
        assert prompts and {p.program_id for p in prompts} <= split_ids[name]


def test_periodic_evaluation_watches_the_validation_split(
    tiny_evaluator: Path, tmp_path_factory: pytest.TempPathFactory
):
    """What a training run logs every `eval_every` steps is judged on val prompts, the same
    figures `evaluate_backbone(split="val")` gives; the test split is left for the final table."""
    from easytune_engine.eval.backbone import evaluate_backbone, periodic_evaluator
    from easytune_engine.eval.evaluator import load_evaluator
    from easytune_engine.models.io import load_backbone
    from easytune_engine.models.pipeline import MotionGenerator
    from easytune_engine.text.encoder import load_text_encoder

    shared = _shared_runs()
    backbone = load_backbone(shared.shared_backbone(tmp_path_factory, "mdm") / "model.safetensors")
    corpus = shared.shared_corpus(tmp_path_factory)
    logged = periodic_evaluator(corpus, samples=32, evaluator_path=tiny_evaluator)(backbone, 0)
    gen, evaluator = MotionGenerator(backbone, load_text_encoder()), load_evaluator(tiny_evaluator)

    def judged(split: str) -> dict:
        kw = {"samples": 32, "repeats": 3, "mm_texts": 0, "split": split}
        return evaluate_backbone(gen, corpus, evaluator, **kw).as_json()

    val, test = judged("val"), judged("test")
    assert logged == {k: val[k] for k in logged} and set(logged) >= {"FID", "oracle_accuracy"}
    assert logged["FID"] != test["FID"]
    # the report names the real split its FID was measured against
    assert val["fid_reference"].endswith("val split")
    assert test["fid_reference"].endswith("test split")
