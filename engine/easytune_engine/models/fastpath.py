"""Generation's fast path on CUDA: prompt -> raw features as one CUDA graph per key.

    fast = FastSampler(generator)                        # capture=None: on CUDA devices only
    fast = FastSampler(generator, bf16=True)             # bf16 autocast: not faster, cm off
    raw = fast.generate(prompts, lengths, opts, streams)  # (B, max(lengths), 263) raw, on the CPU
    x0 = fast.sample(cond, x_T, opts, streams)           # the older, loop-only scope

Small motion models are launch-bound on a GPU: an eager 50-step loop spends most of its time
launching kernels (../shared/docs/gpu.md measured 150 ms eager against 19.9 ms as a graph). A graph
needs fixed tensors, so every input lives in a static buffer per key. Batches are padded to a power
of two (copies of row 0, sliced off after), so a handful of graphs serve every batch size. The
first request of a key runs eagerly (that run records the noise tape and warms up), then it is
captured; a capture that fails leaves that key on the eager path, logged once. Without capture
(CPU, or `capture=False`) the same static-buffer code runs eagerly, which is how the bookkeeping
is tested without a GPU.

`generate` (the server's path) captures everything after tokenisation, per (options, batch bucket,
noise shape, frames): the sampling loop, the decoder (an MLD/LCM VAE; MDM's length mask) and the
denormalisation. What stays outside is done on the host and crosses to the GPU as one copy:

* text: a prompt's pooled embedding is cached (LRU, on the host) the first time it is seen,
  encoded alone, so its value never depends on its batch-mates; artists regenerate the same prompt
  often, so most requests do not run the encoder at all;
* noise: x_T and every draw of the loop come from the candidates' own CPU generators in the eager
  path's order (the same motion for a seed), drawn straight into one pinned host tensor that also
  holds the text rows and the lengths, then copied to the GPU with one non-blocking copy;
* the result: one device-to-host copy of the raw features.

Precision is fp32 unless `bf16=True`: on an H200 the fp32 graphs gave the eager loop's motion
exactly and met the targets (4-step LCM 1.9 ms, 50-step MLD 11.7 ms, one 196-frame clip), while
bf16 autocast moved joints by 8-25 cm and was no faster (these models are launch-bound, not
compute-bound; benchmarks/results/gpu_check*.json).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from ..diffusion.sampling import Conditioning
from ..diffusion.schedulers import NoiseTape, row_noise
from ..text.encoder import check_prompts
from .base import MAX_FRAMES, check_lengths
from .latent import LCM, MLD
from .pipeline import MAX_CANDIDATES, MotionGenerator, SamplingOptions

MAX_GRAPHS = 16  # keys kept captured per scope (least recently used go first)
TEXT_CACHE = 4096  # prompts whose pooled embedding is kept (128 floats each)
FRAME_BUCKET = 49  # a latent model decodes 49, 98, 147 or 196 frames (4 graphs, not 196)


def bucket(batch: int) -> int:
    """The power of two >= batch that a batch is padded to (at most MAX_CANDIDATES)."""
    if not 1 <= batch <= MAX_CANDIDATES:
        raise ValueError(f"batch must be in 1..{MAX_CANDIDATES}, got {batch}")
    return 1 << (batch - 1).bit_length()


@dataclass(frozen=True)
class GraphKey:
    options: SamplingOptions
    batch: int  # the bucket
    shape: tuple[int, ...]  # x_T.shape[1:]


class _Slot:
    """The static buffers, noise tape and (maybe) captured graph of one key."""

    def __init__(self, cond: Conditioning, x_T: torch.Tensor, tape: NoiseTape) -> None:
        self.x_T = x_T.clone()
        self.cond = Conditioning(
            text=cond.text.clone(),
            lengths=cond.lengths.clone(),
            use_text=None if cond.use_text is None else cond.use_text.clone(),
            guidance=None if cond.guidance is None else cond.guidance.clone(),
        )
        self.tape = tape
        self.out: torch.Tensor | None = None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_only = False

    def load(self, cond: Conditioning, x_T: torch.Tensor, streams: Sequence) -> None:
        self.x_T.copy_(x_T)
        self.cond.text.copy_(cond.text)
        self.cond.lengths.copy_(cond.lengths)
        if self.cond.use_text is not None and cond.use_text is not None:
            self.cond.use_text.copy_(cond.use_text)
        if self.cond.guidance is not None and cond.guidance is not None:
            self.cond.guidance.copy_(cond.guidance)
        self.tape.rewind()
        self.tape.refill(streams)


@dataclass(frozen=True)
class GenerationKey:
    """A whole-generation graph: the loop's key plus the decoded frames (max of the lengths)."""

    options: SamplingOptions
    batch: int  # the bucket
    shape: tuple[int, ...]  # x_T.shape[1:]
    frames: int  # decoded: MDM's x_T frames; a latent model's max length rounded up a bucket


