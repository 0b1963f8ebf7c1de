"""Several generate requests in one sampling call.

    batch = take_batch(first, pending)        # queued requests that can share first's call
    features = sample_batch(batch, gen)       # per request, its candidates' (T, 263) features

Requests share a call when they use the same weights, sampler, steps, guidance and length (so every
row has the same shape and no padding enters the batch), up to the generator's row limit. Each
candidate keeps its own random stream (`MotionGenerator.generators(n, seed)`), so a request gets
the same motions whether it ran alone or in a batch: same seed, same motions (to float32 rounding:
the matrix products of a bigger batch may sum in another order).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..models.base import check_lengths
from ..models.fastpath import FastSampler
from ..models.pipeline import MAX_CANDIDATES as MAX_ROWS
from ..models.pipeline import MotionGenerator, SamplingOptions
from ..text.encoder import check_prompts
from .models import ServedModel


@dataclass(frozen=True)
class GenerateJob:
    """A checked generate request waiting for the worker."""

    peer: bytes  # the ROUTER identity frame of the client
    header: Any  # the request's easytune_protocol Header
    body: dict[str, Any]  # the decoded, checked request body
    model: ServedModel
    options: SamplingOptions
    seed: int
    received: float  # time.perf_counter() when the request arrived
    generator: MotionGenerator | None  # the active weights when it arrived (None: an adapter,
    # loaded by the worker, off the socket thread)
    checkpoint: str | None  # the weights' registered name (None: the model's base weights)
    weights_sha256: str | None  # content hash of those weights' file


def _key(job: GenerateJob) -> tuple:
    return (job.model.name, job.checkpoint, job.options, job.body["length"])


def take_batch(first: GenerateJob, pending: deque[GenerateJob]) -> list[GenerateJob]:
    """`first` and the pending requests that can share its sampling call (removed from
    `pending`; the others keep their order)."""
    batch, rows, keep = [first], first.body["candidates"], deque()
    while pending:
        job = pending.popleft()
        n = job.body["candidates"]
        if _key(job) == _key(first) and rows + n <= MAX_ROWS:
            batch.append(job)
            rows += n
        else:
            keep.append(job)
    pending.extend(keep)
    return batch


def sample_batch(
    batch: Sequence[GenerateJob],
    gen: MotionGenerator,
    fast: FastSampler | None = None,
    texts: Sequence[str] | None = None,
) -> list[list[np.ndarray]]:
    """Sample every candidate of `batch` in one call (MotionGenerator.generate's steps, with each
    request's own seed); returns, per request, its candidates' raw (length, 263) features.
    `gen`: the batch's weights; `fast`: their CUDA fast path (None: eager); both give a seed's
    motion (the fast path: CUDA graphs, fp32 unless bf16 was asked for, its text from a
    per-prompt cache). `texts`: what the model reads per request (the rewritten prompts; None:
    each request's prompt as typed)."""
    first = batch[0]
    opts = first.options
    prompts: list[str] = []
    streams: list[torch.Generator] = []
    texts = [job.body["prompt"] for job in batch] if texts is None else texts
    for job, text in zip(batch, texts, strict=True):
        n = job.body["candidates"]
        prompts += [text] * n
        streams += gen.generators(n, job.seed)
    prompts = check_prompts(prompts)
    lengths = check_lengths([first.body["length"]] * len(prompts))
    with torch.no_grad():
        if fast is not None:  # prompt cache, then one graph: loop, decoder, denormalisation
            raw = fast.generate(prompts, lengths, opts, streams).numpy().astype(np.float32)
        else:
            cond = gen.conditioning(prompts, lengths, opts)
            x0 = gen.sample(cond, gen.initial_noise(lengths, streams), opts, generator=streams)
            feats = gen.backbone.decode(x0, cond.lengths)
            raw = gen.backbone.denormalize(feats).cpu().numpy().astype(np.float32)
    out, row = [], 0
    for job in batch:
        n = job.body["candidates"]
        out.append([raw[i, : first.body["length"]] for i in range(row, row + n)])
        row += n
    return out
