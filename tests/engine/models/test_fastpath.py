"""The generation fast path's bookkeeping, run eagerly on the CPU (capture needs CUDA).

Static buffers, batch padding and the noise tape must give every request the motion the eager
loop gives for its seed, also when a later request reuses a key's buffers. The whole-generation
scope (`FastSampler.generate`: loop, decoder, denormalisation from one staged buffer) must give
the eager path's raw features for the same seeds and text embeddings.

"The same" is `assert_same_motion`: bit for bit where the CPU's matrix products do not depend on
the batch's row count (the Intel Xeon these tests were written on), to float32 rounding where
they do (padding a batch of 3 to 4 changes the blocking on an AMD EPYC with torch 2.13: 1.3e-5 at
most, measured). Every bug this guards against (a stale buffer, a wrong noise draw, a row out of
place) moves features by orders of magnitude more."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from easytune_engine.diffusion.sampling import Conditioning
from easytune_engine.diffusion.schedulers import NoiseTape
from easytune_engine.models import fastpath
from easytune_engine.models.fastpath import FastSampler, _PackedTape, bucket
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.server.batching import sample_batch

PROMPTS = ["a person walks forward", "someone jumps twice", "a man waves"]
CASES = [("mdm", "ddpm", 0.0), ("mld", "ddim", 0.5), ("lcm", "lcm", 0.0)]


def assert_same_motion(got: torch.Tensor, want: torch.Tensor, what: object = "") -> None:
    """Equal to float32 rounding of batch-size-dependent matrix products (see the docstring)."""
    assert got.shape == want.shape, what
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4, msg=lambda m: f"{what}: {m}")


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
        assert_same_motion(got, want, (prompts, seed))
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


# -- whole generation: loop + decoder + denormalisation ------------------------------------------

# (prompts, lengths, seed) on one sampler: new keys at batch 1, 2 and 4 (3 padded to 4), each
# reused with other prompts, lengths under the key's frames and seeds; a second frame count
GEN_REQUESTS = [
    (["a person walks forward"], [24], 1),
    (["someone jumps twice"] * 2, [24, 17], 2),
    (["a man waves"] * 3, [24, 24, 20], 3),
    (["a person walks forward", "a man waves", "x", "someone jumps twice"], [24] * 4, 4),
    (["someone jumps twice", "a man waves", "a man waves"], [17, 24, 9], 5),
    (["a man waves"], [24], 6),
    (["a person walks forward"] * 2, [16, 11], 7),
    (["someone jumps twice"], [24], 8),
]


def eager_raw(gen: MotionGenerator, text: torch.Tensor, lengths, seed: int, opts) -> torch.Tensor:
    """MotionGenerator.generate's raw features (before the crop), with given text embeddings."""
    lens = torch.tensor(lengths)
    streams = gen.generators(len(lengths), seed)
    with torch.no_grad():
        cond = gen.conditioning(["-"] * len(lengths), lens, opts)
        cond = Conditioning(text=text, lengths=cond.lengths, guidance=cond.guidance)
        x0 = gen.sample(cond, gen.initial_noise(lens, streams), opts, generator=streams)
        return gen.backbone.denormalize(gen.backbone.decode(x0, cond.lengths))


@pytest.mark.parametrize(("name", "sampler", "eta"), CASES)
def test_whole_generation_gives_the_eager_features_exactly(
    make_backbone, text_encoder, name: str, sampler: str, eta: float
) -> None:
    gen = MotionGenerator(make_backbone(name), text_encoder)
    opts = gen.options(4, None, sampler, eta)
    fast = FastSampler(gen, capture=False, bf16=False)
    for prompts, lengths, seed in GEN_REQUESTS:
        got = fast.generate(prompts, lengths, opts, gen.generators(len(prompts), seed))
        text = torch.cat([gen.encode([p]) for p in prompts])  # each prompt encoded alone
        want = eager_raw(gen, text, lengths, seed, opts)
        assert got.device.type == "cpu" and got.dtype == torch.float32
        assert got.shape == (len(prompts), max(lengths), want.shape[-1])
        assert_same_motion(got, want, f"{name}: {prompts}, {lengths}")
        # against generate itself: its text embedding depends on the batch (padding, batch 1 vs
        # more) by ~5e-7, the cache's does not; the motions agree to float32 rounding
        ref = gen.generate(prompts, lengths, seed=seed, steps=4, sampler=sampler, eta=eta)
        for row, n, feats in zip(got, lengths, ref.features, strict=True):
            np.testing.assert_allclose(row[:n].numpy(), feats, rtol=0, atol=1e-4)
    keys = {(k.batch, k.frames) for k in fast._gen_slots}
    if name == "mdm":  # x_T's frames are the longest motion's
        assert keys == {(1, 24), (2, 24), (4, 24), (2, 16)}
    else:  # a latent model decodes a frame bucket: 16 and 24 frames share a graph
        assert keys == {(1, 49), (2, 49), (4, 49)}
    assert fast.graphs == 0 and not fast._slots


