"""EasyTune's memory and speed claims on a GPU: every fine-tuning method, one trajectory per T.

    python benchmarks/finetune_gpu.py                     # cuda:0, MLD and MDM, batch 64, T = 5…50
    python benchmarks/finetune_gpu.py --device cpu --batch 2 --steps 5 10 --models mld \\
        --deadline-s 120                                  # the CPU dry run
    python benchmarks/finetune_gpu.py --export-prompts    # here: the corpus's train prompts to
        # results/finetune_gpu_prompts.json (~2 MB), read on a GPU machine that has no corpus

Prompts: the corpus's train split (`--corpus`, default the built-in corpus dir); without it,
`--prompts FILE` or results/finetune_gpu_prompts.json (the same pool, so the same draws); failing
both, 8 fixed prompts of 196 frames. The report's "prompts" says which was used.

For every backbone, method (EasyTune-step, EasyTune-chain, DRaFT-10, DRaFT-50, AlignProp, DRTune,
ReFL, EasyTune-step LoRA-8) and number of sampling steps T: one fine-tuning trajectory of `--batch`
prompts on the shipped weights (DRaFT-50 becomes DRaFT-T, the whole chain, as in
`finetune.compare.memory_against_steps`), recording the peak bytes saved for backward
(`SavedTensorMeter`, exact), the CUDA peak allocated above the start (which includes the AdamW state
the first update creates; `cuda_extra_bytes` subtracts it, as ../shared/docs/gpu.md's "extra"
does), and the seconds of the trajectory with its updates. Then a speed row per method at
`--speed-steps` (default 50): one warm-up trajectory, then `--speed-repeats` timed ones.

Cells run in priority order so that a time box keeps what matters: first EasyTune-step, ReFL and
DRaFT-50 at T = 10 and 50 (the ratios and the flatness below) on every backbone, then their speed
rows, then the other memory cells, then the other speed rows. No cell starts after
`--deadline-s` seconds (a started one finishes: allow ~20 s more in an outer time box); a failing
cell records its error and the rest go on. `finetune_gpu.json` (and a markdown `finetune_gpu.md`)
in `--out` are rewritten after every cell, with "partial": true until every planned cell has run.
Memory cells run under the meter's Python hooks, so their seconds are slower than the speed rows'.

Summary per backbone: EasyTune-step's memory over ReFL's and over DRaFT-T's at the largest T, and
its flatness (T = 50 over T = 10), for saved bytes and for the CUDA "extra".
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.finetune.compare import ALL_METHODS, steps_config
from easytune_engine.finetune.memory import SavedTensorMeter
from easytune_engine.finetune.trainer import Finetuner, PromptPool
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.reward.model import load_reward_model
from machine import machine

KEY_METHODS = ("EasyTune-step", "ReFL", "DRaFT-50")  # the ratios: EasyTune over ReFL and DRaFT-T
FLAT_STEPS = (10, 50)  # flatness: EasyTune at T = 50 over T = 10
FALLBACK_PROMPTS = (  # used only when the corpus is missing (the GPU machine may not have it)
    "a person walks forward slowly",
    "a person jumps up and down twice",
    "someone waves with the right hand",
    "a person runs in a circle",
    "a man kicks with his left leg",
    "a person sits down on a chair",
    "a person turns around and walks back",
    "someone raises both arms above the head",
)
FALLBACK_LENGTH = 196  # frames: the paper's (and gpu.md's) motion length
DEFAULT_PROMPTS_FILE = Path(__file__).resolve().parent / "results" / "finetune_gpu_prompts.json"

Loader = Callable[[str, torch.device], MotionGenerator]


def _default_loader(name: str, device: torch.device) -> MotionGenerator:
    return MotionGenerator.load(name, device=str(device))


def resolve_device(spec: str) -> torch.device:
    """`--device` as a torch.device; a CUDA device gets its index and becomes the current one."""
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"CUDA is not available (torch {torch.__version__})")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    return device


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def export_prompts(pool: PromptPool, path: Path, source: str) -> None:
    """Write the pool as JSON (texts, lengths), for a machine without the corpus (`--prompts`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"source": source, "texts": list(pool.texts), "lengths": list(pool.lengths)}
    path.write_text(json.dumps(data) + "\n")


