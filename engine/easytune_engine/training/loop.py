"""One training loop for every backbone stage: AdamW, warm-up + cosine, clipping, EMA, resume.

    stage = Stage(name="vae", module=model.vae, loss=vae_loss, config=StageConfig(steps=20000))
    run_stage(stage, model, data, run_dir)

A stage trains `stage.module`'s parameters with `stage.loss(batch, text, step) -> (loss, logs)`.
Every `save_every` steps (and at the end) the whole training state goes to
`<run_dir>/train_state.safetensors` atomically: the model, the EMA weights, AdamW's moments, the
step, and both random generators, so a killed run resumes exactly where it last saved. At the end
the EMA weights replace the module's (what ships is the EMA model).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..data.humanml3d import Batch, HumanML3DSplit, sample_batch
from .device_batches import DeviceBatches

STATE_KIND = "training_state"


@dataclass(frozen=True)
class StageConfig:
    """Optimisation settings of one stage."""

    steps: int = 10000
    batch_size: int = 64
    lr: float = 2e-4
    warmup: int = 500
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    save_every: int = 500
    log_every: int = 50
    eval_every: int = 0  # steps between evaluations (with an evaluator; always at the end too)

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1:  # 0 steps: a skipped stage (refine presets)
            raise ValueError(
                f"steps must be >= 0 and batch_size >= 1, got {self.steps} and {self.batch_size}"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")


LossFn = Callable[[Batch, torch.Tensor, int], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class Stage:
    name: str
    module: nn.Module  # whose parameters this stage trains (and averages)
    loss: LossFn
    config: StageConfig
    after_step: Callable[[int], None] | None = None  # e.g. LCM's target-network update
    companions: dict[str, nn.Module] = field(default_factory=dict)  # saved too (LCM's target)


class TextCache:
    """Pooled embeddings of captions from a frozen text encoder, computed once per caption.

    The embeddings stay on the encoder's device, so the batches' text is there too.
    """

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self._cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> torch.Tensor:
        missing = sorted({t for t in texts if t not in self._cache})
        for i in range(0, len(missing), 256):
            chunk = missing[i : i + 256]
            pooled = self.encoder.encode(chunk).pooled.float()
            for t, v in zip(chunk, pooled, strict=True):
                self._cache[t] = v
        return torch.stack([self._cache[t] for t in texts])


def lr_at(step: int, c: StageConfig) -> float:
    if step < c.warmup:
        return c.lr * (step + 1) / c.warmup
    p = (step - c.warmup) / max(1, c.steps - c.warmup)
    return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


class EMA:
    """Exponential moving average of a module's floating-point parameters."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {n: p.detach().clone() for n, p in module.named_parameters()}

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))  # short warm-up of the average
        names, live = zip(*((n, p.detach()) for n, p in module.named_parameters()), strict=True)
        torch._foreach_lerp_([self.shadow[n] for n in names], list(live), 1 - d)

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        for n, p in module.named_parameters():
            p.copy_(self.shadow[n])


# ---------------------------------------------------------------------------------------------
# Training state on disk


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state as flat `opt.<param>.<key>` tensors + its param groups (JSON-able)."""
    sd = opt.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            tensors[f"opt.{idx}.{key}"] = torch.as_tensor(value)
    return tensors, {"param_groups": sd["param_groups"]}


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict, groups: list) -> None:
    """The inverse of `optimizer_tensors` (other entries of `tensors` are ignored)."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("opt."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": groups})


@dataclass(frozen=True)
class _StateConfig:  # what a training-state checkpoint records about its run
    stage: str
    step: int
    done: bool


def save_state(
    path: Path,
    stage: Stage,
    model: nn.Module,
    ema: EMA,
    opt: torch.optim.Optimizer,
    step: int,
    rng: np.random.Generator,
    done: bool,
) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors |= {f"ema.{k}": v for k, v in ema.shadow.items()}
    opt_tensors, opt_meta = optimizer_tensors(opt)
    tensors |= opt_tensors
    for name, module in stage.companions.items():
        tensors |= {f"aux.{name}.{k}": v for k, v in module.state_dict().items()}
    tensors["torch_rng"] = torch.get_rng_state()
    extra = {"numpy_rng": rng.bit_generator.state, "optimizer": opt_meta}
    save_checkpoint(path, STATE_KIND, _StateConfig(stage.name, step, done), tensors, extra)


