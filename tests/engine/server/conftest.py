"""Engine server tests: a real `easytune-engine serve` process on a random loopback port.

The served model is the session's fast tiny MLD (trained once by tests/engine/training/conftest.py,
loaded here by path the way tests/engine/test_generate.py does); `serve_helpers` runs the process.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import Engine, start_engine

from easytune_protocol.client import EngineClient


def _shared_runs():
    """tests/engine/training/conftest.py, whose session-wide tiny runs these tests reuse."""
    name = "_easytune_shared_runs"
    if name not in sys.modules:
        path = Path(__file__).parents[1] / "training" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's fast tiny MLD checkpoint."""
    return _shared_runs().shared_backbone(tmp_path_factory, "mld") / "model.safetensors"


@pytest.fixture(scope="module")
def engine(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One engine for a test module, stopped (SIGTERM) at its end."""
    server = start_engine(tmp_path_factory.mktemp("engine") / "data", tiny_model)
    yield server
    server.stop()


@pytest.fixture
def client(engine: Engine) -> Iterator[EngineClient]:
    with engine.client() as c:
        yield c


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's small corpus (SPL refinement jobs train on it)."""
    return _shared_runs().shared_corpus(tmp_path_factory)