class _PackedTape(NoiseTape):
    """A noise tape whose draws, after the recording run, are views of one flat float32 device
    tensor (refilled by one host-to-device copy); a draw is cast to the loop's dtype where it is
    read, as the eager path casts it, so the cast is part of the captured graph."""

    def __init__(self, generators: Sequence[torch.Generator]) -> None:
        super().__init__(generators)
        self.views: list[torch.Tensor] | None = None

    def take(self, x: torch.Tensor) -> torch.Tensor:
        if self.recording or self.views is None:
            return super().take(x)
        if self.cursor >= len(self.views) or self.views[self.cursor].shape != x.shape:
            raise RuntimeError("this sampling run draws noise the recorded run did not")
        noise = self.views[self.cursor]
        self.cursor += 1
        return noise if noise.dtype == x.dtype else noise.to(x.dtype)

    def bind(self, views: list[torch.Tensor]) -> None:
        """Move the recorded draws into `views` (same shapes, in draw order); replay from them."""
        if [v.shape for v in views] != [b.shape for b in self.buffers]:
            raise ValueError("the views do not match the recorded draws")
        for v, b in zip(views, self.buffers, strict=True):
            v.copy_(b)
        self.views, self.buffers = views, []
        self.rewind()


class _GenSlot:
    """One whole-generation key: the flat input buffer (host staging and its device copy), views
    of it for every input, the noise tape, and (maybe) the captured graph and its output.

    Layout of the flat float32 buffer, n = the bucket: x_T (n, *shape), each loop draw
    (n, *shape_k) in draw order, text (n, D), lengths (n,), guidance (n,) (LCM only)."""

    def __init__(
        self,
        key: GenerationKey,
        tape: _PackedTape,
        text_dim: int,
        guidance: bool,
        device: torch.device,
    ) -> None:
        n = key.batch
        shapes = [(n, *key.shape), *(tuple(b.shape) for b in tape.buffers), (n, text_dim), (n,)]
        if guidance:
            shapes.append((n,))
        sizes = [math.prod(s) for s in shapes]
        cuda = device.type == "cuda"
        self.host = torch.zeros(sum(sizes), dtype=torch.float32, pin_memory=cuda)
        self.dev = torch.zeros(sum(sizes), dtype=torch.float32, device=device)
        self.copied = torch.cuda.Event() if cuda else None  # the last host -> device copy

        def views(flat: torch.Tensor) -> list[torch.Tensor]:
            return [v.view(s) for v, s in zip(flat.split(sizes), shapes, strict=True)]

        host, dev = views(self.host), views(self.dev)
        k = 1 + len(tape.buffers)
        self.h_noise = host[:k]  # x_T, then the loop's draws
        self.h_text, self.h_len = host[k], host[k + 1]
        self.x_T, self.text, self.lengths = dev[0], dev[k], dev[k + 1]
        self.guidance = dev[k + 2] if guidance else None
        if guidance:
            host[k + 2].fill_(key.options.guidance)  # part of the key: written once
        for h, recorded in zip(self.h_noise[1:], tape.buffers, strict=True):
            h.copy_(recorded)  # the first request's draws (staged, as later requests' will be)
        tape.bind(dev[1:k])
        self.tape = tape
        self.out: torch.Tensor | None = None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_only = False

    def load(
        self,
        text: torch.Tensor,
        lengths: torch.Tensor,
        streams: Sequence[torch.Generator],
        draw: bool = True,
    ) -> None:
        """Stage a request's rows (the first len(streams)): x_T and each loop draw from the
        candidate's own generator, in the eager path's order; its text row and length. Rows past
        them copy row 0's text and length (their noise is left as it was: padded rows are sliced
        off and never mix with the others). Then one host -> device copy. `draw` False: the noise
        is staged already (the first request's)."""
        if self.copied is not None:
            self.copied.synchronize()  # the previous copy has left the pinned buffer
        b = len(streams)
        if draw:
            for i, g in enumerate(streams):  # x_T first, then each step's draw, as eagerly
                for buf in self.h_noise:
                    buf[i].copy_(row_noise(buf.shape[1:], g))
        self.h_text[:b].copy_(text)
        self.h_text[b:].copy_(text[:1].expand(self.h_text.shape[0] - b, -1))
        self.h_len[:b].copy_(lengths)
        self.h_len[b:].fill_(float(lengths[0]))
        self.dev.copy_(self.host, non_blocking=True)
        if self.copied is not None:
            self.copied.record()