def load_state(
    path: Path,
    stage: Stage,
    model: nn.Module,
    ema: EMA,
    opt: torch.optim.Optimizer,
    rng: np.random.Generator,
) -> tuple[int, bool] | None:
    """Restore a saved state of this stage: (step, done), or None when the file holds another."""
    ckpt = load_checkpoint(path, STATE_KIND)
    if ckpt.config.get("stage") != stage.name:
        return None
    model_state = {k[6:]: v for k, v in ckpt.state.items() if k.startswith("model.")}
    own = model.state_dict()
    if set(model_state) != set(own) or any(own[k].shape != v.shape for k, v in model_state.items()):
        raise CheckpointError(f"{path}: the saved training state does not fit this model/preset")
    model.load_state_dict(model_state)
    for name, module in stage.companions.items():
        prefix = f"aux.{name}."
        module.load_state_dict(
            {k[len(prefix) :]: v for k, v in ckpt.state.items() if k.startswith(prefix)}
        )
    for k in ema.shadow:
        ema.shadow[k].copy_(ckpt.state[f"ema.{k}"])
    restore_optimizer(opt, ckpt.state, ckpt.extra["optimizer"]["param_groups"])
    torch.set_rng_state(ckpt.state["torch_rng"])
    rng.bit_generator.state = ckpt.extra["numpy_rng"]
    return int(ckpt.config["step"]), bool(ckpt.config["done"])


# ---------------------------------------------------------------------------------------------
# The loop


def _progress(name: str, step: int, total: int, logs: dict, t0: float, first: int) -> None:
    rate = (step - first) / max(time.time() - t0, 1e-9)
    eta = (total - step) / max(rate, 1e-9)
    msg = " ".join(f"{k} {v:.4f}" for k, v in logs.items())
    sys.stderr.write(
        f"\r[{name}] {step}/{total} {100 * step / total:5.1f}% {rate:5.2f} it/s "
        f"eta {eta / 60:5.1f} min  {msg}   "
    )
    sys.stderr.flush()


def _stage_key(stage: Stage) -> int:
    return sum(map(ord, stage.name))


class _RandomBatches(torch.utils.data.IterableDataset):
    """Endless batches drawn by each loader worker from its own stream `[*seed, worker]`."""

    def __init__(self, split: HumanML3DSplit, batch_size: int, seed: list[int]) -> None:
        self.split, self.batch_size, self.seed = split, batch_size, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([*self.seed, info.id if info is not None else 0])
        split = self.split
        while True:
            yield sample_batch(split, self.batch_size, rng, mean=split.mean, std=split.std)


def _batch_source(
    split: HumanML3DSplit,
    batch_size: int,
    rng: np.random.Generator,
    device: torch.device,
    workers: int,
    device_batches: DeviceBatches | None,
    seed: list[int],
) -> Callable[[], Batch]:
    """The stage's next batch, on `device`: drawn there, by `workers` processes (in a fixed
    round-robin order, from their own streams `seed`), or here from `rng`."""
    if device_batches is not None:
        return lambda: device_batches.draw(batch_size, rng)
    if workers > 0:
        loader = torch.utils.data.DataLoader(
            _RandomBatches(split, batch_size, seed),
            batch_size=None,
            num_workers=workers,
            prefetch_factor=4,
        )
        stream = iter(loader)
        return lambda: next(stream).to(device, non_blocking=True)
    return lambda: sample_batch(split, batch_size, rng, mean=split.mean, std=split.std).to(device)