@pytest.mark.parametrize("name", ["mld", "lcm", "mld-frames", "lcm-frames"])
def test_frame_buckets_decode_what_the_eager_path_decodes(
    make_backbone, text_encoder, name: str
) -> None:
    gen = MotionGenerator(make_backbone(name), text_encoder)
    opts = gen.options(2)
    fast = FastSampler(gen, capture=False, bf16=False)
    for lengths, seed in [([49], 1), ([50, 3], 2), ([196, 60], 3), ([97, 98], 4), ([99], 5)]:
        prompts = ["a man waves"] * len(lengths)
        got = fast.generate(prompts, lengths, opts, gen.generators(len(lengths), seed))
        want = eager_raw(gen, gen.encode(prompts[:1]).expand(len(lengths), -1), lengths, seed, opts)
        assert_same_motion(got, want, lengths)
    assert sorted({k.frames for k in fast._gen_slots}) == [49, 98, 147, 196]


def test_whole_generation_reloads_every_static_input(make_backbone, text_encoder) -> None:
    """The same key, run after other requests, gives the first request's answer again; and a
    padded row never changes the real ones."""
    gen = MotionGenerator(make_backbone("lcm"), text_encoder)
    opts = gen.options()
    fast = FastSampler(gen, capture=False, bf16=False)
    req = (["a man waves", "someone jumps twice", "a man waves"], [20, 24, 13], 9)
    first = fast.generate(req[0], req[1], opts, gen.generators(3, req[2]))
    fast.generate(["x"] * 4, [24, 24, 24, 24], opts, gen.generators(4, 99))
    fast.generate(["a person walks forward"] * 3, [24, 5, 24], opts, gen.generators(3, 98))
    again = fast.generate(req[0], req[1], opts, gen.generators(3, req[2]))
    assert torch.equal(first, again)
    alone = [
        fast.generate([p], [n], opts, gen.generators(1, req[2], first=i))
        for i, (p, n) in enumerate(zip(*req[:2], strict=True))
    ]
    for i, (row, n) in enumerate(zip(alone, req[1], strict=True)):  # batch 1 vs padded batch 4
        torch.testing.assert_close(row[0, :n], first[i, :n], rtol=0, atol=1e-5)


def test_prompt_cache_encodes_each_prompt_once_alone(
    make_backbone, text_encoder, monkeypatch
) -> None:
    gen = MotionGenerator(make_backbone("mld"), text_encoder)
    fast = FastSampler(gen, capture=False, bf16=False)
    calls: list[list[str]] = []
    encode = gen.encode
    monkeypatch.setattr(
        gen, "encode", lambda prompts: calls.append(list(prompts)) or encode(prompts)
    )
    monkeypatch.setattr(fastpath, "TEXT_CACHE", 2)
    rows = fast.text_rows(["a man waves", "a man waves", "someone jumps twice"])
    assert calls == [["a man waves"], ["someone jumps twice"]]
    assert torch.equal(rows[0], encode(["a man waves"])[0]) and torch.equal(rows[0], rows[1])
    fast.text_rows(["a man waves"])  # a hit: most recent now
    fast.text_rows(["x"])  # evicts "someone jumps twice", the least recently used
    assert list(fast._text) == ["a man waves", "x"] and len(calls) == 3
    fast.text_rows(["someone jumps twice"])
    assert calls[-1] == ["someone jumps twice"]


