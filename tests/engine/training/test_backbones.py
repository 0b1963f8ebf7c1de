"""train_backbone with the (shortened) tiny presets: MDM, MLD (two stages), LCM from the MLD."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from easytune_engine.checkpoint import load_checkpoint
from easytune_engine.data.humanml3d import load_split
from easytune_engine.models.io import load_backbone
from easytune_engine.text.encoder import load_text_encoder
from easytune_engine.training import backbones
from easytune_engine.training.loop import STATE_KIND
from easytune_engine.training.merge import merge_runs
from easytune_engine.training.objectives import measure_latent_std

MODEL = "model.safetensors"
STATE = "train_state.safetensors"


class Crash(RuntimeError):
    """Stands in for a kill in the middle of a stage."""


@pytest.fixture(scope="module")
def encoder_sha() -> str:
    return load_text_encoder().source_sha256


def log_rows(run: Path, stage: str) -> list[dict]:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r for r in rows if r["stage"] == stage]


def weights(model: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if k.startswith(prefix)}


def assert_equal_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("name", ["mdm", "mld", "lcm"])
def test_checkpoint_loads_with_manifest_fields(
    name: str, request, tiny_corpus: Path, encoder_sha: str, fast_tiny: dict
):
    """model.safetensors loads with load_backbone and records encoder, corpus, preset, command."""
    run = request.getfixturevalue(f"{name}_run")
    model = load_backbone(run / MODEL, text_encoder_sha256=encoder_sha)
    assert model.kind == name and not model.training
    extra = model.checkpoint_extra
    info = json.loads((tiny_corpus / "corpus.json").read_text())
    assert extra["text_encoder_sha256"] == encoder_sha
    assert extra["corpus"] == {k: info[k] for k in ("name", "version", "config")}
    assert extra["corpus"]["config"]["clips"] == 320
    assert extra["preset"] == "tiny" and extra["seed"] == 0
    steps = " ".join(f"{s}={fast_tiny[s]}" for s in backbones.STAGES[name])
    assert (
        extra["reproduce"]
        == f"easytune-engine train --backbone {name} --preset tiny --steps {steps}"
    )
    assert list(extra["stages"]) == list(backbones.STAGES[name])
    assert {s: c["steps"] for s, c in extra["stages"].items()} == {
        s: fast_tiny[s] for s in backbones.STAGES[name]
    }


@pytest.mark.parametrize(("name", "stage"), [("mdm", "mdm"), ("mld", "denoiser")])
def test_training_loss_decreases(name: str, stage: str, request):
    """The first logged loss of the stage is above the last one."""
    rows = log_rows(request.getfixturevalue(f"{name}_run"), stage)
    assert len(rows) >= 4
    assert rows[-1]["loss"] < rows[0]["loss"], [round(r["loss"], 3) for r in rows]


def test_mld_trains_the_vae_first_and_measures_the_latent_scale(mld_run: Path, tiny_corpus):
    """Both stages ran, in order; latent_std is the measured posterior-mean std (not the 1.0 it
    starts at) of the shipped (EMA) VAE."""
    assert log_rows(mld_run, "vae") and log_rows(mld_run, "denoiser")
    stages = [
        json.loads(line)["stage"] for line in (mld_run / "log.jsonl").read_text().splitlines()
    ]
    assert stages == sorted(stages, key=["vae", "denoiser"].index)
    model = load_backbone(mld_run / MODEL)
    std = float(model.latent_std)
    assert 0 < std < float("inf") and abs(std - 1.0) > 1e-3
    measured = measure_latent_std(model, load_split(tiny_corpus, "train"), seed=0)
    assert float(measured) == pytest.approx(std, rel=1e-5)


def test_lcm_keeps_the_teachers_vae_and_trains_its_denoiser(lcm_run: Path, mld_run: Path):
    """The student inherits the teacher's VAE, latent scale and normalisation unchanged, trains
    the denoiser, and records which teacher it was distilled from."""
    teacher = load_backbone(mld_run / MODEL)
    student = load_backbone(lcm_run / MODEL)
    assert (
        student.checkpoint_extra["teacher_sha256"]
        == load_checkpoint(mld_run / MODEL, "backbone/mld").sha256
    )
    assert_equal_tensors(weights(student, "vae."), weights(teacher, "vae."))
    for buf in ("latent_std", "mean", "std"):
        assert torch.equal(getattr(student, buf), getattr(teacher, buf)), buf
    tw = weights(teacher, "denoiser.")
    sw = {k: v for k, v in weights(student, "denoiser.").items() if k in tw}
    assert any(not torch.equal(sw[k], tw[k]) for k in tw)
    assert any(k.startswith("denoiser.w_mlp") for k in weights(student, "denoiser."))


def test_finished_run_rerun_changes_nothing(mdm_run: Path, tiny_corpus: Path, fast_tiny: dict):
    """Running train_backbone again on a finished run trains nothing and writes the same model."""
    before = load_checkpoint(mdm_run / MODEL, "backbone/mdm").sha256
    log = (mdm_run / "log.jsonl").read_text()
    out = backbones.train_backbone("mdm", "tiny", tiny_corpus, mdm_run, progress=False)
    assert out == mdm_run / MODEL
    assert load_checkpoint(out, "backbone/mdm").sha256 == before
    assert (mdm_run / "log.jsonl").read_text() == log


@pytest.fixture(scope="module")
def resumed_mld(mld_run, tiny_corpus, fast_presets_fn, tmp_path_factory):
    """An MLD run killed at denoiser step 25 (last save: 20), then resumed to the end.

    Returns (run dir, the interrupted train_state, the stages the resumed call ran)."""
    run = tmp_path_factory.mktemp("mld-resume")
    real_loss, real_run_stage = backbones.latent_eps_loss, backbones.run_stage

    def crashing_loss(model, seed=0):
        loss = real_loss(model, seed)

        def wrapped(batch, text, step):
            if step == 25:
                raise Crash("killed")
            return loss(batch, text, step)

        return wrapped

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EASYTUNE_HOME", str(run / "home"))
        fast_presets_fn(mp)
        mp.setattr(backbones, "latent_eps_loss", crashing_loss)
        with pytest.raises(Crash):
            backbones.train_backbone("mld", "tiny", tiny_corpus, run, progress=False)
    interrupted = load_checkpoint(run / STATE, STATE_KIND)
    ran: list[str] = []

    def spy(stage, *args, **kwargs):
        ran.append(stage.name)
        return real_run_stage(stage, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EASYTUNE_HOME", str(run / "home"))
        fast_presets_fn(mp)
        mp.setattr(backbones, "run_stage", spy)
        backbones.train_backbone("mld", "tiny", tiny_corpus, run, progress=False)
    return run, interrupted, ran


def test_mld_resumed_in_the_denoiser_stage_keeps_the_vae(resumed_mld, mld_run: Path):
    """Resuming inside the denoiser stage neither retrains the VAE nor re-measures its scale:
    VAE weights and latent_std equal those at the interruption (and an uninterrupted run's)."""
    run, interrupted, ran = resumed_mld
    assert (interrupted.config["stage"], interrupted.config["step"]) == ("denoiser", 20)
    assert ran == ["denoiser"]
    model = load_backbone(run / MODEL)
    saved = {k[6:]: v for k, v in interrupted.state.items() if k.startswith("model.vae.")}
    assert_equal_tensors(weights(model, "vae."), saved)
    assert torch.equal(model.latent_std, interrupted.state["model.latent_std"])
    straight = load_backbone(mld_run / MODEL)
    assert_equal_tensors(weights(model, "vae."), weights(straight, "vae."))
    assert torch.equal(model.latent_std, straight.latent_std)
    assert len(log_rows(run, "vae")) == len(log_rows(mld_run, "vae"))  # logged once only


def test_mld_resumed_run_equals_an_uninterrupted_one(resumed_mld, mld_run: Path):
    """A killed and resumed run ends with the same denoiser as an uninterrupted run."""
    run, _, _ = resumed_mld
    resumed = weights(load_backbone(run / MODEL), "denoiser.")
    assert_equal_tensors(resumed, weights(load_backbone(mld_run / MODEL), "denoiser."))


def test_lcm_resume_restores_the_target_network(
    mld_run: Path, tiny_corpus: Path, fast_tiny: dict, tmp_path: Path, monkeypatch
):
    """Killed at LCM step 13 (last save: 10) and resumed, distillation continues against the
    target network as it was at step 10."""
    at_save: dict[str, torch.Tensor] = {}
    at_resume: dict[str, torch.Tensor] = {}
    crash = [13]

    class Recording(backbones.ConsistencyDistillation):
        def loss(self, batch, text, step):
            if crash and step == crash[0]:
                raise Crash("killed")
            if not crash and step == 10 and not at_resume:
                at_resume.update({k: v.clone() for k, v in weights(self.target.denoiser).items()})
            return super().loss(batch, text, step)

        def update_target(self, step: int) -> None:
            super().update_target(step)
            if crash and step == 9:
                at_save.update({k: v.clone() for k, v in weights(self.target.denoiser).items()})

    monkeypatch.setattr(backbones, "ConsistencyDistillation", Recording)
    teacher = mld_run / MODEL
    with pytest.raises(Crash):
        backbones.train_backbone(
            "lcm", "tiny", tiny_corpus, tmp_path, teacher=teacher, progress=False
        )
    assert load_checkpoint(tmp_path / STATE, STATE_KIND).config["step"] == 10
    crash.clear()
    backbones.train_backbone("lcm", "tiny", tiny_corpus, tmp_path, teacher=teacher, progress=False)
    assert at_resume, "the resumed run did not start at step 10"
    assert_equal_tensors(at_resume, at_save)


def test_exact_command_names_the_steps_each_stage_ran():
    from easytune_engine.training.backbones import exact_command

    cmd = (
        "easytune-engine train --backbone mld --preset large "
        "--fit-minutes vae=2 denoiser=3 --device cuda"
    )
    assert exact_command(cmd, {"vae": 900, "denoiser": 1200}) == (
        "easytune-engine train --backbone mld --preset large --device cuda "
        "--steps vae=900 denoiser=1200"
    )


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["vae"], "expected STAGE=int"),
        (["vae=x"], "expected STAGE=int"),
        (["vae=-3"], "must be >= 0"),
    ],
)
def test_per_stage_flags_name_the_bad_pair(pairs: list[str], message: str):
    from easytune_engine.training.cli import _per_stage

    with pytest.raises(ValueError, match=message):
        _per_stage(pairs, "--steps", int, minimum=0)
    assert _per_stage(["decoder=0", "denoiser=9"], "--steps", int, minimum=0) == {
        "decoder": 0,
        "denoiser": 9,
    }
    with pytest.raises(ValueError, match=r"'vae=0': must be >= 0\.001"):
        _per_stage(["vae=0"], "--fit-minutes", float, minimum=1e-3)