def load_prompts(corpus: Path, prompts_file: Path | None) -> tuple[PromptPool, dict]:
    """The train prompts: `prompts_file` if given; else the corpus; else DEFAULT_PROMPTS_FILE
    if it exists (the same pool, exported with --export-prompts); else a fixed fallback set of
    196-frame prompts. Which one was used is recorded in the report."""
    errors = []
    if prompts_file is None:
        try:
            pool = PromptPool.from_corpus(corpus, "train")
            return pool, {"source": "corpus", "path": str(corpus), "count": len(pool.texts)}
        except Exception as e:  # one shot on the GPU: measure with other prompts
            errors.append(f"corpus {corpus}: {type(e).__name__}: {e}"[:300])
    for path in [prompts_file] if prompts_file is not None else [DEFAULT_PROMPTS_FILE]:
        try:
            data = json.loads(path.read_text())
            pool = PromptPool(tuple(data["texts"]), tuple(int(n) for n in data["lengths"]))
            if not pool.texts or len(pool.texts) != len(pool.lengths):
                raise ValueError("no prompts, or texts and lengths differ in number")
            info = {"source": "file", "path": str(path), "count": len(pool.texts)}
            return pool, info | {"exported_from": data.get("source"), "errors": errors}
        except Exception as e:
            errors.append(f"prompts {path}: {type(e).__name__}: {e}"[:300])
    pool = PromptPool(FALLBACK_PROMPTS, (FALLBACK_LENGTH,) * len(FALLBACK_PROMPTS))
    return pool, {"source": "fallback", "count": len(pool.texts), "errors": errors}


class Backbone:
    """One loaded generator per backbone, restored to its shipped weights before every cell.

    Full fine-tuning updates the weights in place, so the next cell starts from a copy of the
    state dict taken at load time. LoRA wraps the weights in parametrizations: those cells get a
    separately loaded generator that is thrown away afterwards.
    """

    def __init__(self, name: str, device: torch.device, loader: Loader) -> None:
        self.name, self.device, self.loader = name, device, loader
        self.gen = loader(name, device)
        self.state = {k: v.detach().clone() for k, v in self.gen.backbone.state_dict().items()}

    def fresh(self, lora: bool) -> MotionGenerator:
        if lora:
            return self.loader(self.name, self.device)
        backbone = self.gen.backbone
        backbone.load_state_dict(self.state, strict=True)  # copies into the same tensors
        for p in backbone.parameters():
            p.grad = None
        backbone.requires_grad_(False).eval()
        return self.gen


def _tuner(
    model: Backbone, name: str, steps: int, batch: int, trajectories: int, reward, pool
) -> Finetuner:
    cfg = steps_config(name, steps, batch, trajectories)
    gen = model.fresh(cfg.lora_rank > 0)
    torch.manual_seed(0)  # LoRA's A is drawn from the global generator: the same in every cell
    return Finetuner(gen, reward, cfg, pool)


def _state_bytes(tuner: Finetuner, device: torch.device) -> int:
    """Bytes of the optimizer state on `device` (AdamW's two moments per trainable tensor)."""
    return sum(
        v.numel() * v.element_size()
        for st in tuner.opt.state.values()
        for v in st.values()
        if isinstance(v, torch.Tensor) and v.device.type == device.type
    )


def memory_cell(
    model: Backbone, name: str, steps: int, batch: int, reward, pool, device: torch.device
) -> dict:
    """One trajectory of `name` at T = `steps`: saved bytes, CUDA peak, seconds."""
    tuner = _tuner(model, name, steps, batch, 1, reward, pool)
    gen = tuner.gen
    exclude = list(gen.backbone.parameters()) + list(reward.parameters())
    gc.collect()
    sync(device)
    with SavedTensorMeter(exclude=exclude, device=device) as meter:
        t0 = time.perf_counter()
        result, _ = tuner.step()
        sync(device)
        seconds = time.perf_counter() - t0
    state = _state_bytes(tuner, device)
    row = {
        "peak_saved_bytes": meter.peak_bytes,
        "cuda_peak_bytes": meter.cuda_peak_bytes,
        "optimizer_state_bytes": state,
        "cuda_extra_bytes": None
        if meter.cuda_peak_bytes is None
        else meter.cuda_peak_bytes - state,
        "trainable_params": sum(p.numel() for p in tuner.params),
        "seconds": round(seconds, 4),
        "updates": tuner.updates,
        "seconds_per_update": round(seconds / max(tuner.updates, 1), 4),
        "trained_steps": len(result.trained_steps),
        "reward": round(result.reward, 5),
    }
    del tuner, gen, exclude
    return row


