"""The generation fast path's bookkeeping, run eagerly on the CPU (capture needs CUDA).

Static buffers, batch padding and the noise tape must give every request exactly the motion the
eager loop gives for its seed, also when a later request reuses a key's buffers."""

from __future__ import annotations

import pytest
import torch

from easytune_engine.diffusion.schedulers import NoiseTape
from easytune_engine.models.fastpath import FastSampler, bucket
from easytune_engine.models.pipeline import MotionGenerator

PROMPTS = ["a person walks forward", "someone jumps twice", "a man waves"]
CASES = [("mdm", "ddpm", 0.0), ("mld", "ddim", 0.5), ("lcm", "lcm", 0.0)]


def eager(gen: MotionGenerator, prompts, lengths, seed: int, opts) -> torch.Tensor:
    lens = torch.tensor(lengths)
    streams = gen.generators(len(prompts), seed)
    with torch.no_grad():
        cond = gen.conditioning(prompts, lens, opts)
        return gen.sample(cond, gen.initial_noise(lens, streams), opts, generator=streams)


def fast_run(fast: FastSampler, prompts, lengths, seed: int, opts) -> torch.Tensor:
    gen, lens = fast.gen, torch.tensor(lengths)
    streams = gen.generators(len(prompts), seed)
    with torch.no_grad():
        cond = gen.conditioning(prompts, lens, opts)
        return fast.sample(cond, gen.initial_noise(lens, streams), opts, streams)


@pytest.mark.parametrize(("name", "sampler", "eta"), CASES)
def test_static_buffers_and_noise_tape_give_the_eager_motions(
    make_backbone, text_encoder, name: str, sampler: str, eta: float
) -> None:
    gen = MotionGenerator(make_backbone(name), text_encoder)
    opts = gen.options(4, None, sampler, eta)
    fast = FastSampler(gen, capture=False, bf16=False)
    requests = [  # (rows, seed): a new key (padded 3 -> 4), another key, then the first reused
        (PROMPTS[:3], 11),
        (PROMPTS[:2], 12),
        (PROMPTS[1:] + PROMPTS[:1], 13),
    ]
    for prompts, seed in requests:
        lengths = [24] * len(prompts)
        want = eager(gen, prompts, lengths, seed, opts)
        got = fast_run(fast, prompts, lengths, seed, opts)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    assert len(fast._slots) == 2 and fast.graphs == 0


def test_a_tape_replays_what_it_recorded_and_refuses_other_draws() -> None:
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    tape = NoiseTape(gens)
    x = torch.zeros(2, 5, 3)
    first = [tape.take(x).clone() for _ in range(3)]
    tape.rewind()
    assert all(torch.equal(tape.take(x), f) for f in first)
    with pytest.raises(RuntimeError, match="did not"):
        tape.take(x)
    tape.rewind()
    again = [torch.Generator().manual_seed(s) for s in (1, 2)]
    tape.refill(again)  # the same generators from the start: the same noise
    assert all(torch.equal(tape.take(x), f) for f in first)


def test_bucket_and_capture_rules(make_backbone, text_encoder) -> None:
    assert [bucket(b) for b in (1, 2, 3, 5, 16, 17)] == [1, 2, 4, 8, 16, 32]
    with pytest.raises(ValueError, match="batch must be in"):
        bucket(0)
    gen = MotionGenerator(make_backbone("mld"), text_encoder)
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        FastSampler(gen, capture=True)
