"""benchmarks/backbone_quality.py --update: remeasured backbones replace only their own rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def bq(load_benchmark):
    return load_benchmark("backbone_quality")


def doc(bq, names: list[str], value: float, **over) -> dict:
    """A results file with every row of backbones `names` at R@1 `value`."""
    rows = {"Real motion": {"R@1": 0.85}}
    rows |= {label: {"R@1": value} for label, name, _ in bq.ROWS if name in names}
    base = {"corpus": "/c", "samples": 512, "paraphrase_samples": 256, "repeats": 20, "seed": 0}
    return (
        base
        | {
            "machine": {"cpu": "x"},
            "threads": 1,
            "minutes": 3.0,
            "rows": rows,
            "paraphrase": {n: {"paraphrase": {"oracle_accuracy": value}} for n in names},
            "checkpoints": {n: f"{n}-{value}" for n in names},
        }
        | over
    )


def test_update_replaces_the_remeasured_backbones_and_keeps_the_rest(bq, tmp_path: Path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps(doc(bq, ["mdm", "mld", "lcm"], 0.4)))
    out = bq.updated(path, doc(bq, ["mld"], 0.5))
    assert list(out["rows"]) == ["Real motion"] + [label for label, _, _ in bq.ROWS]
    by_name = {label: name for label, name, _ in bq.ROWS}
    for label, r in out["rows"].items():
        assert r["R@1"] == (
            0.85 if label == "Real motion" else 0.5 if by_name[label] == "mld" else 0.4
        )
    assert out["checkpoints"] == {"mdm": "mdm-0.4", "mld": "mld-0.5", "lcm": "lcm-0.4"}
    assert out["paraphrase"]["mld"]["paraphrase"]["oracle_accuracy"] == 0.5
    assert out["paraphrase"]["lcm"]["paraphrase"]["oracle_accuracy"] == 0.4
    assert out["minutes_by_update"] == {"mld": 3.0}


def test_update_refuses_rows_measured_another_way(bq, tmp_path: Path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps(doc(bq, ["mdm", "mld"], 0.4)))
    with pytest.raises(SystemExit, match="has samples 512, this run 1024"):
        bq.updated(path, doc(bq, ["mld"], 0.5, samples=1024))
