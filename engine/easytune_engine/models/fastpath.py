"""Generation's fast path on CUDA: the sampling loop in bf16, captured once as a CUDA graph per
(sampling options, batch bucket, noise shape) and replayed.

    fast = FastSampler(generator)                 # capture=None: on CUDA devices only
    x0 = fast.sample(cond, x_T, opts, streams)    # what generator.sample(...) returns, in bf16

Small motion models are launch-bound on a GPU: an eager 50-step loop spends most of its time
launching kernels (../shared/docs/gpu.md measured 150 ms eager against 19.9 ms as a graph). A graph
needs fixed tensors, so every input lives in a static buffer per key: x_T, the text embedding, the
lengths, the guidance scale, and the loop's noise (a `NoiseTape` drawn from the candidates' own
generators, so a candidate's motion is the one the eager path gives for its seed, up to bf16).
Batches are padded to a power of two (copies of row 0, sliced off after), so a handful of graphs
serve every batch size. The first request of a key runs the loop eagerly (that run records the
noise tape and warms up), then the loop is captured; a capture that fails leaves that key on the
eager path, logged once. Without capture (CPU, or `capture=False`) the same static-buffer code
runs eagerly, which is how the bookkeeping is tested without a GPU.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from ..diffusion.sampling import Conditioning
from ..diffusion.schedulers import NoiseTape
from .pipeline import MAX_CANDIDATES, MotionGenerator, SamplingOptions

MAX_GRAPHS = 16  # keys kept captured (least recently used go first)


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


class FastSampler:
    def __init__(
        self,
        generator: MotionGenerator,
        *,
        capture: bool | None = None,
        bf16: bool | None = None,
        log: Callable[..., None] | None = None,
    ) -> None:
        self.gen = generator
        cuda = generator.device.type == "cuda"
        self.capture = cuda if capture is None else capture
        self.bf16 = cuda if bf16 is None else bf16
        if self.capture and not cuda:
            raise ValueError("CUDA graphs need a CUDA device; this generator is on the CPU")
        self.log = log or (lambda *a, **k: None)
        self._slots: OrderedDict[GraphKey, _Slot] = OrderedDict()

    @property
    def graphs(self) -> int:
        """Keys that replay a captured graph."""
        return sum(s.graph is not None for s in self._slots.values())

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
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up on a side stream, as capture requires
                for _ in range(2):
                    slot.tape.rewind()
                    self._loop(slot, key.options)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            slot.tape.rewind()
            with torch.cuda.graph(graph):
                slot.out = self._loop(slot, key.options)
            slot.graph = graph
            self.log(
                "graph_captured", batch=key.batch, shape=list(key.shape), steps=key.options.steps
            )
        except Exception as exc:  # an op that cannot be captured: this key stays eager
            slot.graph, slot.out, slot.eager_only = None, None, True
            self.log("graph_capture_failed", batch=key.batch, reason=f"{type(exc).__name__}: {exc}")


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
