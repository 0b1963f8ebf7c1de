"""The denoiser contract shared by MDM, MLD and LCM: shapes, masks, null text, gradients."""

from __future__ import annotations

import pytest
import torch

from easytune_engine.models import (
    LCM,
    MAX_FRAMES,
    MDM,
    Backbone,
    MDMConfig,
    MLDConfig,
    check_lengths,
    length_mask,
)
from easytune_engine.models.base import TextConditioner
from easytune_engine.motion.features import FEATURE_DIM

ODD_LENGTHS = [7, 33, 196]  # none but the cap a multiple of the VAE's 4x downsampling


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def noise(model: Backbone, lengths: list[int], seed: int = 0) -> torch.Tensor:
    return randn(*model.noise_shape(torch.tensor(lengths)), seed=seed)


def steps(b: int, t: int = 500) -> torch.Tensor:
    return torch.full((b,), t, dtype=torch.long)


def pred_x0(model: Backbone, x_t: torch.Tensor, t: torch.Tensor, out: torch.Tensor):
    """x̂0 from a model output, whatever the backbone predicts."""
    if model.prediction_type == "sample":
        return out
    abar = model.schedule.alphas_cumprod().float()[t].view(-1, 1, 1)
    return (x_t - (1 - abar).sqrt() * out) / abar.sqrt()


