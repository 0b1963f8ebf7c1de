"""The paper's comparison on the built-in corpus: every method, same backbone/reward/prompts/budget.

    report = compare(CompareConfig(quick=True))      # also `easytune-engine bench finetune`

Per method (and the untuned base): fine-tune a fresh copy of the backbone for the same number of
sampled trajectories, on the same prompt stream; record the training reward, seconds per update,
the peak bytes saved for backward (and CUDA peak on a GPU), and the wall-clock time until the
running mean reward (over TARGET_WINDOW trajectories) first reaches `reward_target`; then judge
the result with the independent evaluator and the oracle (never the training reward). A second
view gives every method the same wall-clock budget instead. Memory against T: one trajectory per
method at T = 5 … 50 steps.

Full fine-tuning against LoRA: `LORA_SET` adds rows that train rank-r adapters with an existing
method's settings ("EasyTune-step LoRA-8"); every row records its trainable parameter count and the
bytes of what a run writes (the full backbone checkpoint, or the adapter file), measured by really
saving it to a temporary directory.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..eval.backbone import evaluate_backbone
from ..models.io import save_backbone
from ..models.pipeline import MotionGenerator
from .lora import has_lora, save_adapter
from .memory import SavedTensorMeter
from .methods import MethodConfig
from .trainer import FinetuneConfig, Finetuner, PromptPool

METHOD_SET: dict[str, MethodConfig] = {
    "EasyTune-step": MethodConfig("easytune", window=10),
    "EasyTune-chain": MethodConfig("easytune-chain", window=10),
    "DRaFT-10": MethodConfig("draft", k=10),
    "DRaFT-50": MethodConfig("draft", k=50),
    "AlignProp": MethodConfig("alignprop", keep_prob=0.1),
    "DRTune": MethodConfig("drtune", k=10),
    "ReFL": MethodConfig("refl", late_range=10),
}
# LoRA rows: name -> (the METHOD_SET entry whose settings they use, LoRA rank).
LORA_SET: dict[str, tuple[str, int]] = {"EasyTune-step LoRA-8": ("EasyTune-step", 8)}
ALL_METHODS: tuple[str, ...] = (*METHOD_SET, *LORA_SET)
TARGET_WINDOW = 10  # trajectories in the running mean compared with the reward target
EVAL_KEYS = ("R@1", "R@3", "FID", "MM-Dist", "Diversity", "oracle_accuracy")


@dataclass(frozen=True)
class CompareConfig:
    model: str = "mld"
    methods: tuple[str, ...] = ALL_METHODS
    trajectories: int = 40
    batch_size: int = 8
    lr: float = 1e-5
    eval_samples: int = 256
    eval_repeats: int = 5
    wall_clock_s: float = 0.0  # > 0: also the equal-wall-clock view with this budget per method
    equal_trajectories: bool = True  # False: only the base and the equal-wall-clock view
    memory_steps: tuple[int, ...] = (5, 10, 20, 30, 50)
    memory_batch: int = 4
    reward_target: float = 0.0  # 0: the base model's mean reward + `target_gain`
    target_gain: float = 0.05
    seed: int = 0


def quick(config: CompareConfig) -> CompareConfig:
    """≤ 10 minutes on 2 CPU cores."""
    return replace(
        config,
        trajectories=6,
        batch_size=4,
        eval_samples=64,
        eval_repeats=3,
        memory_steps=(5, 10, 20),
        memory_batch=2,
    )


def method_spec(name: str) -> tuple[MethodConfig, int]:
    """(method settings, LoRA rank; 0 = full fine-tuning) of a row name."""
    if name in METHOD_SET:
        return METHOD_SET[name], 0
    if name in LORA_SET:
        base, rank = LORA_SET[name]
        return METHOD_SET[base], rank
    raise KeyError(f"unknown method {name!r}; known: {', '.join(ALL_METHODS)}")


def steps_config(
    name: str, steps: int, batch_size: int, trajectories: int = 1, seed: int = 0
) -> FinetuneConfig:
    """A row's fine-tuning settings at T = `steps` sampling steps; DRaFT-50 becomes DRaFT-T (the
    whole chain), as the memory-against-T view measures it."""
    method, rank = method_spec(name)
    if method.name == "draft" and method.k == 50:
        method = replace(method, k=steps)
    return FinetuneConfig(
        method=method,
        trajectories=trajectories,
        batch_size=batch_size,
        steps=steps,
        lora_rank=rank,
        seed=seed,
    )


def _load_average() -> float | None:
    """The 1-minute load average (other jobs on the machine slow every timing down)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def saved_artifact_bytes(gen: MotionGenerator) -> tuple[str, int]:
    """(file name, bytes) of what a fine-tuning run writes, saved for real to a temporary dir.

    With LoRA adapters: the adapter file (`finetune.lora.save_adapter`); otherwise the whole
    backbone checkpoint (`models.io.save_backbone`), as `finetune.run` writes them.
    """
    backbone = gen.backbone
    with tempfile.TemporaryDirectory() as tmp:
        if has_lora(backbone):
            path = Path(tmp) / "adapter.safetensors"
            save_adapter(path, backbone)
        else:
            path = Path(tmp) / "model.safetensors"
            save_backbone(path, backbone, dict(getattr(backbone, "checkpoint_extra", {})))
        return path.name, path.stat().st_size


