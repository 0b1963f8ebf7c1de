"""Device plumbing of the fine-tuner, and benchmarks/finetune_gpu.py's CPU dry run on a tiny model.

What can be checked without a GPU: the trainer puts what a trajectory creates on the backbone's
device and moves the reward there; the meter records no CUDA peak for a CPU device; the benchmark
script runs every planned cell, restores the weights between cells, falls back to fixed prompts
without a corpus, and still writes its JSON (partial) when the deadline stops it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from easytune_engine.finetune.compare import ALL_METHODS
from easytune_engine.finetune.memory import SavedTensorMeter
from easytune_engine.finetune.methods import MethodConfig
from easytune_engine.finetune.trainer import FinetuneConfig, Finetuner, PromptPool, module_device
from easytune_engine.models import MLD, MLDConfig, VAEConfig
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.reward.model import load_reward_model
from easytune_engine.text.encoder import load_text_encoder

POOL = PromptPool(("a person jumps", "a person waves"), (40, 36))


def _tiny_generator(name: str = "tiny", device: torch.device | str = "cpu") -> MotionGenerator:
    torch.manual_seed(0)
    enc = load_text_encoder()
    vae = VAEConfig(width=32, enc_layers=1, dec_layers=1, latent_tokens=2, latent_dim=8)
    cfg = MLDConfig(vae=vae, width=64, layers=1, heads=4, text_dim=enc.width, steps=4)
    return MotionGenerator(MLD(cfg).eval(), enc)


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("finetune_gpu")


def test_trainer_puts_trajectory_tensors_on_the_backbone_device() -> None:
    gen = _tiny_generator()
    reward = load_reward_model()
    tuner = Finetuner(gen, reward, FinetuneConfig(trajectories=1, batch_size=2), POOL)
    assert module_device(gen.backbone) == gen.device == tuner.device
    assert tuner.reward.mean.device == tuner.device
    tr = tuner.trajectory(["a person jumps", "a person waves"], [40, 36])
    assert tr.x_T.device == tr.cond.text.device == tr.cond.lengths.device == tuner.device
    assert module_device(torch.nn.Module()) == torch.device("cpu")


def test_meter_records_no_cuda_peak_for_a_cpu_device() -> None:
    with SavedTensorMeter(device="cpu") as meter:
        x = torch.ones(3, requires_grad=True)
        (x * x).sum()
    assert meter.cuda_peak_bytes is None and meter.peak_bytes > 0


def test_dry_run_measures_every_cell_and_restores_weights(bench, tmp_path: Path) -> None:
    loads: list[str] = []

    def loader(name: str, device: torch.device) -> MotionGenerator:
        loads.append(name)
        return _tiny_generator(name, device)

    argv = ["--device", "cpu", "--batch", "2", "--steps", "2", "3", "--models", "tiny"]
    argv += ["--speed-steps", "3", "--speed-repeats", "1", "--out", str(tmp_path)]
    argv += ["--corpus", str(tmp_path / "no-corpus"), "--prompts", str(tmp_path / "no.json")]
    report = bench.main(argv, loader=loader)
    saved = json.loads((tmp_path / "finetune_gpu.json").read_text())
    assert (tmp_path / "finetune_gpu.md").is_file()
    assert saved["partial"] is False and report["partial"] is False
    assert saved["prompts"]["source"] == "fallback" and saved["device_name"] == "cpu"
    memory, speed = saved["memory"]["tiny"], saved["speed"]["tiny"]
    assert list(memory) == list(ALL_METHODS) and list(speed) == list(ALL_METHODS)
    for name in ALL_METHODS:
        for t in ("2", "3"):
            cell = memory[name][t]
            assert "error" not in cell, (name, t, cell)
            assert cell["peak_saved_bytes"] > 0 and cell["cuda_peak_bytes"] is None
        assert "error" not in speed[name] and speed[name]["trajectories"] == 1
    # DRaFT-50 is DRaFT-T: the whole chain, so it saves more at T = 3 than at T = 2
    assert memory["DRaFT-50"]["3"]["peak_saved_bytes"] > memory["DRaFT-50"]["2"]["peak_saved_bytes"]
    s = saved["summary"]["tiny"]
    assert (s["T_low"], s["T_high"]) == (2, 3)
    assert s["saved_easytune_flatness"] == pytest.approx(1.0)
    # one load for the shared generator, one per LoRA cell (2 memory + 1 speed)
    assert loads.count("tiny") == 1 + 3


def test_fresh_restores_the_shipped_weights(bench) -> None:
    model = bench.Backbone("tiny", torch.device("cpu"), _tiny_generator)
    before = {k: v.clone() for k, v in model.gen.backbone.state_dict().items()}
    reward = load_reward_model()
    cfg = FinetuneConfig(MethodConfig("refl"), trajectories=1, batch_size=2, lr=1e-2, steps=3)
    tuner = Finetuner(model.fresh(False), reward, cfg, POOL)
    tuner.step()
    after = model.gen.backbone.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it trained in place
    gen = model.fresh(False)
    assert gen is model.gen
    for k, v in gen.backbone.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None and not p.requires_grad for p in gen.backbone.parameters())


def test_deadline_still_writes_a_partial_report(bench, tmp_path: Path) -> None:
    argv = ["--device", "cpu", "--batch", "1", "--steps", "2", "--models", "tiny"]
    argv += ["--deadline-s", "0", "--out", str(tmp_path), "--corpus", str(tmp_path / "none")]
    bench.main(argv, loader=_tiny_generator)
    saved = json.loads((tmp_path / "finetune_gpu.json").read_text())
    assert saved["partial"] is True and saved["skipped"]
    assert saved["memory"] == {"tiny": {}}


def test_exported_prompts_replace_a_missing_corpus(bench, tmp_path: Path) -> None:
    path = tmp_path / "prompts.json"
    bench.export_prompts(POOL, path, "somewhere")
    pool, info = bench.load_prompts(tmp_path / "no-corpus", path)
    assert pool == POOL and info["source"] == "file" and info["exported_from"] == "somewhere"
    pool, info = bench.load_prompts(tmp_path / "no-corpus", tmp_path / "missing.json")
    assert info["source"] == "fallback" and len(info["errors"]) == 1
    assert set(pool.lengths) == {bench.FALLBACK_LENGTH}
