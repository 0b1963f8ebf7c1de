"""A fine-tuning run on disk: resumable state, stop rules, the fine-tuned checkpoint.

    result = run_finetune(tuner, out_dir, resume=True, evaluate=fn, progress=print)

`<out>/finetune_state.safetensors` (atomic, after every `save_every` trajectories and on stop)
holds the trained weights, AdamW's moments, the trajectory count and both random generators;
`<out>/model.safetensors` is a normal backbone checkpoint of the fine-tuned model (loads with
`load_backbone`, generates with `easytune-engine generate --model`); with LoRA the run writes
`<out>/adapter.safetensors` instead (`finetune.lora.load_adapter` puts it on the base model).
Stop rules: Ctrl-C stops at the next trajectory boundary and saves; a non-finite loss or reward
restores the last good weights (the last saved state) and says so; a fall of the held-out
evaluator score (`evaluate`) by more than `max_eval_drop` below the best stops the run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint, save_checkpoint
from ..fileio import atomic_write_bytes
from ..models.io import save_backbone
from ..training.loop import optimizer_tensors, restore_optimizer
from .distributed import barrier
from .lora import has_lora, save_adapter
from .trainer import FinetuneConfig, Finetuner

STATE_KIND = "finetune_state"


@dataclass(frozen=True)
class RunResult:
    trajectories: int
    updates: int
    stopped: str  # "done" | "interrupted" | "cancelled" | "non-finite" | "eval-drop"
    model_path: Path
    history: list[dict]


def save_state(path: Path, tuner: Finetuner, done: int, history: list[dict]) -> None:
    if not tuner.world.is_main:  # every rank holds the same weights; rank 0 writes them
        return
    tensors = {f"model.{k}": v for k, v in tuner.gen.backbone.state_dict().items()}
    opt_tensors, opt_meta = optimizer_tensors(tuner.opt)
    tensors |= opt_tensors
    tensors["torch_gen"] = tuner.torch_gen.get_state()
    extra = {
        "trajectories_done": done,
        "updates": tuner.updates,
        "numpy_rng": tuner.rng.bit_generator.state,
        "param_groups": opt_meta["param_groups"],
        "history": history,
        "base_sha256": getattr(tuner.gen.backbone, "checkpoint_sha256", None),
    }
    save_checkpoint(path, STATE_KIND, tuner.config, tensors, extra)


def load_state(path: Path, tuner: Finetuner) -> tuple[int, list[dict]]:
    ckpt = load_checkpoint(path, STATE_KIND)
    if ckpt.config_as(FinetuneConfig) != tuner.config:
        raise ValueError(
            f"{path}: was written by a run with other settings; use a new --out or the same "
            "settings to resume"
        )
    model = {k[6:]: v for k, v in ckpt.state.items() if k.startswith("model.")}
    tuner.gen.backbone.load_state_dict(model)
    restore_optimizer(tuner.opt, ckpt.state, ckpt.extra["param_groups"])
    tuner.torch_gen.set_state(ckpt.state["torch_gen"])
    tuner.rng.bit_generator.state = ckpt.extra["numpy_rng"]
    tuner.updates = int(ckpt.extra["updates"])
    return int(ckpt.extra["trajectories_done"]), list(ckpt.extra["history"])


LINEAGE_KEYS = ("reproduce", "averaged_from", "merged_from", "finetuned_from")


def finetuned_extra(parent: dict, record: dict, command: str | None) -> dict:
    """The fine-tuned checkpoint's metadata: the base's, with the base's lineage moved under
    `finetuned_from` (its sha256 and the commands that made it) and `reproduce` set to the
    fine-tuning command (None when the run had none, e.g. a server job: never the base's)."""
    base = {"sha256": record["base_sha256"]} | {k: parent[k] for k in LINEAGE_KEYS if k in parent}
    kept = {k: v for k, v in parent.items() if k not in LINEAGE_KEYS}
    return kept | record | {"finetuned_from": base, "reproduce": command}


def run_finetune(
    tuner: Finetuner,
    out: Path,
    *,
    resume: bool = False,
    save_every: int = 10,
    evaluate: Callable[[], float] | None = None,
    eval_every: int = 0,
    max_eval_drop: float = 0.1,
    progress: Callable[[str], None] | None = None,
    on_step: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    command: str | None = None,
) -> RunResult:
    """Run the remaining trajectories of `tuner.config`; see the module docstring.

    on_step(entry) runs after every trajectory with its history entry; should_stop() is asked
    before every trajectory, and True ends the run there ("cancelled"; state saved as usual).
    `command` is recorded as the checkpoint's `reproduce` (see `finetuned_extra`).
    """
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "finetune_state.safetensors"
    done, history = 0, []
    exists = state_path.is_file()
    barrier(tuner.world)  # every rank looks before rank 0 writes
    if exists:
        if not resume:
            raise ValueError(f"{out} already holds a fine-tuning run: pass --resume or a new --out")
        done, history = load_state(state_path, tuner)
    elif resume:
        raise ValueError(f"{out}: nothing to resume (no finetune_state.safetensors)")
    else:
        save_state(state_path, tuner, 0, history)  # the "last good" weights before any update
    best = None
    stopped = "done"
    t_start = time.perf_counter()
    try:
        while done < tuner.config.trajectories:
            if should_stop is not None and should_stop():
                stopped = "cancelled"
                if progress:
                    progress(f"cancelled after trajectory {done}")
                break
            try:
                result, seconds = tuner.step()
            except FloatingPointError as exc:
                load_state(state_path, tuner)  # back to the last good weights
                stopped = "non-finite"
                if progress:
                    progress(f"stopped: {exc}; restored the weights saved after trajectory {done}")
                break
            if not torch.isfinite(torch.tensor(result.reward)):
                load_state(state_path, tuner)
                stopped = "non-finite"
                if progress:
                    progress(
                        f"stopped: reward became {result.reward}; restored the last good weights"
                    )
                break
            done += 1
            entry = {
                "trajectory": done,
                "reward": round(result.reward, 6),
                "updates": tuner.updates,
                "seconds": round(seconds, 3),
                "seconds_per_update": round(seconds / max(result.updates, 1), 4),
                "elapsed": round(time.perf_counter() - t_start, 1),
            }
            if evaluate is not None and eval_every and done % eval_every == 0:
                score = evaluate()
                entry["eval"] = round(score, 6)
                best = score if best is None else max(best, score)
                if score < best - max_eval_drop:
                    history.append(entry)
                    stopped = "eval-drop"
                    if progress:
                        progress(f"stopped: evaluator score {score:.3f} fell below best {best:.3f}")
                    break
            history.append(entry)
            if on_step is not None:
                on_step(entry)
            if progress:
                progress(
                    f"[{done}/{tuner.config.trajectories}] reward {result.reward:.4f} "
                    f"{entry['seconds_per_update']:.3f} s/update"
                )
            if done % save_every == 0:
                save_state(state_path, tuner, done, history)
    except KeyboardInterrupt:
        stopped = "interrupted"
        if progress:
            progress(f"interrupted: saving after trajectory {done}")
    save_state(state_path, tuner, done, history)
    backbone = tuner.gen.backbone
    record = {
        "finetune": asdict(tuner.config),
        "finetune_trajectories": done,
        "base_sha256": getattr(backbone, "checkpoint_sha256", None),
    }
    if not tuner.world.is_main:
        return RunResult(done, tuner.updates, stopped, out / "model.safetensors", history)
    if has_lora(backbone):  # a small adapter file on top of the unchanged base
        model_path = out / "adapter.safetensors"
        save_adapter(model_path, backbone, record)
    else:
        model_path = out / "model.safetensors"
        parent = dict(getattr(backbone, "checkpoint_extra", {}))
        save_backbone(model_path, backbone, finetuned_extra(parent, record, command))
    atomic_write_bytes(out / "history.json", (json.dumps(history, indent=1) + "\n").encode())
    return RunResult(done, tuner.updates, stopped, model_path, history)
