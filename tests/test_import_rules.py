"""The package boundaries of the architecture: the add-on runs in Blender's Python (no torch) and
the protocol package is shared by both sides (neither torch nor bpy); the engine never imports
bpy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "protocol/easytune_protocol": {"torch", "bpy", "easytune_engine", "easytune_blender"},
    "blender_addon/easytune_blender": {"torch", "easytune_engine"},
    "engine/easytune_engine": {"bpy", "easytune_blender"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_respect_boundaries(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package} has no Python files"
    offenders = {
        str(f.relative_to(ROOT)): sorted(imported_roots(f) & FORBIDDEN[package]) for f in files
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"forbidden imports: {offenders}"


def test_detects_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import torch.nn as nn\nfrom bpy import types\n")
    assert imported_roots(bad) == {"torch", "bpy"}


def test_no_unsafe_deserialisation_anywhere() -> None:
    patterns = ("pickle.load", "recv_pyobj", "weights_only=False")
    for package in FORBIDDEN:
        for f in (ROOT / package).rglob("*.py"):
            text = f.read_text()
            for p in patterns:
                assert p not in text, f"{f.relative_to(ROOT)} uses {p}"