def speed_cell(
    model: Backbone,
    name: str,
    steps: int,
    batch: int,
    repeats: int,
    reward,
    pool,
    device: torch.device,
) -> dict:
    """One warm-up trajectory, then `repeats` timed ones (synchronised around the timing)."""
    tuner = _tuner(model, name, steps, batch, 1 + repeats, reward, pool)
    tuner.step()  # warm-up: allocator, cuBLAS handles, the optimizer state
    sync(device)
    u0 = tuner.updates
    t0 = time.perf_counter()
    for _ in range(repeats):
        tuner.step()
    sync(device)
    total = time.perf_counter() - t0
    updates = tuner.updates - u0
    del tuner
    return {
        "steps": steps,
        "trajectories": repeats,
        "updates": updates,
        "seconds": round(total, 4),
        "seconds_per_trajectory": round(total / repeats, 4),
        "seconds_per_update": round(total / max(updates, 1), 4),
    }


def _steps_pair(steps: list[int]) -> tuple[int, int]:
    """(low, high) T for the flatness and the ratios: 10 and 50 when measured, else min, max."""
    hi = FLAT_STEPS[1] if FLAT_STEPS[1] in steps else max(steps)
    lo = FLAT_STEPS[0] if FLAT_STEPS[0] in steps and FLAT_STEPS[0] < hi else min(steps)
    return lo, hi


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return round(a / b, 4)


def summarise(memory: dict, steps: list[int]) -> dict:
    """Per backbone: EasyTune-step over ReFL and DRaFT-T at the high T, and its flatness."""
    lo, hi = _steps_pair(steps)
    out = {}
    for model, per in memory.items():

        def get(name: str, t: int, key: str, per: dict = per) -> float | None:
            cell = per.get(name, {}).get(str(t), {})
            v = cell.get(key)
            return None if v is None else float(v)

        s: dict = {"T_low": lo, "T_high": hi}
        for key, label in (("peak_saved_bytes", "saved"), ("cuda_extra_bytes", "cuda_extra")):
            et_hi, et_lo = get("EasyTune-step", hi, key), get("EasyTune-step", lo, key)
            s[f"{label}_easytune_over_refl"] = _ratio(et_hi, get("ReFL", hi, key))
            s[f"{label}_easytune_over_draft_T"] = _ratio(et_hi, get("DRaFT-50", hi, key))
            s[f"{label}_easytune_flatness"] = _ratio(et_hi, et_lo)
            s[f"{label}_draft_T_growth"] = _ratio(
                get("DRaFT-50", hi, key), get("DRaFT-50", lo, key)
            )
        out[model] = s
    return out


def _mb(v: float | None) -> str:
    return "-" if v is None else f"{v / 2**20:.1f}"


def _num(v: float | None, fmt: str = "{:.3f}") -> str:
    return "-" if v is None else fmt.format(v)


