"""`VAEConfig.decoder_noise`: the decoder stage decodes the posterior sample plus noise of a
per-clip std in [0, decoder_noise] x latent_std, on the motion's latent positions only; the
encoder, its latent space and the default (no noise) stay exactly as before."""

from __future__ import annotations

import pytest
import torch

from easytune_engine.data.humanml3d import Batch
from easytune_engine.models import MLDConfig, VAEConfig, build_backbone
from easytune_engine.models.io import load_backbone, save_backbone
from easytune_engine.motion.features import FEATURE_DIM
from easytune_engine.training.objectives import decoder_loss, latent_noise

LENGTHS = [40, 23, 64]  # frames-layout latent tokens: 10, 6, 16


def _model(layout: str, noise: float, seed: int = 0):
    torch.manual_seed(seed)
    vae = VAEConfig(
        width=64, enc_layers=1, dec_layers=1, latent_dim=8, latent_layout=layout,
        latent_tokens=4, decoder_noise=noise,
    )  # fmt: skip
    model = build_backbone("mld", MLDConfig(vae=vae, width=64, layers=3, text_dim=128))
    model.latent_std.fill_(0.5)
    for param in model.vae.encoder_parameters():
        param.requires_grad_(False)
    return model.eval()


def _batch() -> Batch:
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor(LENGTHS)
    x = torch.randn(3, 64, FEATURE_DIM, generator=g)
    mask = torch.arange(64)[None] < lengths[:, None]
    return Batch(x, lengths, mask, ["a", "b", "c"], [[], [], []], ["0", "1", "2"])


def _decoded_latents(model) -> torch.Tensor:
    """The latent the decoder stage hands to `decode`, for a fixed global seed."""
    seen = []
    decode = model.vae.decode

    def spy(z, lengths, *args, **kwargs):
        seen.append(z.detach().clone())
        return decode(z, lengths, *args, **kwargs)

    model.vae.decode = spy
    text = torch.randn(3, 128)
    torch.manual_seed(7)
    decoder_loss(model)(_batch(), text, 0)
    model.vae.decode = decode
    return seen[0]


@pytest.mark.parametrize("layout", ["frames", "tokens"])
def test_noise_only_on_the_motions_latent_positions(layout):
    plain = _decoded_latents(_model(layout, 0.0))
    noisy = _decoded_latents(_model(layout, 1.0))
    extra = noisy - plain
    if layout == "frames":
        real = torch.arange(extra.shape[1])[None] < torch.tensor([10, 6, 16])[:, None]
        assert extra[~real].abs().max().item() == 0.0
        assert (extra[real].abs().sum(-1) > 0).all()
    else:  # every global token belongs to the motion
        assert (extra.abs().sum(-1) > 0).all()


def test_noise_is_scaled_to_the_denoisers_units():
    """Per clip the extra noise has std σ·latent_std with σ <= decoder_noise: it is measured in
    the units the denoiser predicts, whatever the raw latent's spread."""
    stds = []
    for seed in range(20):
        torch.manual_seed(seed)
        model = _model("tokens", 0.0)
        z = latent_noise(model, torch.Size([3, 4, 8]), torch.tensor(LENGTHS), 0.4)
        stds.append(z.flatten(1).std(1))
    stds = torch.cat(stds) / 0.5  # latent_std
    assert stds.max().item() < 0.4 * 1.5  # 32 draws per clip: loose upper bound
    assert stds.min().item() < 0.1 < stds.max().item()  # σ varies from clip to clip


def test_default_is_the_plain_refine_stage():
    """decoder_noise = 0 decodes the posterior sample itself (checkpoints trained before)."""
    model = _model("frames", 0.0)
    torch.manual_seed(7)
    mu, logvar = model.vae.encode(_batch().features, _batch().lengths)
    expected = mu + torch.randn(mu.shape) * (0.5 * logvar).exp()
    assert torch.equal(_decoded_latents(model), expected)


def test_decoder_noise_is_saved_and_validated(tmp_path):
    model = _model("frames", 0.8)
    save_backbone(tmp_path / "m.safetensors", model)
    assert load_backbone(tmp_path / "m.safetensors").config.vae.decoder_noise == 0.8
    with pytest.raises(ValueError, match="decoder_noise must be >= 0"):
        VAEConfig(decoder_noise=-0.1)
