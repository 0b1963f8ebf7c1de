"""Shared fixtures: a small corpus and tiny backbones trained on it, each built once per session.

The tiny presets keep their model sizes but are cut to a few dozen steps (`fast_presets`), so a
training run takes seconds. Runs live at fixed paths under the session's base temp directory, so
`tests/engine/test_generate.py` and `tests/engine/eval/test_backbone_eval.py`, which cannot see
these fixtures, reuse the same runs through `shared_corpus` / `shared_backbone` (they load this
file by path) instead of training again.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from easytune_engine.data.corpus.build import CorpusConfig, build_corpus
from easytune_engine.training import presets
from easytune_engine.training.backbones import train_backbone

SHARED = "easytune-shared"
# 320 clips: 32 whole test clips, one R-Precision group for `eval --motions CHECKPOINT`.
CORPUS = CorpusConfig(clips=320, seed=3)
FAST_STEPS = {"mdm": 40, "vae": 30, "denoiser": 40, "lcm": 16}


def fast_presets(mp: pytest.MonkeyPatch) -> None:
    """Cut the tiny presets to FAST_STEPS per stage (same models), saving every 10 steps."""
    for key, preset in list(presets._TABLE.items()):
        if key[1] != "tiny":
            continue
        stages = {
            name: replace(c, steps=FAST_STEPS[name], warmup=5, save_every=10, log_every=5)
            for name, c in preset.stages.items()
        }
        mp.setitem(presets._TABLE, key, replace(preset, stages=stages))


def shared_corpus(factory: pytest.TempPathFactory) -> Path:
    """The session's small corpus (built on first use)."""
    root = factory.getbasetemp() / SHARED / "corpus"
    if not (root / "corpus.json").is_file():
        build_corpus(root, CORPUS, workers=2)
    return root


def shared_backbone(factory: pytest.TempPathFactory, name: str) -> Path:
    """The run directory of a fast tiny `name` backbone (lcm: distilled from the shared mld)."""
    run = factory.getbasetemp() / SHARED / f"run-{name}"
    if not (run / "model.safetensors").is_file():
        corpus = shared_corpus(factory)
        teacher = shared_backbone(factory, "mld") / "model.safetensors" if name == "lcm" else "mld"
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("EASYTUNE_HOME", str(factory.getbasetemp() / SHARED / "home"))
            fast_presets(mp)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                train_backbone(name, "tiny", corpus, run, teacher=teacher, progress=False)
            finally:
                torch.set_num_threads(threads)
    return run


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """One torch thread: these tests share 2 cores with other work."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing touches the user's data directory."""
    monkeypatch.setenv("EASYTUNE_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def fast_presets_fn():
    """`fast_presets` for fixtures wider than a test (they patch with their own MonkeyPatch)."""
    return fast_presets


@pytest.fixture
def fast_tiny(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The tiny presets cut to FAST_STEPS for this test; returns the step counts."""
    fast_presets(monkeypatch)
    return FAST_STEPS


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_corpus(tmp_path_factory)


@pytest.fixture(scope="session")
def mdm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_backbone(tmp_path_factory, "mdm")


@pytest.fixture(scope="session")
def mld_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_backbone(tmp_path_factory, "mld")


@pytest.fixture(scope="session")
def lcm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_backbone(tmp_path_factory, "lcm")