def tables(report: dict) -> str:
    """Markdown: memory per backbone (saved MiB / CUDA extra MiB), speed, and the summary."""
    steps = report["steps"]
    lines: list[str] = []
    for model, per in report["memory"].items():
        lines += [
            f"### {model}: memory of one trajectory, batch {report['batch']} "
            "(saved for backward MiB / CUDA extra MiB; DRaFT-50 = DRaFT-T)",
            "",
            "| method | " + " | ".join(f"T={t}" for t in steps) + " |",
            "|---|" + "---|" * len(steps),
        ]
        for name, cells in per.items():
            row = []
            for t in steps:
                c = cells.get(str(t))
                if c is None:
                    row.append("-")
                elif "error" in c:
                    row.append("error")
                else:
                    row.append(f"{_mb(c['peak_saved_bytes'])} / {_mb(c['cuda_extra_bytes'])}")
            lines.append(f"| {name} | " + " | ".join(row) + " |")
        lines.append("")
    for model, per in report["speed"].items():
        lines += [
            f"### {model}: speed (batch {report['batch']}, mean of timed trajectories)",
            "",
            "| method | T | s / trajectory | s / update | updates / trajectory |",
            "|---|---|---|---|---|",
        ]
        for name, c in per.items():
            if "error" in c:
                lines.append(f"| {name} | - | error | error | - |")
                continue
            per_traj = c["updates"] / max(c["trajectories"], 1)
            lines.append(
                f"| {name} | {c['steps']} | {c['seconds_per_trajectory']:.3f} | "
                f"{c['seconds_per_update']:.4f} | {per_traj:g} |"
            )
        lines.append("")
    lines += [
        "### Summary: EasyTune-step against ReFL and DRaFT-T (memory ratios)",
        "",
        "| model | T | saved ET/ReFL | saved ET/DRaFT-T | saved flat (ET T_hi/T_lo) | "
        "CUDA extra ET/ReFL | CUDA extra ET/DRaFT-T | CUDA extra flat | DRaFT-T growth (saved) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, s in report["summary"].items():
        lines.append(
            f"| {model} | {s['T_high']} (flat vs {s['T_low']}) | "
            f"{_num(s['saved_easytune_over_refl'])} | {_num(s['saved_easytune_over_draft_T'])} | "
            f"{_num(s['saved_easytune_flatness'])} | {_num(s['cuda_extra_easytune_over_refl'])} | "
            f"{_num(s['cuda_extra_easytune_over_draft_T'])} | "
            f"{_num(s['cuda_extra_easytune_flatness'])} | {_num(s['saved_draft_T_growth'])} |"
        )
    return "\n".join(lines) + "\n"


def plan(
    models: list[str], methods: list[str], steps: list[int]
) -> list[tuple[str, str, str, int]]:
    """(kind, model, method, T; 0 for speed) in priority order: the key methods' memory at the
    low and high T, their speed rows, then every other memory cell, then the other speed rows."""
    lo, hi = _steps_pair(steps)
    key = [n for n in KEY_METHODS if n in methods]
    others = [n for n in methods if n not in KEY_METHODS]
    key_memory = [
        ("memory", m, name, t) for m in models for name in key for t in dict.fromkeys((lo, hi))
    ]
    rest_memory = [
        ("memory", m, name, t)
        for m in models
        for name in methods
        for t in steps
        if ("memory", m, name, t) not in key_memory
    ]
    key_speed = [("speed", m, name, 0) for m in models for name in key]
    rest_speed = [("speed", m, name, 0) for m in models for name in others]
    return key_memory + key_speed + rest_memory + rest_speed


def _write(report: dict, out: Path) -> dict:
    """Atomically rewrite the JSON and the markdown tables (a kill never leaves half a file)."""
    out.mkdir(parents=True, exist_ok=True)
    ordered = dict(report)
    ordered["memory"] = {
        m: {
            n: {str(t): per[n][str(t)] for t in report["steps"] if str(t) in per[n]}
            for n in report["methods"]
            if n in per
        }
        for m, per in report["memory"].items()
    }
    ordered["speed"] = {
        m: {n: per[n] for n in report["methods"] if n in per} for m, per in report["speed"].items()
    }
    ordered["summary"] = summarise(ordered["memory"], report["steps"])
    report["summary"] = ordered["summary"]
    for name, text in (
        ("finetune_gpu.json", json.dumps(ordered, indent=1) + "\n"),
        ("finetune_gpu.md", tables(ordered)),
    ):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)
    return ordered


def _write_error(out: Path, error: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "finetune_gpu", "torch": torch.__version__, "error": error}
    (out / "finetune_gpu.json").write_text(json.dumps(report | {"partial": True}, indent=1) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--deadline-s", type=float, default=150.0, help="no cell starts after this")
    ap.add_argument("--models", nargs="+", default=["mld", "mdm"])
    ap.add_argument("--methods", nargs="+", default=list(ALL_METHODS), choices=ALL_METHODS)
    ap.add_argument("--batch", type=int, default=64, help="prompts per trajectory")
    ap.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 30, 50])
    ap.add_argument("--speed-steps", type=int, default=50)
    ap.add_argument("--speed-repeats", type=int, default=3)
    ap.add_argument("--corpus", type=Path, default=None, help="default: the built-in corpus dir")
    ap.add_argument(
        "--prompts", type=Path, default=None, help="JSON from --export-prompts instead of a corpus"
    )
    ap.add_argument(
        "--export-prompts",
        type=Path,
        nargs="?",
        const=DEFAULT_PROMPTS_FILE,
        default=None,
        help=f"write the corpus's train prompts as JSON (default {DEFAULT_PROMPTS_FILE}) and exit",
    )
    ap.add_argument(
        "--tf32",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="TF32 matmuls on CUDA (gpu.md's reference setting)",
    )
    args = ap.parse_args(argv)
    if args.batch < 1 or args.speed_repeats < 1 or min(args.steps) < 1 or args.speed_steps < 1:
        ap.error("--batch, --steps, --speed-steps and --speed-repeats must be >= 1")
    args.steps = sorted(set(args.steps))
    return args


