"""The paper's comparison on the built-in corpus: every method, same backbone/reward/prompts/budget.

    report = compare(CompareConfig(quick=True))      # also `easytune-engine bench finetune`

Per method (and the untuned base): fine-tune a fresh copy of the backbone for the same number of
sampled trajectories, on the same prompt stream; record the training reward, seconds per update,
the peak bytes saved for backward (and CUDA peak on a GPU), and the wall-clock time until the
running mean reward (over TARGET_WINDOW trajectories) first reaches `reward_target`; then judge
the result with the independent evaluator and the oracle (never the training reward). A second
view gives every method the same wall-clock budget instead. Memory against T: one trajectory per
method at T = 5 … 50 steps.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..eval.backbone import evaluate_backbone
from ..models.pipeline import MotionGenerator
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
TARGET_WINDOW = 10  # trajectories in the running mean compared with the reward target
EVAL_KEYS = ("R@1", "R@3", "FID", "MM-Dist", "Diversity", "oracle_accuracy")


@dataclass(frozen=True)
class CompareConfig:
    model: str = "mld"
    methods: tuple[str, ...] = tuple(METHOD_SET)
    trajectories: int = 40
    batch_size: int = 8
    lr: float = 1e-5
    eval_samples: int = 256
    eval_repeats: int = 5
    wall_clock_s: float = 0.0  # > 0: also the equal-wall-clock view with this budget per method
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


@dataclass
class MethodRow:
    name: str
    train_reward: float | None = None  # mean over the last quarter of trajectories
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
    """Mean reward of the untuned model's samples on the first trajectories' prompts."""
    rng = np.random.default_rng(c.seed)
    values = []
    for i in range(max(2, c.trajectories // 4)):
        prompts, lengths = pool.draw(c.batch_size, rng)
        out = gen.generate(prompts, lengths, seed=c.seed + i)
        with torch.no_grad():
            raw = gen.backbone.denormalize(out.normalized)
            lens = torch.tensor(lengths)
            values.append(float(reward.reward(reward.normalize(raw), 0, prompts, lens).mean()))
    return float(np.mean(values))


def train_method(
    name: str, c: CompareConfig, reward, pool: PromptPool, target: float, budget_s: float = 0.0
) -> tuple[MethodRow, MotionGenerator]:
    gen = _fresh(c.model)
    cfg = FinetuneConfig(
        method=METHOD_SET[name],
        trajectories=c.trajectories if budget_s <= 0 else 10**6,
        batch_size=c.batch_size,
        lr=c.lr,
        seed=c.seed,
    )
    tuner = Finetuner(gen, reward, cfg, pool)
    row = MethodRow(name)
    rewards, seconds = [], []
    exclude = list(gen.backbone.parameters()) + list(reward.parameters())
    t0 = time.perf_counter()
    with SavedTensorMeter(exclude=exclude) as meter:
        while True:
            result, sec = tuner.step()
            rewards.append(result.reward)
            seconds.append(sec)
            elapsed = time.perf_counter() - t0
            row.curve.append((round(elapsed, 3), round(result.reward, 5)))
            window = rewards[-TARGET_WINDOW:]
            if (
                row.seconds_to_target is None
                and len(window) == TARGET_WINDOW
                and np.mean(window) >= target
            ):
                row.seconds_to_target = round(elapsed, 2)
            if budget_s > 0 and elapsed >= budget_s:
                break
            if budget_s <= 0 and len(rewards) >= c.trajectories:
                break
    row.wall_seconds = round(time.perf_counter() - t0, 2)
    row.updates = tuner.updates
    row.seconds_per_update = round(sum(seconds) / max(tuner.updates, 1), 4)
    row.train_reward = round(float(np.mean(rewards[-max(1, len(rewards) // 4) :])), 5)
    row.peak_saved_bytes = meter.peak_bytes
    row.cuda_peak_bytes = meter.cuda_peak_bytes
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
            m = METHOD_SET[name]
            if m.name == "draft" and m.k == 50:
                m = replace(m, k=steps)  # DRaFT-T: the whole chain
            cfg = FinetuneConfig(
                method=m, trajectories=1, batch_size=c.memory_batch, steps=steps, seed=c.seed
            )
            tuner = Finetuner(gen, reward, cfg, pool)
            exclude = list(gen.backbone.parameters()) + list(reward.parameters())
            with SavedTensorMeter(exclude=exclude) as meter:
                tuner.step()
            out[name][steps] = meter.peak_bytes
    return out


def compare(c: CompareConfig, corpus: Path, evaluator, reward, progress=print) -> dict:
    pool = PromptPool.from_corpus(corpus, "train")
    base_gen = _fresh(c.model)
    t0 = time.perf_counter()
    target = c.reward_target or base_reward(base_gen, reward, pool, c) + c.target_gain
    rows = {"base": asdict(MethodRow("base", eval=_judge(base_gen, corpus, evaluator, c)))}
    progress(f"base judged; reward target {target:.4f}")
    for name in c.methods:
        row, gen = train_method(name, c, reward, pool, target)
        row.eval = _judge(gen, corpus, evaluator, c)
        rows[name] = asdict(row)
        progress(f"{name}: reward {row.train_reward} {row.seconds_per_update} s/update")
    wall = {}
    if c.wall_clock_s > 0:
        for name in c.methods:
            row, gen = train_method(name, c, reward, pool, target, budget_s=c.wall_clock_s)
            row.eval = _judge(gen, corpus, evaluator, c)
            wall[name] = asdict(row)
            progress(f"{name} (wall-clock {c.wall_clock_s:.0f} s): {row.updates} updates")
    memory = memory_against_steps(c, reward, pool)
    return {
        "config": asdict(c),
        "reward_target": target,
        "equal_trajectories": rows,
        "equal_wall_clock": wall,
        "memory_vs_steps": {k: {str(t): b for t, b in v.items()} for k, v in memory.items()},
        "minutes": round((time.perf_counter() - t0) / 60, 2),
    }


def table(report: dict) -> str:
    head = ["method", *EVAL_KEYS, "train R", "saved MB", "s/update", "s to target"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in report["equal_trajectories"].items():
        cells = [name]
        for k in EVAL_KEYS:
            v = r["eval"].get(k)
            cells.append("-" if v is None else f"{v:.3f}±{r['eval'].get(k + '_ci') or 0:.3f}")
        cells.append("-" if r["train_reward"] is None else f"{r['train_reward']:.3f}")
        cells.append(f"{r['peak_saved_bytes'] / 1e6:.2f}")
        cells.append("-" if r["seconds_per_update"] is None else f"{r['seconds_per_update']:.3f}")
        cells.append("-" if r["seconds_to_target"] is None else f"{r['seconds_to_target']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
