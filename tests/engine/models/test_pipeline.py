"""MotionGenerator: raw per-prompt features, seeded, batch-independent, validated, CFG-correct."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from easytune_engine.checkpoint import CheckpointError
from easytune_engine.diffusion.sampling import sample_loop
from easytune_engine.models import MDM, MDMConfig, save_backbone
from easytune_engine.models.pipeline import MAX_CANDIDATES, MotionGenerator

PROMPTS = ["a person walks forward", "someone jumps twice", "a man waves", "a person sits down"]
CASES = [
    ("mdm", "ddpm"),
    ("mdm", "ddim"),
    ("mld", "ddim"),
    ("lcm", "lcm"),
    ("mld-frames", "ddim"),
    ("lcm-frames", "lcm"),
]
STEPS = 4


@pytest.fixture
def make_generator(make_backbone, text_encoder):
    """Factory: make_generator(name, seed=0) -> MotionGenerator(tiny backbone, shipped encoder)."""

    def make(name: str, seed: int = 0) -> MotionGenerator:
        return MotionGenerator(make_backbone(name, seed=seed), text_encoder)

    return make


class Spy:
    """Records the batch size of every backbone forward call."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.batches: list[int] = []
        self.guidance: list[torch.Tensor | None] = []
        model.register_forward_pre_hook(self.hook)

    def hook(self, _module, args) -> None:
        self.batches.append(args[0].shape[0])
        self.guidance.append(args[2].guidance)


@pytest.mark.parametrize(("name", "sampler"), CASES)
def test_generate_returns_raw_features(make_generator, name: str, sampler: str) -> None:
    """One finite float32 (length, 263) raw motion per prompt: normalized · std + mean."""
    gen = make_generator(name)
    lengths = [7, 33, 60]
    out = gen.generate(PROMPTS[:3], lengths, seed=1, steps=STEPS, sampler=sampler)
    assert out.lengths == lengths and out.seed == 1
    assert (out.options.sampler, out.options.steps) == (sampler, STEPS)
    assert out.normalized.shape == (3, 60, 263)
    mean, std = gen.backbone.mean, gen.backbone.std
    for i, n in enumerate(lengths):
        f = out.features[i]
        assert f.shape == (n, 263) and f.dtype == np.float32
        assert np.isfinite(f).all()
        expect = (out.normalized[i, :n] * std + mean).numpy()
        np.testing.assert_allclose(f, expect, rtol=0, atol=1e-6)
        assert torch.all(out.normalized[i, n:] == 0)
    assert not np.allclose(out.features[0], out.normalized[0, :7].numpy())  # not normalised