class TestBackboneContract:
    """One contract, three backbones (the `backbone` fixture is parametrised over mdm/mld/lcm)."""

    def test_forward_returns_noise_shape(self, backbone: Backbone, make_cond) -> None:
        """forward(x_t, t, cond) has the shape of x_T for those lengths, and is finite."""
        lengths = [7, 33, 60]
        x_t = noise(backbone, lengths)
        with torch.no_grad():
            out = backbone(x_t, steps(3), make_cond(lengths))
        assert out.shape == x_t.shape == backbone.noise_shape(torch.tensor(lengths))
        assert out.dtype == torch.float32
        assert torch.isfinite(out).all()

    def test_noise_shape_per_space(self, backbone: Backbone) -> None:
        """Feature models noise (B, max length, 263); latent models (B, L, d) with a fixed L, or
        one token per 4 frames of the longest motion (the "frames" layout)."""
        shape = backbone.noise_shape(torch.tensor([7, 33]))
        mask = backbone.noise_mask(torch.tensor([7, 33]), shape[1])
        if backbone.space == "features":
            assert shape == (2, 33, FEATURE_DIM)
            assert mask.sum(1).tolist() == [7, 33]
        elif backbone.config.vae.latent_layout == "frames":
            assert shape == (2, 9, backbone.config.vae.latent_dim)  # ceil(33 / 4) = 9
            assert mask.sum(1).tolist() == [2, 9]
        else:
            v = backbone.config.vae
            assert shape == (2, v.latent_tokens, v.latent_dim)
            assert mask.all()

    def test_padded_frames_do_not_leak(self, backbone: Backbone, make_cond) -> None:
        """Positions past a motion's length (MDM frames, "frames" latents) change nothing; the
        output is zero there."""
        lengths = [7, 33, 60]
        x_t = noise(backbone, lengths)
        valid = backbone.noise_mask(torch.tensor(lengths), x_t.shape[1])
        if valid.all():
            pytest.skip("global latent tokens: every position belongs to every motion")
        valid = valid[..., None]
        junk = torch.where(valid, x_t, 100.0 * noise(backbone, lengths, seed=1))
        cond = make_cond(lengths)
        with torch.no_grad():
            out, out_junk = backbone(x_t, steps(3), cond), backbone(junk, steps(3), cond)
        assert torch.equal(out, out_junk)
        for i, n in enumerate(valid[..., 0].sum(1).tolist()):
            assert out[i, :n].abs().sum() > 0
            assert torch.all(out[i, n:] == 0)

    def test_row_does_not_depend_on_batch(self, backbone: Backbone, make_cond) -> None:
        """A row's output is the same alone as in a batch with longer motions."""
        lengths = [7, 33, 60]
        x_t = noise(backbone, lengths)
        cond = make_cond(lengths)
        with torch.no_grad():
            batch = backbone(x_t, steps(3), cond)
            for i, n in enumerate(lengths):
                one = make_cond([n], text=cond.text[i : i + 1])
                k = backbone.noise_shape(torch.tensor([n]))[1]  # positions of a lone motion
                alone = backbone(x_t[i : i + 1, :k], steps(1), one)
                torch.testing.assert_close(alone[0], batch[i, :k], rtol=0, atol=1e-5)

    def test_decode_shape_and_mask(self, backbone: Backbone) -> None:
        """decode(x0, lengths): (B, max(lengths), 263), zero after each length, any length."""
        lengths = torch.tensor(ODD_LENGTHS)
        with torch.no_grad():
            feats = backbone.decode(noise(backbone, ODD_LENGTHS), lengths)
        assert feats.shape == (3, MAX_FRAMES, FEATURE_DIM)
        assert torch.isfinite(feats).all()
        for i, n in enumerate(ODD_LENGTHS):
            assert feats[i, :n].abs().sum(-1).min() > 0
            assert torch.all(feats[i, n:] == 0)
        with torch.no_grad():  # a lone short motion decodes to exactly its own length
            assert backbone.decode(noise(backbone, [7]), torch.tensor([7])).shape == (1, 7, 263)

    def test_decode_row_does_not_depend_on_batch(self, backbone: Backbone) -> None:
        """A row decodes the same alone as next to a longer motion."""
        x0 = noise(backbone, [40, 60])
        with torch.no_grad():
            batch = backbone.decode(x0, torch.tensor([40, 60]))
            k = backbone.noise_shape(torch.tensor([40]))[1]
            alone = backbone.decode(x0[:1, :k], torch.tensor([40]))
        torch.testing.assert_close(alone[0], batch[0, :40], rtol=0, atol=1e-5)

    def test_latent_encode_handles_any_length(self, backbone: Backbone) -> None:
        """Latent models: encode ignores padded frames and other rows; lengths 7, 33, 196 work."""
        if backbone.space != "latent":
            pytest.skip("feature-space backbones have no encoder")
        lengths = torch.tensor(ODD_LENGTHS)
        feats = randn(3, MAX_FRAMES, FEATURE_DIM)
        valid = length_mask(lengths, MAX_FRAMES)[..., None]
        junk = torch.where(valid, feats, 50.0 * randn(3, MAX_FRAMES, FEATURE_DIM, seed=1))
        with torch.no_grad():
            z, z_junk = backbone.encode(feats, lengths), backbone.encode(junk, lengths)
            back = backbone.decode(z, lengths)
        assert z.shape == backbone.noise_shape(lengths)
        assert torch.isfinite(z).all()
        torch.testing.assert_close(z, z_junk, rtol=0, atol=1e-6)
        assert back.shape == (3, MAX_FRAMES, FEATURE_DIM)

    def test_encode_row_does_not_depend_on_batch(self, backbone: Backbone) -> None:
        """Latent models: a motion encodes the same alone as next to a longer one."""
        if backbone.space != "latent":
            pytest.skip("feature-space backbones have no encoder")
        feats = randn(2, 60, FEATURE_DIM)
        with torch.no_grad():
            batch = backbone.encode(feats, torch.tensor([40, 60]))
            alone = backbone.encode(feats[:1, :40], torch.tensor([40]))
        k = alone.shape[1]
        torch.testing.assert_close(alone[0], batch[0, :k], rtol=0, atol=1e-5)
        assert torch.all(batch[0, k:] == 0)  # "frames": no latent past the length

    def test_dropped_text_uses_learned_null(self, backbone: Backbone, make_cond) -> None:
        """use_text False: the output ignores the text embedding and follows the learned null."""
        lengths = [20, 20, 20]
        x_t, t = noise(backbone, lengths), steps(3)
        drop = [True, False, True]
        with torch.no_grad():
            a = backbone(x_t, t, make_cond(lengths, seed=0, use_text=drop))
            b = backbone(x_t, t, make_cond(lengths, seed=1, use_text=drop))
            assert torch.equal(a[1], b[1])  # dropped row: text values do not matter
            assert not torch.allclose(a[0], b[0])  # kept rows: they do
            null = next(m for m in backbone.modules() if isinstance(m, TextConditioner)).null
            null.add_(1.0)
            c = backbone(x_t, t, make_cond(lengths, seed=0, use_text=drop))
        assert not torch.allclose(a[1], c[1])  # the null embedding is what conditions it
        assert torch.equal(a[0], c[0])

    def test_gradients_reach_denoiser(self, backbone: Backbone, make_cond) -> None:
        """Decoded features backpropagate into every trainable (denoiser) parameter."""
        lengths = [9, 20]
        x_t, t = noise(backbone, lengths), steps(2, 300)
        out = backbone(x_t, t, make_cond(lengths))
        feats = backbone.decode(pred_x0(backbone, x_t, t, out), torch.tensor(lengths))
        feats.square().mean().backward()
        params = backbone.trainable_parameters()
        assert params and all(p.grad is not None for p in params)
        assert sum(bool(p.grad.abs().sum() > 0) for p in params) > 0.8 * len(params)
        if backbone.space == "latent":  # fine-tuning never updates the VAE
            assert {id(p) for p in params} == {id(p) for p in backbone.denoiser.parameters()}
        else:
            assert len(params) == len(list(backbone.parameters()))