def test_steps_for_a_stage_the_backbone_lacks_is_refused(tiny_corpus: Path, tmp_path: Path):
    from easytune_engine.training.backbones import train_backbone

    with pytest.raises(ValueError, match=r"unknown stage\(s\) \['vae'\]; mdm has \['mdm'\]"):
        train_backbone("mdm", "tiny", tiny_corpus, tmp_path, steps={"vae": 10})


def test_lr_overrides_a_stages_peak_rate_and_the_manifest_records_it(
    tiny_corpus: Path, tmp_path: Path
):
    """A later refine round at a lower rate: every step's rate follows the overridden peak, and
    the manifest's stage config says which rate ran; a stage the backbone lacks is named."""
    with pytest.raises(ValueError, match=r"lr for unknown stage\(s\) \['denoiser'\]"):
        backbones.train_backbone("mdm", "tiny", tiny_corpus, tmp_path / "x", lr={"denoiser": 1})
    preset_lr = backbones.get_preset("mdm", "tiny").stages["mdm"].lr
    out = backbones.train_backbone(
        "mdm", "tiny", tiny_corpus, tmp_path / "r", steps={"mdm": 3}, lr={"mdm": preset_lr / 8},
        progress=False,
    )  # fmt: skip
    assert load_backbone(out).checkpoint_extra["stages"]["mdm"]["lr"] == preset_lr / 8
    logged = [json.loads(line)["lr"] for line in (tmp_path / "r" / "log.jsonl").open()]
    assert logged and max(logged) <= preset_lr / 8