@dataclass
class MethodRow:
    name: str
    lora_rank: int = 0  # 0: full fine-tuning of the denoiser
    trainable_params: int | None = None
    artifact: str | None = None  # the file a run writes: model.safetensors or adapter.safetensors
    artifact_bytes: int | None = None
    load_average: float | None = None  # 1-minute load average when the training ended
    train_reward: float | None = None  # mean over the last quarter (at least 3) of trajectories
    seconds_per_update: float | None = None
    updates: int = 0
    peak_saved_bytes: int = 0
    cuda_peak_bytes: int | None = None
    seconds_to_target: float | None = None  # first time the running mean reaches the target
    wall_seconds: float = 0.0
    curve: list[tuple[float, float]] = field(default_factory=list)  # (elapsed s, reward) each
    eval: dict = field(default_factory=dict)


def _fresh(model: str) -> MotionGenerator:
    return MotionGenerator.load(model)


def _judge(gen: MotionGenerator, corpus: Path, evaluator, c: CompareConfig) -> dict:
    rep = evaluate_backbone(
        gen,
        corpus,
        evaluator,
        samples=c.eval_samples,
        repeats=c.eval_repeats,
        seed=c.seed,
        mm_texts=0,
    ).as_json()
    return {k: rep.get(k) for k in EVAL_KEYS} | {f"{k}_ci": rep.get(f"{k}_ci") for k in EVAL_KEYS}