@pytest.mark.parametrize("name", ["mdm", "mld", "lcm"])
def test_seed_decides_the_output(make_generator, name: str) -> None:
    gen = make_generator(name)
    run = lambda seed: gen.generate(PROMPTS[:2], [20, 30], seed=seed, steps=2).features  # noqa: E731
    a, b, c = run(7), run(7), run(8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(not np.allclose(x, z) for x, z in zip(a, c, strict=True))


@pytest.mark.parametrize(("name", "sampler"), CASES)
def test_candidate_does_not_depend_on_batch_size(make_generator, name, sampler) -> None:
    """Candidate 0 of four equals candidate 0 generated alone (it is the longest here)."""
    gen = make_generator(name)
    kw = {"seed": 3, "steps": STEPS, "sampler": sampler}
    four = gen.generate(PROMPTS, [60, 20, 60, 33], **kw)
    one = gen.generate(PROMPTS[:1], [60], **kw)
    np.testing.assert_allclose(one.features[0], four.features[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize(("name", "sampler"), CASES)
def test_candidate_does_not_depend_on_longer_neighbours(make_generator, name, sampler) -> None:
    """Candidate 0 equals itself alone even when other candidates are longer."""
    gen = make_generator(name)
    kw = {"seed": 3, "steps": STEPS, "sampler": sampler}
    four = gen.generate(PROMPTS, [40, 60, 40, 60], **kw)
    one = gen.generate(PROMPTS[:1], [40], **kw)
    np.testing.assert_allclose(one.features[0], four.features[0], rtol=0, atol=1e-5)


BAD_INPUTS = [
    ("mdm", {"prompts": [""]}, "prompt 0 is empty"),
    ("mdm", {"prompts": [" \t\n"]}, "prompt 0 is empty"),
    ("mdm", {"prompts": ["a" * 401]}, "prompt 0 is too long: 401 characters, at most 400"),
    ("mdm", {"prompts": "a person walks"}, "not a single string"),
    ("mdm", {"lengths": [0]}, "motion length 0 frames is out of range: valid 1..196"),
    ("mdm", {"lengths": [197]}, "motion length 197 frames is out of range: valid 1..196"),
    ("mdm", {"guidance": -0.5}, "guidance must be in 0..50, got -0.5"),
    ("mdm", {"guidance": float("nan")}, "guidance must be in 0..50"),
    ("mdm", {"sampler": "euler"}, "unknown sampler 'euler'; valid: ddpm, ddim, lcm"),
    ("mld", {"sampler": "lcm"}, "the 'lcm' sampler goes with the lcm backbone only"),
    ("lcm", {"sampler": "ddim"}, "the lcm backbone samples with 'lcm', not 'ddim'"),
    ("mdm", {"steps": 0}, r"steps must be an integer in 1\.\.1000, got 0"),
    ("lcm", {"steps": 51}, r"steps must be an integer in 1\.\.50, got 51"),
    ("mdm", {"steps": 2.5}, "steps must be an integer"),
    ("mdm", {"eta": 1.5}, "eta must be in"),
    ("mld", {"precision": "fp16"}, "unknown precision 'fp16'; valid: fp32, bf16"),
    (
        "mdm",
        {"prompts": ["walk"] * (MAX_CANDIDATES + 1), "lengths": [20] * (MAX_CANDIDATES + 1)},
        f"too many motions in one call: {MAX_CANDIDATES + 1}, at most {MAX_CANDIDATES}",
    ),
    ("mdm", {"prompts": ["walk", "run"], "lengths": [20]}, "2 prompts but 1 lengths"),
    ("mdm", {"seed": -1}, r"seed must be an integer in 0\.\.2\^31-1, got -1"),
    ("mdm", {"seed": 2**31}, "seed must be an integer"),
]


@pytest.mark.parametrize(
    ("name", "change", "message"),
    BAD_INPUTS,
    ids=[f"{n}-{next(iter(c))}-{i}" for i, (n, c, _) in enumerate(BAD_INPUTS)],
)
def test_bad_input_is_refused_before_sampling(make_generator, name, change, message) -> None:
    """A clear ValueError, and the backbone never runs."""
    gen = make_generator(name)
    spy = Spy(gen.backbone)
    kw = {"prompts": ["a person walks"], "lengths": [20], "steps": 2, **change}
    with pytest.raises(ValueError, match=message):
        gen.generate(kw.pop("prompts"), kw.pop("lengths"), **kw)
    assert spy.batches == []


@pytest.mark.parametrize(("name", "sampler"), [("mdm", "ddpm"), ("mld", "ddim")])
def test_guidance_one_is_the_conditional_model(make_generator, name, sampler) -> None:
    """guidance 1.0 runs no unconditional pass and equals a plain sample_loop of the backbone."""
    gen = make_generator(name)
    spy = Spy(gen.backbone)
    prompts, lengths = PROMPTS[:2], [20, 33]
    out = gen.generate(prompts, lengths, seed=5, steps=STEPS, guidance=1.0, sampler=sampler)
    assert spy.batches == [2] * STEPS
    opts = gen.options(STEPS, 1.0, sampler)
    lens, gens = torch.tensor(lengths), gen.generators(2, 5)
    with torch.no_grad():
        cond = gen.conditioning(prompts, lens, opts)
        x_T = gen.initial_noise(lens, gens)
        x0 = sample_loop(gen.backbone, gen.scheduler(opts), x_T, cond, generator=gens)
        raw = gen.backbone.denormalize(gen.backbone.decode(x0, lens)).numpy()
    for i, n in enumerate(lengths):
        assert np.array_equal(out.features[i], raw[i, :n])
    spy.batches.clear()
    guided = gen.generate(prompts, lengths, seed=5, steps=STEPS, guidance=2.5, sampler=sampler)
    assert spy.batches == [4] * STEPS  # [cond; uncond] in one pass
    assert not np.allclose(guided.features[0], out.features[0])


def test_lcm_embeds_guidance_instead_of_cfg(make_generator) -> None:
    """LCM: one pass per step (no CFG batch), with w handed over in Conditioning.guidance."""
    gen = make_generator("lcm")
    spy = Spy(gen.backbone)
    out = gen.generate(PROMPTS[:3], [20, 20, 20], seed=0, steps=2, guidance=9.0)
    assert out.options == gen.options(2, 9.0, "lcm")
    assert spy.batches == [3, 3]
    assert all(torch.equal(g, torch.full((3,), 9.0)) for g in spy.guidance)


def test_defaults_come_from_the_backbone(make_generator) -> None:
    for name in ("mdm", "mld", "lcm"):
        gen = make_generator(name)
        d, opts = gen.backbone.sampling, gen.options()
        assert (opts.sampler, opts.steps, opts.guidance, opts.eta) == (
            d.sampler,
            d.steps,
            d.guidance,
            0.0,
        )


@pytest.mark.parametrize(("name", "sampler"), [("mdm", "ddpm"), ("mld", "ddim"), ("lcm", "lcm")])
def test_bf16_runs_the_network_in_bfloat16_and_the_sampler_in_float32(
    make_generator, name: str, sampler: str
) -> None:
    """precision="bf16": the backbone's linear layers compute in bfloat16, but what the sampler
    sees (model output, x_t, x̂0) and what the user gets stay float32, a rounding away from fp32."""
    gen = make_generator(name)
    linear_dtypes: list[torch.dtype] = []
    for m in gen.backbone.modules():
        if isinstance(m, torch.nn.Linear):
            m.register_forward_hook(lambda _m, _a, out: linear_dtypes.append(out.dtype))
    opts = gen.options(STEPS, 2.0, sampler, precision="bf16")
    lens = torch.tensor([20, 33])
    seen: list[torch.dtype] = []
    with torch.no_grad():
        cond = gen.conditioning(PROMPTS[:2], lens, opts)
        x_T = gen.initial_noise(lens, gen.generators(2, 3))
        x0 = gen.sample(
            cond,
            x_T,
            opts,
            hook=lambda s: seen.extend(
                [s.x_t.dtype, s.model_output.dtype, s.pred_x0.dtype, s.prev_sample.dtype]
            ),
        )
    assert linear_dtypes and set(linear_dtypes) == {torch.bfloat16}
    assert set(seen) == {torch.float32} and x0.dtype == torch.float32
    fp32 = gen.generate(PROMPTS[:2], [20, 33], seed=3, steps=STEPS, guidance=2.0, sampler=sampler)
    bf16 = gen.generate(
        PROMPTS[:2], [20, 33], seed=3, steps=STEPS, guidance=2.0, sampler=sampler, precision="bf16"
    )
    assert bf16.options.precision == "bf16" and fp32.options.precision == "fp32"
    diff = (bf16.normalized - fp32.normalized).abs()
    assert bf16.normalized.dtype == torch.float32 and 0 < float(diff.mean()) < 0.05


@pytest.mark.parametrize("name", ["mdm", "mld"])
def test_sample_is_differentiable(make_generator, name: str) -> None:
    """sample() + decode backpropagate into the denoiser (the fine-tuner's path)."""
    gen = make_generator(name)
    opts = gen.options(steps=2, guidance=2.0, sampler="ddim")
    lens = torch.tensor([12, 20])
    cond = gen.conditioning(PROMPTS[:2], lens, opts)
    x0 = gen.sample(cond, gen.initial_noise(lens, gen.generators(2, 0)), opts)
    gen.backbone.decode(x0, lens).square().mean().backward()
    params = gen.backbone.trainable_parameters()
    assert all(p.grad is not None for p in params)
    assert sum(bool(p.grad.abs().sum() > 0) for p in params) > 0.8 * len(params)


def test_text_width_must_match(text_encoder) -> None:
    model = MDM(MDMConfig(width=64, layers=2, heads=4, text_dim=64))
    with pytest.raises(ValueError, match="expects 64-d text embeddings, the encoder gives 128"):
        MotionGenerator(model, text_encoder)


def test_load_checks_the_text_encoder(make_backbone, text_encoder, tmp_path: Path) -> None:
    """MotionGenerator.load pairs a checkpoint with the shipped encoder only if hashes match."""
    model = make_backbone("mld")
    good, bad = tmp_path / "good.safetensors", tmp_path / "bad.safetensors"
    save_backbone(good, model, extra={"text_encoder_sha256": text_encoder.source_sha256})
    save_backbone(bad, model, extra={"text_encoder_sha256": "0" * 64})
    gen = MotionGenerator.load(good)
    assert gen.backbone.kind == "mld" and gen.text_encoder.width == 128
    out = gen.generate(PROMPTS[:1], [9], steps=2)
    assert out.features[0].shape == (9, 263)
    with pytest.raises(CheckpointError, match="trained with text encoder 000000000000"):
        MotionGenerator.load(bad)