def test_an_mdm_run_starts_from_its_init(mdm_run: Path, tiny_corpus: Path, tmp_path: Path):
    """`init` puts the trained weights in before the first step, and the manifest names them."""
    init = load_backbone(mdm_run / MODEL)
    runs = {}
    for label, start in (("init", mdm_run / MODEL), ("fresh", None)):
        out = backbones.train_backbone(
            "mdm", "tiny", tiny_corpus, tmp_path / label, steps={"mdm": 1}, init=start,
            progress=False,
        )  # fmt: skip
        runs[label] = load_backbone(out)
    trained = dict(init.named_parameters())
    assert len(trained) > 10
    # one warm-up step (lr 1e-3 / 30) barely moves the EMA from where training started
    for k, v in runs["init"].named_parameters():
        torch.testing.assert_close(v, trained[k], atol=1e-4, rtol=0, msg=k)
    # a fresh run starts where the 40-step tiny run started (same seed), 0.02 away from its end
    fresh = dict(runs["fresh"].named_parameters())
    assert max((fresh[k] - trained[k]).abs().max().item() for k in trained) > 1e-2
    assert runs["init"].checkpoint_extra["init_sha256"] == init.checkpoint_sha256
    assert "init_sha256" not in runs["fresh"].checkpoint_extra
    # the init's own command travels along, and a run from that run nests both (the chain of
    # refine rounds behind a shipped model names every command that made it)
    lineage = runs["init"].checkpoint_extra["init_lineage"]
    assert lineage["reproduce"] == init.checkpoint_extra["reproduce"]
    assert "init_lineage" not in runs["fresh"].checkpoint_extra
    second_run = backbones.train_backbone(
        "mdm", "tiny", tiny_corpus, tmp_path / "second", steps={"mdm": 1},
        init=tmp_path / "init" / MODEL, progress=False,
    )  # fmt: skip
    second = load_backbone(second_run).checkpoint_extra
    assert second["init_sha256"] == runs["init"].checkpoint_sha256
    assert second["init_lineage"]["init_sha256"] == init.checkpoint_sha256
    assert second["init_lineage"]["init_lineage"] == lineage