def fitted_config(c: StageConfig, steps: int, warmup: int) -> StageConfig:
    """`c` cut (or lengthened) to `steps` by a time budget, for a preset warm-up of `warmup`.

    The warm-up stays, so the recorded command (`--steps STAGE=steps`) runs the very schedule
    the budgeted run did; only a budget no longer than the warm-up gets a tenth of its steps."""
    return replace(c, steps=steps, warmup=warmup if steps > warmup else steps // 10 + 1)


class _BudgetFit:
    """Fits a stage's steps to a time budget: measured between steps 20 and 70 of the run, then
    again once a quarter of the budget has passed, on the steps since the first measurement.

    Early steps are slow (the text cache fills, kernels warm up): on an H200 the first estimate
    was half the steady rate, so the second fit lengthens the stage to what really fits (never
    beyond the stage's own steps)."""

    PROBE = (20, 70)
    REFIT = 0.25  # of the budget

    def __init__(self, budget_s: float, start: int, max_steps: int) -> None:
        self.budget_s, self.start, self.max_steps = budget_s, start, max_steps
        self.t_begin = time.time()
        self.t_probe = 0.0
        self.fits = 0
        self.step_fit, self.t_fit = 0, 0.0

    def steps(self, step: int) -> int | None:
        """The stage's new step count at this step, or None to keep it."""
        ran = step - self.start
        if self.fits == 2 or ran < self.PROBE[0]:
            return None
        if ran == self.PROBE[0]:
            self.t_probe = time.time()
            return None
        if ran < self.PROBE[1]:
            return None
        now = time.time()
        if self.fits == 0:
            rate = (self.PROBE[1] - self.PROBE[0]) / max(now - self.t_probe, 1e-9)
            self.step_fit, self.t_fit = step, now
        elif now - self.t_begin >= self.REFIT * self.budget_s and step > self.step_fit:
            rate = (step - self.step_fit) / max(now - self.t_fit, 1e-9)
        else:
            return None
        self.fits += 1
        left = self.budget_s - (now - self.t_begin)
        return int(min(self.max_steps, max(step + rate * left, step + 1)))


def run_stage(
    stage: Stage,
    model: nn.Module,
    split: HumanML3DSplit,
    text_cache: TextCache,
    run_dir: Path,
    *,
    seed: int = 0,
    progress: bool = True,
    on_eval: Callable[[int], dict] | None = None,
    workers: int = 0,
    time_budget_s: float = 0.0,
    device_batches: DeviceBatches | None = None,
) -> list[dict]:
    """Train one stage (resuming from `run_dir` when its saved state is of this stage).

    The stage trains on the device its module is on. `workers` > 0 draws the batches in that many
    background processes (for a GPU, which one process cannot feed); their random streams differ
    from the single-process path's, which alone resumes draw for draw. `time_budget_s` > 0 shortens
    the stage to the steps that fit that many seconds, measured on its first steps; the number is
    written to `stage.config` (and so to the manifest) for runs that reproduce it.
    `device_batches` (the split held on the training device) draws the single-process path's exact
    batches there, without the CPU in the way.
    """
    if workers > 0 and device_batches is not None:
        raise ValueError("draw batches either in worker processes or on the device, not both")
    c = stage.config
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / "train_state.safetensors"
    log_path = run_dir / "log.jsonl"
    rng = np.random.default_rng([seed, _stage_key(stage)])
    torch.manual_seed(seed)
    params = [p for p in stage.module.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": c.weight_decay},
            {"params": no_decay, "weight_decay": 0},
        ],
        lr=c.lr,
    )
    ema = EMA(stage.module, c.ema_decay)
    start = 0
    if state_path.is_file():
        restored = load_state(state_path, stage, model, ema, opt, rng)
        if restored is not None:
            start, done = restored
            if done:
                ema.copy_to(stage.module)
                return []
    history: list[dict] = []
    model.train()
    t0 = time.time()
    logs: dict[str, float] = {}
    device = next(stage.module.parameters()).device
    next_batch = _batch_source(
        split, c.batch_size, rng, device, workers, device_batches, [seed, _stage_key(stage), start]
    )
    fit = _BudgetFit(time_budget_s, start, c.steps) if time_budget_s else None
    warmup = c.warmup
    step = start
    while step < c.steps:
        if fit is not None and (fitted := fit.steps(step)) is not None:
            c = stage.config = fitted_config(c, fitted, warmup)
            if progress:
                sys.stderr.write(f"\n[{stage.name}] {fitted} steps fit the time budget\n")
        for g in opt.param_groups:
            g["lr"] = lr_at(step, c)
        batch = next_batch()
        loss, logs = stage.loss(batch, text_cache(batch.texts).to(device), step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"[{stage.name}] loss became {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, c.grad_clip))
        opt.step()
        ema.update(stage.module, step)
        if stage.after_step is not None:
            stage.after_step(step)
        done_steps = step + 1
        if done_steps % c.log_every == 0 or done_steps == c.steps:
            entry = {"stage": stage.name, "step": done_steps, "lr": lr_at(step, c)} | logs
            entry["seconds"] = round(time.time() - t0, 1)
            periodic = c.eval_every and done_steps % c.eval_every == 0
            if on_eval is not None and (periodic or done_steps == c.steps):
                entry |= _evaluate_with_ema(stage, ema, model, on_eval, done_steps)
            history.append(entry)
            with open(log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")
            if progress:
                _progress(stage.name, done_steps, c.steps, logs, t0, start)
        if done_steps % c.save_every == 0 and done_steps < c.steps:
            save_state(state_path, stage, model, ema, opt, done_steps, rng, done=False)
        step = done_steps
    if progress:
        sys.stderr.write("\n")
    save_state(state_path, stage, model, ema, opt, c.steps, rng, done=True)
    ema.copy_to(stage.module)
    model.eval()
    return history


def _evaluate_with_ema(stage: Stage, ema: EMA, model: nn.Module, on_eval, step: int) -> dict:
    """Evaluate the EMA weights, then put the live weights back."""
    live = {n: p.detach().clone() for n, p in stage.module.named_parameters()}
    ema.copy_to(stage.module)
    model.eval()
    try:
        with torch.no_grad():
            result = on_eval(step)
    finally:
        with torch.no_grad():
            for n, p in stage.module.named_parameters():
                p.copy_(live[n])
        model.train()
    return {f"eval_{k}": v for k, v in result.items()}


__all__ = ["EMA", "Stage", "StageConfig", "TextCache", "run_stage"]
