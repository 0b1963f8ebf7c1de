"""Backbone checkpoints: exact round trip, fp16 storage, and every bad file refused by name."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from easytune_engine.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state_strict,
    save_checkpoint,
)
from easytune_engine.models import (
    MDMConfig,
    build_backbone,
    check_backbone_name,
    load_backbone,
    save_backbone,
)
from easytune_engine.models import io as models_io
from easytune_engine.reward.model import KIND as REWARD_KIND
from easytune_engine.training.loop import STATE_KIND

WEIGHTS = Path(models_io.__file__).resolve().parent.parent / "weights"
KEEP32 = ("mean", "std", "latent_std")


def outputs(model, make_cond) -> torch.Tensor:
    """Decoded x̂ for fixed inputs: exercises denoiser, VAE and stats."""
    lengths = [7, 33]
    x_t = torch.randn(model.noise_shape(torch.tensor(lengths)))
    t = torch.tensor([100, 700])
    with torch.no_grad():
        out = model(x_t, t, make_cond(lengths))
        return model.denormalize(model.decode(out, torch.tensor(lengths)))


def rewrite_metadata(path: Path, **changes: str) -> None:
    """Rewrite a checkpoint's metadata, leaving its tensors (and payload hash) as they were."""
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    tensors = load_file(str(path))
    meta.update(changes)
    save_file(tensors, str(path), metadata=meta)


def saved(tmp_path: Path, model, **extra) -> Path:
    path = tmp_path / f"{model.kind}.safetensors"
    save_backbone(path, model, extra=extra or None)
    return path


def test_round_trip_is_exact(backbone, make_cond, tmp_path: Path) -> None:
    """Save, load: same kind, config, stats, extra and bit-identical float32 outputs."""
    path = tmp_path / "run" / "model.safetensors"
    digest = save_backbone(path, backbone, extra={"corpus": "v1", "metrics": {"fid": 1.5}})
    loaded = load_backbone(path)
    assert type(loaded) is type(backbone) and loaded.config == backbone.config
    assert not loaded.training
    assert loaded.checkpoint_sha256 == digest
    assert loaded.checkpoint_extra == {"corpus": "v1", "metrics": {"fid": 1.5}}
    for name, value in backbone.state_dict().items():
        assert loaded.state_dict()[name].dtype == torch.float32 or not value.is_floating_point()
        assert torch.equal(loaded.state_dict()[name], value), name
    torch.manual_seed(0)
    a = outputs(backbone, make_cond)
    torch.manual_seed(0)
    assert torch.equal(outputs(loaded, make_cond), a)
    assert load_backbone(str(path)).config == backbone.config  # a str path works too


def test_fp16_keeps_stats_float32(backbone, make_cond, tmp_path: Path) -> None:
    """dtype=float16 halves the weights but never Mean/Std/latent_std; loads back as float32."""
    path = tmp_path / "half.safetensors"
    save_backbone(path, backbone, dtype=torch.float16)
    state = load_checkpoint(path, f"backbone/{backbone.kind}").state
    for name, value in state.items():
        want = torch.float32 if name in KEEP32 else torch.float16
        assert value.dtype == want or not value.is_floating_point(), name
    assert sum(name in state for name in KEEP32) == (3 if backbone.space == "latent" else 2)
    loaded = load_backbone(path)
    assert all(v.dtype == torch.float32 for v in loaded.state_dict().values())
    for name in KEEP32:
        if name in state:
            assert torch.equal(getattr(loaded, name), getattr(backbone, name))
    torch.manual_seed(0)
    a = outputs(backbone, make_cond)
    torch.manual_seed(0)
    torch.testing.assert_close(outputs(loaded, make_cond), a, rtol=0.05, atol=0.05)


