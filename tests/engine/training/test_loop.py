"""The training loop: exact resume after a crash, finished-stage no-op, atomic state, EMA, NaN."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from easytune_engine import checkpoint as checkpoint_module
from easytune_engine.checkpoint import CheckpointError, load_checkpoint
from easytune_engine.data.humanml3d import HumanML3DSplit, load_split
from easytune_engine.text.encoder import load_text_encoder
from easytune_engine.training.device_batches import DeviceBatches
from easytune_engine.training.loop import (
    STATE_KIND,
    Stage,
    StageConfig,
    TextCache,
    fitted_config,
    lr_at,
    run_stage,
)

STATE = "train_state.safetensors"


class Crash(RuntimeError):
    """Stands in for a kill: raised by a loss at a chosen step."""


class TinyNet(nn.Module):
    """Text-conditioned denoiser of features, with dropout so the torch RNG matters."""

    def __init__(self, text_dim: int, width: int = 16) -> None:
        super().__init__()
        self.inp = nn.Linear(263, width)
        self.text = nn.Linear(text_dim, width)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(width, 263)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(torch.relu(self.inp(x) + self.text(text)[:, None])))


@pytest.fixture(scope="module")
def split(tiny_corpus: Path) -> HumanML3DSplit:
    return load_split(tiny_corpus, "train")


@pytest.fixture(scope="module")
def cache() -> TextCache:
    return TextCache(load_text_encoder())


def make_stage(
    cache: TextCache,
    *,
    steps: int = 12,
    save_every: int = 4,
    init_seed: int = 123,
    crash_at: int | None = None,
    nan_at: int | None = None,
    width: int = 16,
    after_step=None,
) -> tuple[Stage, TinyNet]:
    torch.manual_seed(init_seed)
    net = TinyNet(cache.encoder.width, width)

    def loss(batch, text, step):
        if step == crash_at:
            raise Crash(f"killed at step {step}")
        x0 = batch.features
        pred = net(x0 + 0.1 * torch.randn_like(x0), text)  # the global torch RNG
        m = batch.mask[..., None].float()
        mse = ((pred - x0) ** 2 * m).sum() / (m.sum() * 263)
        if step == nan_at:
            mse = mse * float("nan")
        return mse, {"loss": mse.item()}

    cfg = StageConfig(
        steps, 4, lr=3e-3, warmup=3, save_every=save_every, log_every=2, ema_decay=0.9
    )
    return Stage("toy", net, loss, cfg, after_step), net


def run(stage: Stage, net: nn.Module, split, cache, run_dir: Path) -> list[dict]:
    return run_stage(stage, net, split, cache, run_dir, seed=0, progress=False)


def state_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / STATE, STATE_KIND).state


def logged(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.fixture(scope="module")
def uninterrupted(split, cache, tmp_path_factory) -> tuple[Path, TinyNet, list[dict]]:
    run_dir = tmp_path_factory.mktemp("loop-straight")
    stage, net = make_stage(cache)
    history = run(stage, net, split, cache, run_dir)
    return run_dir, net, history


def test_resume_after_crash_is_bit_identical(uninterrupted, split, cache, tmp_path: Path):
    """Killed after the step-8 save (at step 9), then rerun: the same weights, state and log as
    one uninterrupted run, bit for bit."""
    straight_dir, straight, _ = uninterrupted
    stage, net = make_stage(cache, crash_at=9)
    with pytest.raises(Crash):
        run(stage, net, split, cache, tmp_path)
    saved = load_checkpoint(tmp_path / STATE, STATE_KIND).config
    assert (saved["step"], saved["done"]) == (8, False)

    stage, resumed = make_stage(cache, init_seed=999)  # weights must come from the saved state
    history = run(stage, resumed, split, cache, tmp_path)
    assert [h["step"] for h in history] == [10, 12]
    assert_same_weights(resumed, straight)
    a, b = state_tensors(straight_dir), state_tensors(tmp_path)
    assert a.keys() == b.keys()
    for k in a:  # model, EMA, AdamW moments and the torch RNG
        assert torch.equal(a[k], b[k]), k
    assert logged(tmp_path) == logged(straight_dir)


def test_finished_stage_rerun_changes_nothing(uninterrupted, split, cache):
    """Rerunning a finished stage returns at once with the shipped (EMA) weights; the state file
    and the log stay as they were, and no training step runs."""
    run_dir, straight, _ = uninterrupted
    before = hashlib.sha256((run_dir / STATE).read_bytes()).hexdigest()
    log_before = (run_dir / "log.jsonl").read_text()
    stage, net = make_stage(cache, init_seed=7, crash_at=0)  # any step would raise
    assert run(stage, net, split, cache, run_dir) == []
    assert_same_weights(net, straight)
    assert hashlib.sha256((run_dir / STATE).read_bytes()).hexdigest() == before
    assert (run_dir / "log.jsonl").read_text() == log_before


def test_state_writes_leave_no_temp_files(uninterrupted, split, cache, tmp_path: Path):
    """After a full run and after a crash the run directory holds only the state and the log."""
    assert sorted(p.name for p in uninterrupted[0].iterdir()) == ["log.jsonl", STATE]
    stage, net = make_stage(cache, crash_at=6)
    with pytest.raises(Crash):
        run(stage, net, split, cache, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl", STATE]


def test_failed_save_keeps_the_previous_state(split, cache, tmp_path: Path, monkeypatch):
    """A save that dies half-written leaves the last good state in place and no temp file."""
    real = checkpoint_module.save_file
    calls = []

    def flaky(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 1:
            return real(tensors, path, metadata=metadata)
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", flaky)
    stage, net = make_stage(cache)
    with pytest.raises(OSError, match="disk full"):
        run(stage, net, split, cache, tmp_path)
    assert len(calls) == 2
    assert load_checkpoint(tmp_path / STATE, STATE_KIND).config["step"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl", STATE]


@pytest.mark.parametrize("damage", ["flip", "truncate", "other-model"])
def test_unusable_state_raises_checkpoint_error(
    uninterrupted, split, cache, tmp_path: Path, damage: str
):
    """A corrupted, truncated or mismatched train_state is refused with CheckpointError."""
    data = (uninterrupted[0] / STATE).read_bytes()
    width = 16
    if damage == "flip":
        pos = len(data) - 100  # inside the tensor payload
        data = data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :]
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        width = 8  # same stage name, another model
    (tmp_path / STATE).write_bytes(data)
    stage, net = make_stage(cache, width=width, crash_at=0)
    message = {"flip": "hash mismatch", "truncate": "not a readable", "other-model": "does not fit"}
    with pytest.raises(CheckpointError, match=message[damage]):
        run(stage, net, split, cache, tmp_path)


def test_module_ends_with_the_ema_weights(uninterrupted, split, cache, tmp_path: Path):
    """After training the module holds the EMA average (with its warm-up), not the live weights."""
    run_dir, straight, _ = uninterrupted
    state = state_tensors(run_dir)
    for name, p in straight.named_parameters():
        assert torch.equal(p.detach(), state[f"ema.{name}"]), name
    assert any(
        not torch.equal(p.detach(), state[f"model.{name}"])
        for name, p in straight.named_parameters()
    )

    shadow: dict[str, torch.Tensor] = {}

    def track(step: int) -> None:  # an independent EMA of the live weights
        d = min(0.9, (1 + step) / (10 + step))
        for name, p in net.named_parameters():
            shadow[name] = shadow[name] * d + p.detach() * (1 - d)

    stage, net = make_stage(cache, after_step=track)
    shadow.update({n: p.detach().clone() for n, p in net.named_parameters()})
    run(stage, net, split, cache, tmp_path)
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.detach(), shadow[name], rtol=1e-5, atol=1e-6)


def test_nan_loss_names_the_step(split, cache, tmp_path: Path):
    """A non-finite loss stops training with FloatingPointError naming the stage and step."""
    stage, net = make_stage(cache, nan_at=5)
    with pytest.raises(FloatingPointError, match=r"\[toy\] loss became nan at step 5"):
        run(stage, net, split, cache, tmp_path)


def test_learning_rate_warms_up_then_decays_to_the_floor():
    """Linear warm-up to lr, then cosine down to min_lr_ratio * lr at the last step."""
    c = StageConfig(steps=100, lr=1e-3, warmup=10, min_lr_ratio=0.1)
    assert lr_at(0, c) == pytest.approx(1e-4)
    assert lr_at(9, c) == pytest.approx(1e-3)
    assert lr_at(10, c) == pytest.approx(1e-3)
    assert lr_at(100, c) == pytest.approx(1e-4)
    lrs = [lr_at(s, c) for s in range(10, 100)]
    assert all(a >= b for a, b in itertools.pairwise(lrs))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": -1}, "steps must be >= 0 and batch_size >= 1, got -1 and 64"),
        ({"batch_size": 0}, "steps must be >= 0 and batch_size >= 1, got 10000 and 0"),
        ({"ema_decay": 1.0}, "ema_decay"),
    ],
)
def test_stage_config_is_validated(kwargs: dict, message: str):
    with pytest.raises(ValueError, match=message):
        StageConfig(**kwargs)
    assert StageConfig(steps=0).steps == 0  # a skipped stage (refine presets)


def test_periodic_evaluation_sees_the_ema_weights_and_leaves_training_untouched(
    split, cache, tmp_path: Path, uninterrupted
) -> None:
    """With an evaluator, the loop judges the EMA weights every `eval_every` steps and at the
    end, logs the scores as eval_*, and the training itself is unchanged by it."""
    stage, net = make_stage(cache)
    stage.config = StageConfig(
        12, 4, lr=3e-3, warmup=3, save_every=4, log_every=2, ema_decay=0.9, eval_every=4
    )
    seen: list[tuple[int, bool]] = []

    def judge(step: int) -> dict:
        seen.append((step, torch.is_grad_enabled()))
        return {"score": float(step)}

    history = run_stage(stage, net, split, cache, tmp_path, seed=0, progress=False, on_eval=judge)
    assert [s for s, _ in seen] == [4, 8, 12]
    assert not any(grad for _, grad in seen)
    assert [h["eval_score"] for h in history if "eval_score" in h] == [4.0, 8.0, 12.0]
    _, reference, _ = uninterrupted
    assert_same_weights(net, reference)


def _weights_after(split, cache, tmp: Path, **kwargs) -> dict[str, torch.Tensor]:
    stage, net = make_stage(cache, steps=6)
    run_stage(stage, net, split, cache, tmp, seed=0, progress=False, **kwargs)
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_loader_workers_give_the_same_run_whatever_the_timing(split, cache, tmp_path: Path):
    """Batches drawn by background processes come in a fixed order: two runs are identical."""
    a = _weights_after(split, cache, tmp_path / "a", workers=2)
    b = _weights_after(split, cache, tmp_path / "b", workers=2)
    single = _weights_after(split, cache, tmp_path / "c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], single[k]) for k in a)  # a different (documented) stream


def test_time_budget_fits_the_steps_and_records_them(split, cache, tmp_path: Path, monkeypatch):
    """After the probe steps the stage is cut to what fits the budget, and says how many it ran."""
    import easytune_engine.training.loop as loop

    clock = itertools.count(0.0, 0.5)  # every time.time() call advances half a second
    monkeypatch.setattr(loop.time, "time", lambda: next(clock))
    stage, net = make_stage(cache, steps=5000, save_every=1000)
    history = run_stage(
        stage, net, split, cache, tmp_path, seed=0, progress=False, time_budget_s=120
    )
    assert 100 <= stage.config.steps < 5000
    assert history[-1]["step"] == stage.config.steps
    assert load_checkpoint(tmp_path / STATE, STATE_KIND).config["step"] == stage.config.steps


def test_a_fitted_stage_runs_the_schedule_of_its_recorded_steps() -> None:
    """The manifest records `--steps STAGE=N` for a budgeted run: that command must give the
    same learning rate at every step, so the warm-up is kept; a budget shorter than the warm-up
    gets a tenth of its steps instead."""
    preset = StageConfig(5000, 4, lr=1e-4, warmup=200)
    for steps in (201, 1324, 6000):
        fitted = fitted_config(preset, steps, preset.warmup)
        plain = StageConfig(steps, 4, lr=1e-4, warmup=200)  # what --steps STAGE=steps runs
        assert [lr_at(s, fitted) for s in range(steps)] == [lr_at(s, plain) for s in range(steps)]
    short = fitted_config(preset, 150, preset.warmup)
    assert (short.steps, short.warmup) == (150, 16)


def test_time_budget_is_fitted_again_when_the_first_steps_were_slow(
    split, cache, tmp_path: Path, monkeypatch
):
    """Steps that get faster after the probe (a warming cache) lengthen the stage at the refit."""
    import easytune_engine.training.loop as loop

    clock = [0.0]
    monkeypatch.setattr(loop.time, "time", lambda: clock[0])
    fits = []
    real_steps = loop._BudgetFit.steps

    def spy(self, step):
        out = real_steps(self, step)
        if out is not None:
            fits.append(out)
        return out

    monkeypatch.setattr(loop._BudgetFit, "steps", spy)
    stage, net = make_stage(cache, steps=5000, save_every=1000)
    loss = stage.loss

    def timed_loss(batch, text, step):  # a step takes 1 s until step 80, then 0.25 s
        clock[0] += 1.0 if step < 80 else 0.25
        return loss(batch, text, step)

    stage.loss = timed_loss
    run_stage(stage, net, split, cache, tmp_path, seed=0, progress=False, time_budget_s=400)
    # probe (steps 20-70): 1 step/s, 330 s left -> 400 steps; at 100 s (step 160) the steps since
    # the probe ran at 3 per second, 300 s left -> 1,060
    assert fits == [400, 1060]
    assert stage.config.steps == 1060


def test_batches_drawn_on_the_device_give_the_single_process_run(split, cache, tmp_path: Path):
    """The whole split held on the device draws the default path's batches: the same weights."""
    default = _weights_after(split, cache, tmp_path / "a")
    on_device = _weights_after(split, cache, tmp_path / "b", device_batches=DeviceBatches(split))
    assert all(torch.equal(default[k], on_device[k]) for k in default)


def test_workers_and_device_batches_together_are_refused(split, cache, tmp_path: Path):
    stage, net = make_stage(cache, steps=2)
    with pytest.raises(ValueError, match="not both"):
        run_stage(
            stage,
            net,
            split,
            cache,
            tmp_path,
            progress=False,
            workers=1,
            device_batches=DeviceBatches(split),
        )
