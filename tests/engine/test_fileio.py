"""Atomic writes: the whole content or the old file, never a half-written one or a stray temp."""

from __future__ import annotations

from pathlib import Path

import pytest

from easytune_engine.fileio import atomic_write, atomic_write_bytes


def test_atomic_write_bytes_creates_parents_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b.bin"
    atomic_write_bytes(path, b"one")
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["b.bin"]


def test_failing_writer_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("old")

    def writer(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, writer)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]