def base_reward(gen: MotionGenerator, reward, pool: PromptPool, c: CompareConfig) -> float:
    """Mean reward of the untuned model on the first trajectories every method trains on.

    Replays the trainer's stream exactly (`Finetuner.step`: prompts, then the trajectory's noise
    seed, from one generator seeded with `c.seed`), so an untrained model's running mean starts at
    this value; drawing other prompts or noise made the target a different population's mean.
    """
    rng = np.random.default_rng(c.seed)
    values = []
    for _ in range(max(2, c.trajectories // 4)):
        prompts, lengths = pool.draw(c.batch_size, rng)
        seed = int(rng.integers(2**31))  # as Finetuner.trajectory draws it
        out = gen.generate(prompts, lengths, seed=seed)
        with torch.no_grad():
            raw = gen.backbone.denormalize(out.normalized)
            lens = torch.tensor(lengths)
            values.append(float(reward.reward(reward.normalize(raw), 0, prompts, lens).mean()))
    return float(np.mean(values))


def seconds_to_target(curve: list[tuple[float, float]], target: float) -> float | None:
    """First elapsed time at which the mean reward of the last TARGET_WINDOW trajectories of
    `curve` ((elapsed s, reward) per trajectory) reaches `target`; None if it never does."""
    rewards = [r for _, r in curve]
    for i in range(TARGET_WINDOW - 1, len(curve)):
        if np.mean(rewards[i + 1 - TARGET_WINDOW : i + 1]) >= target:
            return round(float(curve[i][0]), 2)
    return None


def train_method(
    name: str,
    c: CompareConfig,
    reward,
    pool: PromptPool,
    target: float,
    budget_s: float = 0.0,
    gen: MotionGenerator | None = None,
) -> tuple[MethodRow, MotionGenerator]:
    """Fine-tune `gen` (default: a fresh copy of `c.model`) with the row's method and measure it.

    budget_s > 0: train until that many seconds have passed instead of `c.trajectories`. The
    learning-rate schedule spans `c.trajectories` either way (past them it stays at its floor),
    so a time budget does not leave the rate at its peak for the whole run.
    """
    gen = gen if gen is not None else _fresh(c.model)
    method, rank = method_spec(name)
    cfg = FinetuneConfig(
        method=method,
        trajectories=c.trajectories,
        batch_size=c.batch_size,
        lr=c.lr,
        lora_rank=rank,
        seed=c.seed,
    )
    tuner = Finetuner(gen, reward, cfg, pool)
    row = MethodRow(name, lora_rank=rank)
    row.trainable_params = sum(p.numel() for p in tuner.params)
    rewards, seconds = [], []
    exclude = list(gen.backbone.parameters()) + list(reward.parameters())
    t0 = time.perf_counter()
    with SavedTensorMeter(exclude=exclude, device=gen.device) as meter:
        while True:
            result, sec = tuner.step()
            rewards.append(result.reward)
            seconds.append(sec)
            elapsed = time.perf_counter() - t0
            row.curve.append((round(elapsed, 3), round(result.reward, 5)))
            if budget_s > 0 and elapsed >= budget_s:
                break
            if budget_s <= 0 and len(rewards) >= c.trajectories:
                break
    row.wall_seconds = round(time.perf_counter() - t0, 2)
    row.seconds_to_target = seconds_to_target(row.curve, target)
    row.updates = tuner.updates
    row.seconds_per_update = round(sum(seconds) / max(tuner.updates, 1), 4)
    tail = max(min(3, len(rewards)), len(rewards) // 4)  # one batch of prompts is noise
    row.train_reward = round(float(np.mean(rewards[-tail:])), 5)
    row.peak_saved_bytes = meter.peak_bytes
    row.cuda_peak_bytes = meter.cuda_peak_bytes
    row.load_average = _load_average()
    row.artifact, row.artifact_bytes = saved_artifact_bytes(gen)
    return row, gen


def memory_against_steps(c: CompareConfig, reward, pool: PromptPool) -> dict[str, dict[int, int]]:
    """Peak saved bytes of one trajectory (batch `memory_batch`) per method and step count T."""
    out: dict[str, dict[int, int]] = {}
    for name in c.methods:
        out[name] = {}
        for steps in c.memory_steps:
            gen = _fresh(c.model)
            if gen.backbone.sampling.sampler == "lcm" and steps > 50:
                continue
            cfg = steps_config(name, steps, c.memory_batch, seed=c.seed)
            tuner = Finetuner(gen, reward, cfg, pool)
            exclude = list(gen.backbone.parameters()) + list(reward.parameters())
            with SavedTensorMeter(exclude=exclude, device=gen.device) as meter:
                tuner.step()
            out[name][steps] = meter.peak_bytes
    return out


def compare(
    c: CompareConfig,
    corpus: Path,
    evaluator,
    reward,
    progress: Callable[[str], object] = print,
    partial: Callable[[dict], object] | None = None,
) -> dict:
    """Run the whole comparison; `partial(report)` gets the report so far after every row."""
    for name in c.methods:
        method_spec(name)  # unknown names fail before any work
    pool = PromptPool.from_corpus(corpus, "train")
    base_gen = _fresh(c.model)
    t0 = time.perf_counter()
    report: dict = {
        "config": asdict(c),
        "reward_target": None,
        "equal_trajectories": {},
        "equal_wall_clock": {},
        "memory_vs_steps": {},
        "load_average_start": _load_average(),
        "partial": True,
    }

    def done_row() -> None:
        report["minutes"] = round((time.perf_counter() - t0) / 60, 2)
        if partial is not None:
            partial(report)

    target = c.reward_target or base_reward(base_gen, reward, pool, c) + c.target_gain
    report["reward_target"] = target
    rows = report["equal_trajectories"]
    base = MethodRow("base", eval=_judge(base_gen, corpus, evaluator, c))
    base.artifact, base.artifact_bytes = saved_artifact_bytes(base_gen)
    rows["base"] = asdict(base)
    progress(f"base judged; reward target {target:.4f}")
    done_row()
    for name in c.methods if c.equal_trajectories else ():
        row, gen = train_method(name, c, reward, pool, target)
        row.eval = _judge(gen, corpus, evaluator, c)
        rows[name] = asdict(row)
        progress(
            f"{name}: reward {row.train_reward} {row.seconds_per_update} s/update, "
            f"{row.wall_seconds} s, load {row.load_average}"
        )
        done_row()
    if c.wall_clock_s > 0:
        for name in c.methods:
            row, gen = train_method(name, c, reward, pool, target, budget_s=c.wall_clock_s)
            row.eval = _judge(gen, corpus, evaluator, c)
            report["equal_wall_clock"][name] = asdict(row)
            progress(f"{name} (wall-clock {c.wall_clock_s:.0f} s): {row.updates} updates")
            done_row()
    memory = memory_against_steps(c, reward, pool)
    report["memory_vs_steps"] = {k: {str(t): b for t, b in v.items()} for k, v in memory.items()}
    report["load_average_end"] = _load_average()
    report["partial"] = False
    report["minutes"] = round((time.perf_counter() - t0) / 60, 2)
    return report


def table(report: dict, view: str = "equal_trajectories") -> str:
    """Markdown table of one view ("equal_trajectories" or "equal_wall_clock")."""
    head = [
        "method",
        *EVAL_KEYS,
        "train R",
        "saved MB",
        "s/update",
        "s to target",
        "updates",
        "wall s",
        "trainable",
        "file MB",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in report[view].items():
        cells = [name]
        for k in EVAL_KEYS:
            v = r["eval"].get(k)
            cells.append("-" if v is None else f"{v:.3f}±{r['eval'].get(k + '_ci') or 0:.3f}")
        cells.append("-" if r["train_reward"] is None else f"{r['train_reward']:.3f}")
        cells.append(f"{r['peak_saved_bytes'] / 1e6:.2f}")
        cells.append("-" if r["seconds_per_update"] is None else f"{r['seconds_per_update']:.3f}")
        cells.append("-" if r["seconds_to_target"] is None else f"{r['seconds_to_target']:.1f}")
        cells.append(str(r["updates"]) if r["updates"] else "-")
        cells.append(f"{r['wall_seconds']:.0f}" if r["wall_seconds"] else "-")
        n = r.get("trainable_params")
        cells.append("-" if n is None else f"{n:,}")
        size = r.get("artifact_bytes")
        cells.append("-" if size is None else f"{size / 1e6:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
