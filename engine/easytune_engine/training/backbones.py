"""Train a backbone end to end: `train_backbone("mld", "default", corpus_dir, run_dir)`.

Stages run in order and each resumes from `<run_dir>/train_state.safetensors`:
- mdm: one stage;
- mld: "vae" (the VAE alone), then the latent scale is measured, then "denoiser" (VAE frozen);
  the `refine` preset instead continues a trained MLD (`init`): "decoder" (the VAE's encoder
  frozen, so the latent space and its scale stay as the denoiser knows them), then "denoiser";
- lcm: "lcm", consistency distillation from an MLD teacher (default: the shipped one), whose VAE,
  latent scale and normalisation the student inherits; the `refine` preset continues distilling
  a trained LCM's denoiser (`init`) from a teacher in the same latent space (a refined MLD).
An MDM run may start from trained weights (`init`; the `refine` presets require it); the manifest
then records their hash. The stages run are the preset's, in its order.
The result, `<run_dir>/model.safetensors`, is the EMA model with a manifest-ready `extra`.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint
from ..data.humanml3d import load_split
from ..models.base import Backbone
from ..models.io import build_backbone, load_backbone, save_backbone
from ..models.latent import LCM, MLD
from ..text.encoder import load_text_encoder
from .device_batches import DeviceBatches
from .loop import STATE_KIND, Stage, TextCache, run_stage
from .objectives import (
    ConsistencyDistillation,
    decoder_loss,
    latent_eps_loss,
    mdm_loss,
    measure_latent_std,
    vae_loss,
)
from .presets import get_preset

STAGES = {"mdm": ("mdm",), "mld": ("vae", "denoiser"), "lcm": ("lcm",)}  # from scratch
# what a run keeps of its init's metadata (under `init_lineage`), so a chain of refine rounds
# and fine-tunes names every command and parent that made it
INIT_LINEAGE = (
    "reproduce",
    "init_sha256",
    "init_lineage",
    "averaged_from",
    "merged_from",
    "finetuned_from",
    "finetune",
    "finetune_trajectories",
)


def _saved_stage(path: Path) -> str | None:
    if not path.is_file():
        return None
    return load_checkpoint(path, STATE_KIND).config.get("stage")


def _corpus_record(root: Path) -> dict:
    info_path = root / "corpus.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        return {
            "name": info.get("name"),
            "version": info.get("version"),
            "config": info.get("config"),
        }
    return {"name": "humanml3d-format", "path": str(root)}


def exact_command(command: str, steps: dict[str, int]) -> str:
    """`command` with its --steps/--fit-minutes replaced by the steps every stage ran."""
    out, skipping = [], False
    for word in shlex.split(command):
        if word in ("--steps", "--fit-minutes"):
            skipping = True
            continue
        if skipping and not word.startswith("--"):
            continue
        skipping = False
        out.append(word)
    out += ["--steps", *(f"{s}={n}" for s, n in steps.items())]
    return " ".join(shlex.quote(w) for w in out)


def _student_from_teacher(preset_model, teacher: Backbone) -> LCM:
    if not isinstance(teacher, MLD) or isinstance(teacher, LCM):
        raise ValueError("LCM distillation needs an MLD-style teacher checkpoint")
    t, s = teacher.config, preset_model
    if (t.vae, t.width, t.layers, t.heads) != (s.vae, s.width, s.layers, s.heads):
        raise ValueError(
            "the teacher's VAE/denoiser sizes differ from the LCM preset's; "
            "distil from an MLD of the same preset"
        )
    student = LCM(preset_model, teacher.mean.cpu().numpy(), teacher.std.cpu().numpy())
    missing, unexpected = student.load_state_dict(teacher.state_dict(), strict=False)
    if unexpected or any(not k.startswith("denoiser.w_mlp") for k in missing):
        raise ValueError(f"teacher does not fit the student: {missing} {unexpected}")
    return student


def _lineage(start: Backbone) -> dict:
    """The init's hash and how it was made, for the run's manifest."""
    extra = start.checkpoint_extra
    return {"sha256": start.checkpoint_sha256} | {k: extra[k] for k in INIT_LINEAGE if k in extra}


def _load_init(model: Backbone, init: str | Path, device: str, encoder_sha256: str) -> dict:
    """Copy the weights (and Mean/Std) of checkpoint `init` into `model`; returns its lineage."""
    start = load_backbone(init, device=device, text_encoder_sha256=encoder_sha256)
    if type(start) is not type(model):
        raise ValueError(f"init {init}: a {type(start).__name__}, not a {type(model).__name__}")
    try:
        model.load_state_dict(start.state_dict())
    except RuntimeError as exc:
        raise ValueError(f"init {init}: its network differs from the preset's: {exc}") from None
    return _lineage(start)


def _load_student_init(student: LCM, init: str | Path, device: str, encoder_sha256: str) -> dict:
    """Continue distilling LCM `init`: its denoiser goes into `student`, whose VAE stays the
    teacher's (a refined decoder included). The encoder and latent scale must be the teacher's:
    a denoiser is only valid in the latent space it was distilled in."""
    start = load_backbone(init, device=device, text_encoder_sha256=encoder_sha256)
    if not isinstance(start, LCM):
        raise ValueError(f"init {init}: a {type(start).__name__}, not an LCM")
    ours, theirs = list(student.vae.encoder_parameters()), list(start.vae.encoder_parameters())
    same_space = (
        torch.equal(start.latent_std, student.latent_std)
        and len(ours) == len(theirs)
        and all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    )
    if not same_space:
        raise ValueError(
            f"init {init}: its VAE encoder or latent scale differs from the teacher's, so its "
            "denoiser works in another latent space; distil from the teacher it came from"
        )
    try:
        student.denoiser.load_state_dict(start.denoiser.state_dict())
    except RuntimeError as exc:
        raise ValueError(f"init {init}: its network differs from the preset's: {exc}") from None
    return _lineage(start)


def train_backbone(
    name: str,
    preset: str,
    data_root: Path,
    run_dir: Path,
    *,
    seed: int = 0,
    teacher: str | Path = "mld",
    progress: bool = True,
    on_eval: Callable[[Backbone, int], dict] | None = None,
    command: str | None = None,
    device: str = "cpu",
    workers: int = 0,
    steps: dict[str, int] | None = None,
    time_budget_s: dict[str, float] | None = None,
    device_data: bool = False,
    init: str | Path | None = None,
    lr: dict[str, float] | None = None,
) -> Path:
    """Train (or resume) and write `<run_dir>/model.safetensors`; returns its path.

    `steps` overrides the preset's step count of the named stages (0 skips a stage of a preset
    that continues trained weights, so its stages can train in separate runs, see
    `training.merge`); `time_budget_s` shortens the named stages to what fits that many seconds
    (see `run_stage`); the steps each stage really ran are what the manifest records; `lr`
    overrides the peak learning rate of the named stages (a later refine round at a lower rate).
    `device`
    and `workers` as in `run_stage`; `device_data` holds the split on `device` once for all
    stages (`DeviceBatches`). `init` (a shipped name or a checkpoint of the preset's network) is
    where the weights start, for MDM and for the `refine` presets; an LCM takes only the init's
    denoiser, its VAE always being the teacher's.
    """
    p = get_preset(name, preset)
    if init is not None and name != "mdm" and not p.needs_init:
        raise ValueError(
            f"init: only MDM and the 'refine' presets start from trained weights ({name} "
            f"{preset!r}: "
            + ("pass the teacher with --teacher)" if name == "lcm" else "its VAE trains first)")
        )
    if p.needs_init and init is None:
        raise ValueError(f"the {preset!r} preset continues a trained model: pass --init")
    order = tuple(p.stages)
    per_stage = (("steps", steps or {}), ("time budget", time_budget_s or {}), ("lr", lr or {}))
    for label, per in per_stage:
        unknown = sorted(set(per) - set(order))
        if unknown:
            raise ValueError(f"{label} for unknown stage(s) {unknown}; {name} has {list(order)}")
    skipped = sorted(s for s, n in (steps or {}).items() if n == 0)
    if skipped and not p.needs_init:
        raise ValueError(
            f"steps {skipped} = 0 would skip a stage; only a preset that continues trained weights "
            f"(refine) may skip one, and {name} {preset!r} trains from scratch"
        )
    stage_cfg = {
        s: replace(c, steps=(steps or {}).get(s, c.steps), lr=(lr or {}).get(s, c.lr))
        for s, c in p.stages.items()
    }
    run_dir = Path(run_dir)
    split = load_split(data_root, "train")
    encoder = load_text_encoder(device=device)
    p = replace(p, model=replace(p.model, text_dim=encoder.width))  # condition on this encoder
    cache = TextCache(encoder)
    device_batches = DeviceBatches(split, device) if device_data else None
    torch.manual_seed(seed)
    distill = None
    if name == "lcm":
        teacher_model = load_backbone(
            teacher, device=device, text_encoder_sha256=encoder.source_sha256
        )
        model: Backbone = _student_from_teacher(p.model, teacher_model).to(device)
        lineage = None
        if init is not None:  # before the target network copies the student
            lineage = _load_student_init(model, init, device, encoder.source_sha256)
        model.vae.requires_grad_(False)
        distill = ConsistencyDistillation(model, teacher_model, seed)
    else:
        model = build_backbone(name, p.model, split.mean, split.std).to(device)
        lineage = None
        if init is not None:
            lineage = _load_init(model, init, device, encoder.source_sha256)
    state_path = run_dir / "train_state.safetensors"
    saved = _saved_stage(state_path)
    first = order.index(saved) if saved in order else 0
    history = []
    for stage_name in order[first:]:
        cfg = stage_cfg[stage_name]
        if cfg.steps == 0:  # skipped (refine): its weights stay as `init` left them
            continue
        if stage_name == "mdm":
            stage = Stage("mdm", model, mdm_loss(model, seed), cfg)
        elif stage_name == "vae":
            stage = Stage("vae", model.vae, vae_loss(model, seed), cfg)
        elif stage_name == "decoder":
            for param in model.vae.encoder_parameters():
                param.requires_grad_(False)
            stage = Stage("decoder", model.vae, decoder_loss(model, seed), cfg)
        elif stage_name == "denoiser":
            if "vae" in order and saved != "denoiser":  # a fresh VAE: measure its latent scale
                model.latent_std.copy_(measure_latent_std(model, split, seed=seed))
            model.vae.requires_grad_(False)
            stage = Stage("denoiser", model.denoiser, latent_eps_loss(model, seed), cfg)
        else:
            assert distill is not None
            stage = Stage(
                "lcm",
                model.denoiser,
                distill.loss,
                cfg,
                after_step=distill.update_target,
                companions={"target": distill.target.denoiser},
            )
        evaluate = None  # generation needs a trained denoiser: nothing to judge after the VAE
        if on_eval is not None and stage_name != "vae":
            evaluate = lambda step: on_eval(model, step)  # noqa: E731
        history += run_stage(
            stage,
            model,
            split,
            cache,
            run_dir,
            seed=seed,
            progress=progress,
            on_eval=evaluate,
            workers=workers,
            time_budget_s=(time_budget_s or {}).get(stage_name, 0.0),
            device_batches=device_batches,
        )
        stage_cfg[stage_name] = stage.config  # the steps it really ran (a time budget fits them)
    model.eval()
    extra = {
        "text_encoder_sha256": encoder.source_sha256,
        "corpus": _corpus_record(Path(data_root)),
        "preset": preset,
        "seed": seed,
        "stages": {s: vars(stage_cfg[s]) for s in order},
        "reproduce": exact_command(
            command or f"easytune-engine train --backbone {name} --preset {preset}",
            {s: stage_cfg[s].steps for s in order},
        ),
    }
    if lineage is not None:
        extra["init_sha256"] = lineage.pop("sha256")
        if lineage:
            extra["init_lineage"] = lineage
    if name == "lcm":
        extra["teacher_sha256"] = getattr(distill.teacher, "checkpoint_sha256", None)
    out = run_dir / "model.safetensors"
    save_backbone(out, model.cpu(), extra)
    return out