def main(argv: list[str] | None = None, loader: Loader | None = None) -> dict:
    """Run the benchmark; returns the report (also written to --out)."""
    start = time.perf_counter()
    args = parse_args(argv)
    loader = loader or _default_loader
    corpus = args.corpus if args.corpus is not None else default_corpus_dir()
    if args.export_prompts is not None:
        pool = PromptPool.from_corpus(corpus, "train")
        export_prompts(pool, args.export_prompts, str(corpus))
        print(f"{len(pool.texts)} prompts from {corpus} -> {args.export_prompts}")
        return {"exported": str(args.export_prompts), "count": len(pool.texts)}
    try:
        device = resolve_device(args.device)
    except (RuntimeError, SystemExit) as e:  # leave a report that says why nothing was measured
        _write_error(args.out, f"--device {args.device}: {type(e).__name__}: {e}")
        raise
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    pool, prompts = load_prompts(corpus, args.prompts)
    reward = load_reward_model(device=str(device))
    report: dict = {
        "benchmark": "finetune_gpu",
        "machine": machine(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "tf32": bool(args.tf32 and device.type == "cuda"),
        "batch": args.batch,
        "steps": args.steps,
        "speed_steps": args.speed_steps,
        "speed_repeats": args.speed_repeats,
        "models": args.models,
        "methods": args.methods,
        "deadline_s": args.deadline_s,
        "prompts": prompts,
        "memory": {m: {} for m in args.models},
        "speed": {m: {} for m in args.models},
        "load_errors": {},
        "skipped": [],
        "summary": {},
        "partial": True,
        "elapsed_s": 0.0,
    }
    print(
        f"device {report['device_name']} torch {torch.__version__}; prompts {prompts}", flush=True
    )
    loaded: dict[str, Backbone] = {}

    def backbone(name: str) -> Backbone:
        if name not in loaded:
            t0 = time.perf_counter()
            b = Backbone(name, device, loader)
            # Warm-up (not recorded): CUDA context, cuBLAS workspaces and kernels load here, so
            # the first measured cell's time and peak do not include them.
            _tuner(b, "EasyTune-step", min(args.steps), args.batch, 1, reward, pool).step()
            sync(device)
            loaded[name] = b
            print(f"{name}: loaded and warmed up in {time.perf_counter() - t0:.1f} s", flush=True)
        return loaded[name]

    cells = plan(args.models, args.methods, args.steps)
    for i, (kind, model, name, steps) in enumerate(cells):
        if time.perf_counter() - start > args.deadline_s:
            report["skipped"] = [f"{k} {m} {n} {t or args.speed_steps}" for k, m, n, t in cells[i:]]
            print(f"deadline: {len(cells) - i} cells not started", flush=True)
            break
        if model in report["load_errors"]:
            continue
        t0 = time.perf_counter()
        try:
            b = backbone(model)
        except Exception as e:  # record and go on with the next backbone
            traceback.print_exc()
            report["load_errors"][model] = f"{type(e).__name__}: {e}"[:500]
            continue
        try:
            if kind == "memory":
                row = memory_cell(b, name, steps, args.batch, reward, pool, device)
            else:
                row = speed_cell(
                    b, name, args.speed_steps, args.batch, args.speed_repeats, reward, pool, device
                )
        except Exception as e:  # one failing method must not stop the others
            traceback.print_exc()
            row = {"error": f"{type(e).__name__}: {e}"[:500]}
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        row["cell_seconds"] = round(time.perf_counter() - t0, 3)
        if kind == "memory":
            report["memory"][model].setdefault(name, {})[str(steps)] = row
            label = f"T={steps}"
        else:
            report["speed"][model][name] = row
            label = f"speed T={args.speed_steps}"
        print(f"[{time.perf_counter() - start:6.1f} s] {model} {name} {label}: {row}", flush=True)
        report["elapsed_s"] = round(time.perf_counter() - start, 2)
        _write(report, args.out)
    else:
        report["partial"] = bool(report["load_errors"])
    report["elapsed_s"] = round(time.perf_counter() - start, 2)
    print(tables(_write(report, args.out)), flush=True)
    print(
        f"partial: {report['partial']}; {report['elapsed_s']} s; {args.out / 'finetune_gpu.json'}"
    )
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