def test_init_is_refused_where_it_cannot_apply(mdm_run: Path, tiny_corpus: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="'refine' preset continues a trained model: pass --init"):
        backbones.train_backbone("mdm", "refine", tiny_corpus, tmp_path / "a")
    with pytest.raises(ValueError, match="only MDM and the 'refine' presets start from trained"):
        backbones.train_backbone("mld", "tiny", tiny_corpus, tmp_path / "b", init="mld")
    with pytest.raises(ValueError, match=r"\['vae'\] = 0 would skip a stage; only a preset that"):
        backbones.train_backbone("mld", "tiny", tiny_corpus, tmp_path / "d", steps={"vae": 0})
    # the tiny checkpoint does not fit the default preset's network: named, nothing trained
    with pytest.raises(ValueError, match="its network differs from the preset's"):
        backbones.train_backbone(
            "mdm", "default", tiny_corpus, tmp_path / "c", init=mdm_run / MODEL, progress=False
        )
    assert not (tmp_path / "c" / STATE).exists()


def test_a_preset_the_backbone_lacks_is_named(monkeypatch: pytest.MonkeyPatch):
    from easytune_engine.training import presets
    from easytune_engine.training.presets import get_preset

    monkeypatch.delitem(presets._TABLE, ("lcm", "refine"))
    with pytest.raises(ValueError, match="lcm has no preset 'refine'; its presets: tiny, default"):
        get_preset("lcm", "refine")
    with pytest.raises(ValueError, match="unknown backbone 'vae'"):
        get_preset("vae", "tiny")


# ---------------------------------------------------------------------------------------------
# MLD `refine`: the decoder (encoder frozen) and the denoiser continue a trained model

REFINE_STEPS = {"decoder": 6, "denoiser": 6}