def test_packed_tape_replays_the_recording_from_its_views() -> None:
    tape = _PackedTape([torch.Generator().manual_seed(s) for s in (1, 2)])
    x = torch.zeros(2, 5, 3)
    first = [tape.take(x).clone() for _ in range(2)]
    flat = torch.zeros(2 * 2 * 5 * 3)
    views = [v.view(2, 5, 3) for v in flat.split(30)]
    tape.bind(views)
    assert torch.equal(flat, torch.cat([f.flatten() for f in first]))
    assert all(torch.equal(tape.take(x), f) for f in first)
    with pytest.raises(RuntimeError, match="did not"):
        tape.take(x)
    tape.rewind()
    assert tape.take(x.bfloat16()).dtype == torch.bfloat16  # cast where read, as eagerly
    with pytest.raises(ValueError, match="do not match"):
        _PackedTape([]).bind(views)


def test_server_batches_take_the_whole_generation_path(make_backbone, text_encoder) -> None:
    gen = MotionGenerator(make_backbone("lcm"), text_encoder)
    opts = gen.options()

    def job(prompt: str, n: int, seed: int) -> SimpleNamespace:
        body = {"prompt": prompt, "candidates": n, "length": 22}
        return SimpleNamespace(body=body, options=opts, seed=seed)

    batch = [job("a man waves", 2, 5), job("someone jumps twice", 1, 6)]
    fast = FastSampler(gen, capture=False, bf16=False)
    got = sample_batch(batch, gen, fast)  # type: ignore[arg-type]
    want = sample_batch(batch, gen)  # type: ignore[arg-type]
    assert [len(c) for c in got] == [2, 1]
    for g, w in zip([f for c in got for f in c], [f for c in want for f in c], strict=True):
        assert g.shape == w.shape == (22, 263) and g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-4)
    assert len(fast._gen_slots) == 1 and not fast._slots


class _FakeGraph:
    """Stands in for torch.cuda.CUDAGraph on the CPU: `replay` does nothing, so what a replay
    returns is what the captured run computed (from the buffers staged before the capture)."""

    def replay(self) -> None:
        pass


class _Context:
    def __init__(self, *args, fail: bool = False, **kwargs) -> None:
        self.fail = fail

    def __enter__(self) -> None:
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")

    def __exit__(self, *exc) -> None:
        return None


@pytest.mark.parametrize("fail", [False, True])
def test_capture_bookkeeping_with_stand_ins(
    make_backbone, text_encoder, monkeypatch, fail: bool
) -> None:
    """The capture branch's Python (warm-up, capture, replay, failure fallback) on the CPU."""
    stream = SimpleNamespace(wait_stream=lambda other: None)
    monkeypatch.setattr(torch.cuda, "Stream", lambda: stream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda: stream)
    monkeypatch.setattr(torch.cuda, "stream", _Context)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", _FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", lambda g: _Context(fail=fail))
    gen = MotionGenerator(make_backbone("lcm"), text_encoder)
    opts = gen.options()
    logs: list[tuple[str, dict]] = []
    fast = FastSampler(gen, capture=False, bf16=False, log=lambda e, **f: logs.append((e, f)))
    fast.capture = True
    prompts, lengths = ["a man waves", "someone jumps twice", "x"], [30, 24, 12]
    first = fast.generate(prompts, lengths, opts, gen.generators(3, 4))
    again = fast.generate(prompts, lengths, opts, gen.generators(3, 4))
    assert torch.equal(first, again)
    events = [e for e, _ in logs]
    if fail:
        assert events == ["graph_capture_failed"] and fast.graphs == 0
        other = fast.generate(prompts, lengths, opts, gen.generators(3, 5))  # eager, still right
        text = torch.cat([gen.encode([p]) for p in prompts])
        assert_same_motion(other, eager_raw(gen, text, lengths, 5, opts))
    else:
        assert events == ["graph_captured"] and logs[0][1]["frames"] == 49
        assert fast.graphs == 1