def test_truncated_file_is_refused(make_backbone, tmp_path: Path) -> None:
    path = saved(tmp_path, make_backbone("mdm"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable safetensors") as err:
        load_backbone(path)
    assert str(path) in str(err.value)


def test_flipped_payload_bytes_are_refused(make_backbone, tmp_path: Path) -> None:
    path = saved(tmp_path, make_backbone("mld"))
    data = bytearray(path.read_bytes())
    header = struct.unpack("<Q", data[:8])[0]
    payload = 8 + header
    for i in (payload + 5, (payload + len(data)) // 2, len(data) - 3):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="content hash mismatch"):
        load_backbone(path)


def test_reward_checkpoint_is_not_a_backbone() -> None:
    path = WEIGHTS / "reward_tmr.safetensors"
    with pytest.raises(
        CheckpointError, match=f"holds a '{REWARD_KIND}' checkpoint, not a backbone"
    ):
        load_backbone(path)


def test_training_state_is_not_a_backbone(tmp_path: Path) -> None:
    path = tmp_path / "state.safetensors"
    save_checkpoint(path, STATE_KIND, MDMConfig(), {"step": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=f"'{STATE_KIND}' checkpoint, not a backbone"):
        load_backbone(path)


def test_kind_mismatch_between_metadata_and_name(make_backbone, tmp_path: Path) -> None:
    """An mdm file relabelled 'backbone/mld' is refused: the config and weights do not fit."""
    path = saved(tmp_path, make_backbone("mdm"))
    rewrite_metadata(path, kind="backbone/mld")
    with pytest.raises(CheckpointError, match="MLDConfig"):
        load_backbone(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"width": 32}, "weights do not fit the model: wrong shapes"),
        ({"width": 66}, "config does not fit MDMConfig: width"),
        ({"depth": 3}, r"config has fields \['depth'\] unknown to MDMConfig"),
    ],
)
def test_tampered_config_is_refused(make_backbone, tmp_path: Path, change, message) -> None:
    path = saved(tmp_path, make_backbone("mdm"))
    with safe_open(str(path), framework="pt") as f:
        config = json.loads(f.metadata()["config"])
    rewrite_metadata(path, config=json.dumps({**config, **change}))
    with pytest.raises(CheckpointError, match=message):
        load_backbone(path)


def test_failed_strict_load_changes_nothing(make_backbone, tiny_configs, tmp_path: Path) -> None:
    """Shapes or names that do not fit raise CheckpointError and leave the model untouched."""
    path = tmp_path / "x.safetensors"
    small = make_backbone("mdm", seed=1)
    other = build_backbone("mdm", MDMConfig(width=32, layers=2, heads=4, text_dim=128)).eval()
    before = {k: v.clone() for k, v in small.state_dict().items()}
    with pytest.raises(
        CheckpointError, match=r"wrong shapes .*inp.weight: \(32, 1052\) vs \(64, 1052\)"
    ):
        load_state_strict(small, other.state_dict(), path)
    lcm = make_backbone("lcm", seed=1)
    lcm_before = {k: v.clone() for k, v in lcm.state_dict().items()}
    mld_state = make_backbone("mld", seed=2).state_dict()
    with pytest.raises(CheckpointError, match=r"missing \['denoiser.w_mlp"):
        load_state_strict(lcm, mld_state, path)
    with pytest.raises(CheckpointError, match="unexpected"):
        load_state_strict(small, {**small.state_dict(), "extra.weight": torch.zeros(1)}, path)
    for model, ref in ((small, before), (lcm, lcm_before)):
        for k, v in model.state_dict().items():
            assert torch.equal(v, ref[k]), k


def test_unknown_backbone_names(tiny_configs, tmp_path: Path, monkeypatch) -> None:
    for call in (
        lambda: check_backbone_name("sd"),
        lambda: build_backbone("sd", tiny_configs["mdm"]),
        lambda: load_backbone("sd"),
    ):
        with pytest.raises(ValueError, match="mdm, mld, lcm"):
            call()
    with pytest.raises(TypeError, match="MLDConfig"):
        build_backbone("mld", tiny_configs["lcm"])
    monkeypatch.setattr(models_io, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(CheckpointError, match="shipped mld weights are missing"):
        load_backbone("mld")


def test_text_encoder_hash_is_checked(make_backbone, tmp_path: Path) -> None:
    model = make_backbone("lcm")
    path = saved(tmp_path, model, text_encoder_sha256="a" * 64)
    assert load_backbone(path, text_encoder_sha256="a" * 64).kind == "lcm"
    assert load_backbone(path).kind == "lcm"  # no encoder given: nothing to compare
    with pytest.raises(CheckpointError, match="trained with text encoder aaaaaaaaaaaa"):
        load_backbone(path, text_encoder_sha256="b" * 64)


def test_vae_checkpoints_without_loss_weights_load_with_weight_one(
    make_backbone, tmp_path: Path
) -> None:
    """Configs saved before VAEConfig had loss weights load with today's loss (ones, no traj)."""
    path = saved(tmp_path, make_backbone("mld"))
    with safe_open(str(path), framework="pt") as f:
        config = json.loads(f.metadata()["config"])
    for key in ("root_weight", "velocity_weight", "contact_weight", "trajectory_weight"):
        config["vae"].pop(key)
    rewrite_metadata(path, config=json.dumps(config))
    vae = load_backbone(path).config.vae
    assert (vae.root_weight, vae.velocity_weight, vae.contact_weight) == (1.0, 1.0, 1.0)
    assert vae.trajectory_weight == 0.0
    assert vae.channel_weights() is None


@pytest.mark.parametrize("name", ["mld", "lcm"])
def test_shipped_latent_backbones_carry_the_vae_settings_they_were_trained_with(name: str) -> None:
    """The shipped MLD/LCM come from the `large` preset (then `refine`, which keeps its VAE
    config): their VAE config (16 x 32 latent, root channels weighted 10x, trajectory term) is
    read back from the file, not from defaults."""
    from easytune_engine.training.presets import get_preset

    if not models_io.shipped_path(name).is_file():
        pytest.skip("shipped weights missing")
    vae = load_backbone(name).config.vae
    assert vae == get_preset(name, "large").model.vae == get_preset(name, "refine").model.vae
    assert vae.channel_weights() is not None and float(vae.channel_weights().max()) == 10.0