@pytest.fixture
def tiny_refine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The MLD `refine` preset on the tiny network, a few steps per stage."""
    from easytune_engine.training import presets

    tiny = presets._TABLE[("mld", "tiny")]
    stages = {
        name: replace(tiny.stages["vae" if name == "decoder" else name], steps=n, warmup=2)
        for name, n in REFINE_STEPS.items()
    }
    monkeypatch.setitem(
        presets._TABLE, ("mld", "refine"), presets.Preset(tiny.model, stages, needs_init=True)
    )


def encoder_weights(model) -> dict[str, torch.Tensor]:
    frozen = {id(p) for p in model.vae.encoder_parameters()}
    return {n: p.detach() for n, p in model.vae.named_parameters() if id(p) in frozen}


def test_mld_refine_keeps_the_latent_space_and_trains_decoder_and_denoiser(
    tiny_refine, mld_run: Path, tiny_corpus: Path, tmp_path: Path
):
    """Every parameter the encoder uses, the latent scale and Mean/Std stay exactly as the init's
    (so the denoiser's latent space does not move); the decoder and the denoiser train; the
    manifest names the init and the stages."""
    init = load_backbone(mld_run / MODEL)
    out = backbones.train_backbone(
        "mld", "refine", tiny_corpus, tmp_path, init=mld_run / MODEL, progress=False
    )
    model = load_backbone(out)
    assert len(encoder_weights(init)) >= 10
    assert_equal_tensors(encoder_weights(model), encoder_weights(init))
    for buf in ("latent_std", "mean", "std"):
        assert torch.equal(getattr(model, buf), getattr(init, buf)), buf
    enc = encoder_weights(init).keys()
    for prefix in ("vae.", "denoiser."):
        after, before = weights(model, prefix), weights(init, prefix)
        moved = [
            k
            for k in before
            if k[len("vae.") :] not in enc and not torch.equal(after[k], before[k])
        ]
        assert moved, f"{prefix} did not train"
    extra = model.checkpoint_extra
    assert extra["init_sha256"] == init.checkpoint_sha256
    assert {s: c["steps"] for s, c in extra["stages"].items()} == REFINE_STEPS
    assert extra["reproduce"].endswith("--steps decoder=6 denoiser=6")
    stages = [json.loads(line)["stage"] for line in (tmp_path / "log.jsonl").open()]
    assert stages == sorted(stages, key=["decoder", "denoiser"].index)


def test_mld_refine_stages_trained_apart_equal_the_stages_trained_in_one_run(
    tiny_refine, mld_run: Path, tiny_corpus: Path, tmp_path: Path
):
    """The two stages share no trainable weight and each seeds its own draws, so training them
    in separate runs (`--steps decoder=0` / `denoiser=0`, one per core) gives the same weights as
    one run of both; a skipped stage leaves its weights as the init's."""
    init = load_backbone(mld_run / MODEL)
    runs = {}
    for label, steps in (
        ("both", None),
        ("denoiser_only", {"decoder": 0}),
        ("decoder_only", {"denoiser": 0}),
    ):
        out = backbones.train_backbone(
            "mld", "refine", tiny_corpus, tmp_path / label, init=mld_run / MODEL, steps=steps,
            progress=False,
        )  # fmt: skip
        runs[label] = load_backbone(out)
    assert_equal_tensors(
        weights(runs["denoiser_only"], "denoiser."), weights(runs["both"], "denoiser.")
    )
    assert_equal_tensors(weights(runs["decoder_only"], "vae."), weights(runs["both"], "vae."))
    assert_equal_tensors(weights(runs["denoiser_only"], "vae."), weights(init, "vae."))
    assert_equal_tensors(weights(runs["decoder_only"], "denoiser."), weights(init, "denoiser."))
    assert runs["decoder_only"].checkpoint_extra["stages"]["denoiser"]["steps"] == 0
    # the merge of the two part runs is the one-run model, and names the one-run command
    parts = [tmp_path / label / MODEL for label in ("decoder_only", "denoiser_only")]
    merged = load_backbone(merge_runs(parts, tmp_path / "merged" / MODEL))
    assert_equal_tensors(weights(merged), weights(runs["both"]))
    assert merged.checkpoint_extra["stages"] == runs["both"].checkpoint_extra["stages"]
    assert merged.checkpoint_extra["reproduce"] == (
        "easytune-engine train --backbone mld --preset refine --steps decoder=6 denoiser=6"
    )


def test_merge_refuses_runs_that_do_not_fit_together(
    tiny_refine, mld_run: Path, mdm_run: Path, tiny_corpus: Path, tmp_path: Path
):
    """Two runs that trained the same stage, or runs from different inits, are named; nothing is
    written."""
    made = {}
    for label, init, steps in (
        ("a", mld_run / MODEL, {"decoder": 0}),
        ("b", mld_run / MODEL, {"decoder": 0}),
        ("c", mld_run / MODEL, {"denoiser": 0}),
    ):
        made[label] = backbones.train_backbone(
            "mld", "refine", tiny_corpus, tmp_path / label, init=init, steps=steps, progress=False
        )
    out = tmp_path / "out" / MODEL
    with pytest.raises(ValueError, match="stage 'denoiser' was trained in more than one run"):
        merge_runs([made["a"], made["b"]], out)
    with pytest.raises(ValueError, match="only refine runs merge"):
        merge_runs([mld_run / MODEL, made["c"]], out)
    with pytest.raises(ValueError, match="another network"):
        merge_runs([made["c"], mdm_run / MODEL], out)
    with pytest.raises(ValueError, match="at least two runs"):
        merge_runs([made["c"]], out)
    assert not out.exists()


def test_decoder_loss_refuses_an_encoder_that_can_still_train(mld_run: Path, tiny_corpus: Path):
    from easytune_engine.data.humanml3d import sample_batch
    from easytune_engine.training.objectives import decoder_loss

    model = load_backbone(mld_run / MODEL).train()
    split = load_split(tiny_corpus, "train")
    batch = sample_batch(
        split, 4, np.random.default_rng(0), mean=model.mean.numpy(), std=model.std.numpy()
    )
    loss = decoder_loss(model)
    with pytest.raises(
        ValueError, match="decoder_loss trains the decoder only: freeze the encoder"
    ):
        loss(batch, torch.zeros(4, 1), 0)
    for param in model.vae.encoder_parameters():
        param.requires_grad_(False)
    total, logs = loss(batch, torch.zeros(4, 1), 0)
    total.backward()
    assert total.item() > 0 and "kl" not in logs
    assert all(p.grad is None for p in model.vae.encoder_parameters())
    assert model.vae.out.weight.grad is not None and model.vae.out.weight.grad.abs().sum() > 0


@pytest.fixture
def tiny_lcm_refine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The LCM `refine` preset on the tiny network, a few steps."""
    from easytune_engine.training import presets

    tiny = presets._TABLE[("lcm", "tiny")]
    stages = {"lcm": replace(tiny.stages["lcm"], steps=4, warmup=1)}
    monkeypatch.setitem(
        presets._TABLE, ("lcm", "refine"), presets.Preset(tiny.model, stages, needs_init=True)
    )


def test_lcm_refine_continues_the_init_denoiser_with_the_refined_teachers_vae(
    tiny_refine, tiny_lcm_refine, mld_run: Path, lcm_run: Path, tiny_corpus: Path, tmp_path: Path
):
    """Distillation continues from the trained LCM's denoiser, while the student's VAE (the
    refined decoder included) is the refined teacher's; the manifest names init and teacher."""
    teacher_path = backbones.train_backbone(
        "mld", "refine", tiny_corpus, tmp_path / "mld", init=mld_run / MODEL, progress=False,
        steps={"denoiser": 0},
    )  # fmt: skip
    teacher, init = load_backbone(teacher_path), load_backbone(lcm_run / MODEL)
    assert not torch.equal(teacher.vae.out.weight, init.vae.out.weight)  # the decoder moved
    out = backbones.train_backbone(
        "lcm", "refine", tiny_corpus, tmp_path / "lcm", init=lcm_run / MODEL,
        teacher=teacher_path, progress=False,
    )  # fmt: skip
    student = load_backbone(out)
    assert_equal_tensors(weights(student, "vae."), weights(teacher, "vae."))
    start, end = weights(init, "denoiser."), weights(student, "denoiser.")
    # 4 steps at lr 1e-4 from the init: close to it, and nowhere near the teacher's denoiser
    drift = max((end[k] - start[k]).abs().max().item() for k in start)
    assert 0 < drift < 1e-2
    w_mlp = [k for k in start if k.startswith("denoiser.w_mlp")]
    assert w_mlp and any(start[k].abs().max() > 0 for k in w_mlp)  # the init's guidance embedding
    extra = student.checkpoint_extra
    assert extra["init_sha256"] == init.checkpoint_sha256
    assert extra["teacher_sha256"] == teacher.checkpoint_sha256


def test_lcm_refine_refuses_an_init_from_another_latent_space(
    tiny_lcm_refine, lcm_run: Path, mld_run: Path, tiny_corpus: Path, tmp_path: Path
):
    from easytune_engine.models.io import save_backbone

    other = load_backbone(lcm_run / MODEL)
    other.latent_std.mul_(1.5)
    save_backbone(tmp_path / "other.safetensors", other, dict(other.checkpoint_extra))
    with pytest.raises(ValueError, match="works in another latent space"):
        backbones.train_backbone(
            "lcm", "refine", tiny_corpus, tmp_path / "run", init=tmp_path / "other.safetensors",
            teacher=mld_run / MODEL, progress=False,
        )  # fmt: skip
    assert not (tmp_path / "run" / STATE).exists()