class FastSampler:
    def __init__(
        self,
        generator: MotionGenerator,
        *,
        capture: bool | None = None,
        bf16: bool = False,
        log: Callable[..., None] | None = None,
        decode_bf16: bool | None = None,
    ) -> None:
        self.gen = generator
        cuda = generator.device.type == "cuda"
        self.capture = cuda if capture is None else capture
        self.bf16 = bf16
        if self.capture and not cuda:
            raise ValueError("CUDA graphs need a CUDA device; this generator is on the CPU")
        self.log = log or (lambda *a, **k: None)
        self.decode_bf16 = self.bf16 if decode_bf16 is None else decode_bf16
        self._slots: OrderedDict[GraphKey, _Slot] = OrderedDict()
        self._gen_slots: OrderedDict[GenerationKey, _GenSlot] = OrderedDict()
        self._text: OrderedDict[str, torch.Tensor] = OrderedDict()

    @property
    def graphs(self) -> int:
        """Keys that replay a captured graph (both scopes)."""
        slots = [*self._slots.values(), *self._gen_slots.values()]
        return sum(s.graph is not None for s in slots)

    def _loop(self, slot: _Slot, opts: SamplingOptions) -> torch.Tensor:
        device = self.gen.device.type
        with torch.no_grad(), torch.autocast(device, torch.bfloat16, enabled=self.bf16):
            x0 = self.gen.sample(slot.cond, slot.x_T, opts, generator=slot.tape)
        return x0.float()

    def sample(
        self,
        cond: Conditioning,
        x_T: torch.Tensor,
        opts: SamplingOptions,
        streams: Sequence[torch.Generator],
    ) -> torch.Tensor:
        """x0 (B, ...) for `cond` from `x_T`, the loop's noise drawn from `streams` (one each)."""
        b = x_T.shape[0]
        if len(streams) != b or len(cond) != b:
            raise ValueError(f"{len(streams)} streams and {len(cond)} conditions for {b} rows")
        n = bucket(b)
        cond, x_T, streams = _pad(cond, x_T, list(streams), n)
        key = GraphKey(opts, n, tuple(x_T.shape[1:]))
        slot = self._slots.get(key)
        if slot is None:
            return self._first(key, cond, x_T, streams)[:b].clone()
        self._slots.move_to_end(key)
        slot.load(cond, x_T, streams)
        if slot.graph is not None:
            slot.graph.replay()
            assert slot.out is not None
            return slot.out[:b].clone()
        return self._loop(slot, opts)[:b].clone()

    def _first(
        self, key: GraphKey, cond: Conditioning, x_T: torch.Tensor, streams: list
    ) -> torch.Tensor:
        """Run a new key eagerly (recording its noise tape), then capture it when asked to."""
        slot = _Slot(cond, x_T, NoiseTape(streams))
        out = self._loop(slot, key.options)  # records the tape; this request's answer
        self._slots[key] = slot
        while len(self._slots) > MAX_GRAPHS:
            self._slots.popitem(last=False)
        if self.capture:
            self._capture(key, slot)
        return out

    def _capture(self, key: GraphKey, slot: _Slot) -> None:
        def run() -> torch.Tensor:
            slot.tape.rewind()
            return self._loop(slot, key.options)

        try:
            slot.graph, slot.out = _capture_graph(run)
            self.log(
                "graph_captured", batch=key.batch, shape=list(key.shape), steps=key.options.steps
            )
        except Exception as exc:  # an op that cannot be captured: this key stays eager
            slot.graph, slot.out, slot.eager_only = None, None, True
            self.log("graph_capture_failed", batch=key.batch, reason=f"{type(exc).__name__}: {exc}")

    # -- whole generation --------------------------------------------------------------------

    def text_rows(self, prompts: Sequence[str]) -> torch.Tensor:
        """Pooled embeddings (B, D) float32 on the host, from the prompt cache (a miss is
        encoded alone, so a prompt's embedding never depends on its batch-mates)."""
        rows = []
        for p in prompts:
            hit = self._text.get(p)
            if hit is None:
                hit = self.gen.encode([p])[0].float().cpu()
                self._text[p] = hit
                while len(self._text) > TEXT_CACHE:
                    self._text.popitem(last=False)
            else:
                self._text.move_to_end(p)
            rows.append(hit)
        return torch.stack(rows)

    def generate(
        self,
        prompts: Sequence[str],
        lengths: Sequence[int] | torch.Tensor,
        opts: SamplingOptions,
        streams: Sequence[torch.Generator],
    ) -> torch.Tensor:
        """Raw features (B, max(lengths), 263) float32 on the host, as `MotionGenerator.generate`
        computes them (its denormalised output before the per-motion crop), x_T and the loop's
        noise drawn from `streams` (one each, unused before)."""
        prompts = check_prompts(prompts)
        lens = check_lengths(lengths.cpu() if isinstance(lengths, torch.Tensor) else list(lengths))
        b = len(prompts)
        if lens.numel() != b or len(streams) != b:
            raise ValueError(
                f"{len(prompts)} prompts, {lens.numel()} lengths, {len(streams)} streams"
            )
        n = bucket(b)
        frames = int(lens.max())
        shape = tuple(self.gen.backbone.noise_shape(lens)[1:])
        decoded = frames  # MDM: the frames of x_T, part of its shape already
        if isinstance(self.gen.backbone, MLD):  # frames past every length decode to zeros
            decoded = min(MAX_FRAMES, -(-frames // FRAME_BUCKET) * FRAME_BUCKET)
        key = GenerationKey(opts, n, shape, decoded)
        text = self.text_rows(prompts)
        slot = self._gen_slots.get(key)
        if slot is None:
            out = self._first_generation(key, text, lens, list(streams))
        else:
            self._gen_slots.move_to_end(key)
            slot.load(text, lens, streams)
            if slot.graph is not None:
                slot.graph.replay()
                assert slot.out is not None
                out = slot.out
            else:
                slot.tape.rewind()
                out = self._generation(
                    key, slot.x_T, slot.text, slot.lengths, slot.guidance, slot.tape
                )
        out = out[:b, :frames]
        return out.cpu() if out.is_cuda else out.clone()

    def _generation(
        self,
        key: GenerationKey,
        x_T: torch.Tensor,
        text: torch.Tensor,
        lengths: torch.Tensor,
        guidance: torch.Tensor | None,
        tape: NoiseTape,
    ) -> torch.Tensor:
        """Loop, decoder and denormalisation: what a whole-generation graph captures. Every input
        is a device tensor (lengths may be float: exact integers, cast here, in the graph)."""
        backbone = self.gen.backbone
        device = self.gen.device.type
        lengths = lengths.long()
        cond = Conditioning(text=text, lengths=lengths, guidance=guidance)
        with torch.no_grad():
            with torch.autocast(device, torch.bfloat16, enabled=self.bf16):
                x0 = self.gen.sample(cond, x_T, key.options, generator=tape)
            with torch.autocast(device, torch.bfloat16, enabled=self.decode_bf16):
                if isinstance(backbone, MLD):  # frames given: no read-back of the lengths
                    feats = backbone.decode(
                        x0 if self.decode_bf16 else x0.float(), lengths, key.frames
                    )
                else:
                    feats = backbone.decode(x0, lengths)
            return backbone.denormalize(feats.float())

    def _first_generation(
        self, key: GenerationKey, text: torch.Tensor, lens: torch.Tensor, streams: list
    ) -> torch.Tensor:
        """A new key: run eagerly from the candidates' generators (recording the tape; this is
        the request's answer), lay out the key's buffers, then capture when asked to."""
        n, b = key.batch, len(streams)
        streams = streams + [torch.Generator().manual_seed(2**31 + i) for i in range(n - b)]
        pad = n - b
        text_n = torch.cat([text, text[:1].expand(pad, -1)])
        lens_n = torch.cat([lens, lens[:1].expand(pad)])
        x_T = torch.stack([row_noise(key.shape, g) for g in streams])  # the streams' first draws
        dev = self.gen.device
        guidance = None
        if isinstance(self.gen.backbone, LCM):  # w goes into the guidance embedding
            guidance = torch.full((n,), key.options.guidance, device=dev)
        tape = _PackedTape(streams)
        out = self._generation(key, x_T.to(dev), text_n.to(dev), lens_n.to(dev), guidance, tape)
        slot = _GenSlot(key, tape, text.shape[1], guidance is not None, dev)
        slot.h_noise[0].copy_(x_T)
        slot.load(text_n, lens_n, streams, draw=False)  # the streams are spent: stage what ran
        self._gen_slots[key] = slot
        while len(self._gen_slots) > MAX_GRAPHS:
            self._gen_slots.popitem(last=False)
        if self.capture:
            self._capture_generation(key, slot)
        return out

    def _capture_generation(self, key: GenerationKey, slot: _GenSlot) -> None:
        if self.gen.backbone.training:  # dropout would draw inside the graph
            slot.eager_only = True
            self.log("graph_capture_skipped", reason="the backbone is in training mode")
            return

        def run() -> torch.Tensor:
            slot.tape.rewind()
            return self._generation(
                key, slot.x_T, slot.text, slot.lengths, slot.guidance, slot.tape
            )

        try:
            slot.graph, slot.out = _capture_graph(run)
            self.log(
                "graph_captured",
                scope="generation",
                batch=key.batch,
                shape=list(key.shape),
                frames=key.frames,
                steps=key.options.steps,
            )
        except Exception as exc:  # an op that cannot be captured: this key stays eager
            slot.graph, slot.out, slot.eager_only = None, None, True
            self.log(
                "graph_capture_failed",
                scope="generation",
                batch=key.batch,
                reason=f"{type(exc).__name__}: {exc}",
            )


def _capture_graph(run: Callable[[], torch.Tensor]) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
    """Capture `run` (which reads and writes only static buffers) as a CUDA graph, after two
    warm-up runs on a side stream as capture requires; returns the graph and its output tensor."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            run()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = run()
    return graph, out


def _pad(
    cond: Conditioning, x_T: torch.Tensor, streams: list, n: int
) -> tuple[Conditioning, torch.Tensor, list]:
    """Pad the batch to n rows with copies of row 0 (their own throwaway noise streams)."""
    extra = n - x_T.shape[0]
    if extra == 0:
        return cond, x_T, streams

    def grow(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else torch.cat([t, t[:1].expand(extra, *t.shape[1:])])

    padded = replace(
        cond,
        text=grow(cond.text),
        lengths=grow(cond.lengths),
        use_text=grow(cond.use_text),
        guidance=grow(cond.guidance),
    )
    fillers = [torch.Generator().manual_seed(2**31 + i) for i in range(extra)]
    return padded, grow(x_T), streams + fillers