def test_lcm_consistency_is_identity_at_t0(make_backbone, make_cond) -> None:
    """c_skip(0) = 1 and c_out(0) = 0: the consistency function returns x_t exactly at t = 0."""
    lcm = make_backbone("lcm")
    c_skip, c_out = lcm.boundary(torch.tensor([0, 999]))
    assert c_skip[0].item() == 1.0 and c_out[0].item() == 0.0
    assert c_skip[1].item() < 1e-3 and c_out[1].item() > 0.99
    x_t = noise(lcm, [20, 20])
    with torch.no_grad():
        assert torch.equal(lcm(x_t, steps(2, 0), make_cond([20, 20])), x_t)


def test_lcm_requires_guidance(make_backbone, make_cond) -> None:
    lcm = make_backbone("lcm")
    with pytest.raises(ValueError, match="guidance"):
        lcm(noise(lcm, [20]), steps(1), make_cond([20], guidance=None))


def test_lcm_student_from_mld_teacher_matches(make_backbone, make_cond, tiny_configs) -> None:
    """A student loaded from a teacher's state dict (w_mlp zero-init) predicts the teacher's ε."""
    teacher = make_backbone("mld", seed=3)
    student = LCM(tiny_configs["lcm"])
    missing, unexpected = student.load_state_dict(teacher.state_dict(), strict=False)
    assert unexpected == [] and missing and all(k.startswith("denoiser.w_mlp") for k in missing)
    student.eval()
    x_t, t = noise(teacher, [20, 30, 40]), torch.tensor([10, 500, 999])
    with torch.no_grad():
        eps = teacher(x_t, t, make_cond([20, 30, 40], guidance=None))
        for w in (1.0, 5.0, 15.0):
            assert torch.equal(student.denoiser(x_t, t, make_cond([20, 30, 40], guidance=w)), eps)


def test_configs_and_types_are_checked(tiny_configs) -> None:
    with pytest.raises(ValueError, match="divisible"):
        MDMConfig(width=65, heads=4)
    with pytest.raises(ValueError, match="odd"):
        MLDConfig(layers=2)
    with pytest.raises(TypeError, match="LCMConfig"):
        LCM(tiny_configs["mld"])
    with pytest.raises(ValueError, match="263"):
        MDM(tiny_configs["mdm"], mean=[0.0] * 10, std=[1.0] * 10)


@pytest.mark.parametrize("bad", [[0], [MAX_FRAMES + 1], [-3], []])
def test_check_lengths_refuses_out_of_range(bad: list[int]) -> None:
    with pytest.raises(ValueError, match="length"):
        check_lengths(bad)


def test_check_lengths_and_mask() -> None:
    lengths = check_lengths([1, MAX_FRAMES])
    assert lengths.dtype == torch.long
    mask = length_mask(torch.tensor([1, 3]), 4)
    assert mask.tolist() == [[True, False, False, False], [True, True, True, False]]
