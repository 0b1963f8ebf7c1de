"""LoRA adapters: a fresh adapter leaves the model unchanged, adapters switch without touching the
base weights, only adapter tensors train and ship, and a wrong adapter is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from easytune_engine.checkpoint import CheckpointError
from easytune_engine.diffusion.sampling import Conditioning
from easytune_engine.finetune.lora import (
    LoRAConfig,
    adapter_state,
    add_lora,
    clear_adapter,
    load_adapter,
    save_adapter,
)
from easytune_engine.models import MDM, MLD, MDMConfig, MLDConfig, VAEConfig

TINY_VAE = VAEConfig(width=32, enc_layers=1, dec_layers=1, latent_tokens=2, latent_dim=8)


def _backbone(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "mdm":
        return MDM(MDMConfig(width=32, layers=1, heads=4, text_dim=16)).eval()
    return MLD(MLDConfig(vae=TINY_VAE, width=32, layers=1, heads=4, text_dim=16)).eval()


def _inputs(model) -> tuple[torch.Tensor, torch.Tensor, Conditioning]:
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([24, 17])
    x = torch.randn(model.noise_shape(lengths), generator=g)
    cond = Conditioning(torch.randn(2, 16, generator=g), lengths)
    return x, torch.tensor([700, 30]), cond


def _randomize(params: list[torch.nn.Parameter], seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.mark.parametrize("kind", ["mdm", "mld"])
def test_adapters_switch_without_touching_the_base(kind: str, tmp_path: Path) -> None:
    """Fresh adapters (B = 0) are the base model; saved adapters reload exactly; clearing gives
    the base back; the base weights are never modified."""
    model = _backbone(kind)
    x, t, cond = _inputs(model)
    with torch.no_grad():
        base_out = model(x, t, cond)
    params = add_lora(model, LoRAConfig(rank=2, alpha=2.0))
    base_weights = {k: v.clone() for k, v in model.state_dict().items() if "lora_" not in k}
    with torch.no_grad():
        torch.testing.assert_close(model(x, t, cond), base_out, rtol=0, atol=1e-6)
        _randomize(params, 1)
        out_a = model(x, t, cond)
        save_adapter(tmp_path / "a.safetensors", model)
        _randomize(params, 2)
        out_b = model(x, t, cond)
        save_adapter(tmp_path / "b.safetensors", model)
        assert (out_a - out_b).abs().max() > 1e-3
        load_adapter(tmp_path / "a.safetensors", model)
        torch.testing.assert_close(model(x, t, cond), out_a, rtol=0, atol=1e-6)
        clear_adapter(model)
        torch.testing.assert_close(model(x, t, cond), base_out, rtol=0, atol=1e-6)
    for k, v in model.state_dict().items():
        if "lora_" not in k:
            assert torch.equal(v, base_weights[k]), k


def test_only_adapters_get_gradients_and_the_file_is_small(tmp_path: Path) -> None:
    """Training through the adapters leaves every base parameter without a gradient, and the
    adapter file holds only A and B (a small fraction of the model)."""
    model = _backbone("mld")
    model.requires_grad_(False)
    params = add_lora(model, LoRAConfig(rank=2, alpha=2.0))
    x, t, cond = _inputs(model)
    model(x, t, cond).pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() == 0 for p in params[0::2])  # B = 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params[1::2])
    assert all(p.grad is None for n, p in model.named_parameters() if "lora_" not in n)
    save_adapter(tmp_path / "a.safetensors", model)
    names = set(adapter_state(model))
    assert names and all(".lora_A" in n or ".lora_B" in n for n in names)
    total = sum(v.numel() for v in model.state_dict().values())
    assert sum(v.numel() for v in adapter_state(model).values()) < 0.5 * total


def test_wrong_adapters_are_refused(tmp_path: Path) -> None:
    """An adapter for another model shape, another rank, or not an adapter at all: CheckpointError,
    and the loaded adapters are left as they were."""
    small, other = _backbone("mld"), _backbone("mdm")
    add_lora(other, LoRAConfig(rank=2, alpha=2.0))
    save_adapter(tmp_path / "mdm.safetensors", other)
    params = add_lora(small, LoRAConfig(rank=2, alpha=2.0))
    _randomize(params, 3)
    before = {k: v.clone() for k, v in adapter_state(small).items()}
    with pytest.raises(CheckpointError, match="do not fit"):
        load_adapter(tmp_path / "mdm.safetensors", small)
    rank4 = _backbone("mld")
    add_lora(rank4, LoRAConfig(rank=4, alpha=4.0))
    save_adapter(tmp_path / "r4.safetensors", rank4)
    with pytest.raises(CheckpointError, match="rank"):
        load_adapter(tmp_path / "r4.safetensors", small)
    (tmp_path / "junk.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(CheckpointError):
        load_adapter(tmp_path / "junk.safetensors", small)
    for k, v in adapter_state(small).items():
        assert torch.equal(v, before[k])


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="rank"):
        LoRAConfig(rank=0)
    with pytest.raises(ValueError, match="alpha"):
        LoRAConfig(rank=2, alpha=0.0)
    model = _backbone("mdm")
    add_lora(model, LoRAConfig(rank=2))
    with pytest.raises(ValueError, match="already"):
        add_lora(model, LoRAConfig(rank=2))
