"""`easytune-engine eval` on a tiny corpus (real-data row) and on a generated-motions directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from easytune_engine.cli import main
from easytune_engine.data.corpus.program import program_from_dict
from easytune_engine.eval.motions import write_motions

REQUIRED = ("R@1", "R@2", "R@3", "FID", "MM-Dist", "Diversity", "oracle_accuracy")


def run_json(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    assert main(["eval", *argv, "--json", "--repeats", "3"]) == 0
    out = capsys.readouterr()
    assert "R@1" in out.err and "FID" in out.err  # the table goes to stderr with --json
    return json.loads(out.out.strip().splitlines()[-1])


def test_real_data_row(tiny_corpus: Path, tiny_evaluator: Path, capsys) -> None:
    result = run_json(
        capsys, "--motions", str(tiny_corpus), "--split", "all", "--evaluator", str(tiny_evaluator)
    )
    for key in REQUIRED:
        assert result[key] is not None and f"{key}_ci" in result, key
    assert result["R@1"] > 1 / 32 and result["MultiModality"] is None
    assert result["oracle_accuracy"] > 0.8  # the corpus's own clips perform their programs
    assert result["source"] == "humanml3d"


def test_generated_motions_dir(tiny_corpus: Path, tiny_evaluator: Path, tmp_path: Path, capsys):
    ids = (tiny_corpus / "all.txt").read_text().split()[:40]
    motions, programs = [], []
    for n, cid in enumerate(ids):
        feats = np.load(tiny_corpus / "new_joint_vecs" / f"{cid}.npy")[:196]
        text = (tiny_corpus / "texts" / f"{cid}.txt").read_text().splitlines()[0].split("#")[0]
        program = json.loads((tiny_corpus / "programs" / f"{cid}.json").read_text())
        prompt = text if n >= 6 else "a person waves"  # 6 generations of one prompt
        motions.append((f"g{n:03d}", feats, prompt))
        programs.append(program_from_dict(program))
    write_motions(tmp_path / "gen", motions, programs)
    result = run_json(
        capsys,
        "--motions", str(tmp_path / "gen"),
        "--evaluator", str(tiny_evaluator),
        "--corpus", str(tiny_corpus),
    )  # fmt: skip
    for key in REQUIRED:
        assert result[key] is not None and f"{key}_ci" in result, key
    assert result["MultiModality"] is not None and result["source"] == "generated"
    assert result["oracle_judged"] == 40


def test_plain_table_without_json(tiny_corpus: Path, tiny_evaluator: Path, capsys) -> None:
    argv = ["eval", "--motions", str(tiny_corpus), "--split", "all", "--repeats", "2"]
    assert main([*argv, "--evaluator", str(tiny_evaluator)]) == 0
    assert "| R@1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("model", "not a readable safetensors checkpoint"),
        ("empty", "missing motions.json"),
        ("missing", "no such motions directory"),
    ],
)
def test_bad_targets(tiny_evaluator: Path, tmp_path: Path, capsys, setup: str, message: str):
    target = tmp_path / "x"
    if setup == "model":
        target.write_bytes(b"\0" * 16)
    elif setup == "empty":
        target.mkdir()
    argv = ["eval", "--motions", str(target), "--evaluator", str(tiny_evaluator)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
