"""Training batches drawn on the training device from the whole split held there.

    source = DeviceBatches(split, device="cuda")
    batch = source.draw(64, rng)          # == sample_batch(split, 64, rng) for the same rng

On a GPU, drawing and collating batches on the CPU and copying them over starves the model (the
H200 run trained at about 20 steps/s at batch 256 with the GPU mostly idle). Here the split's
normalised features live on the device as one padded tensor (N, T_max, 263) (about 1.6 GB for the
built-in corpus); a batch makes its random choices with numpy in exactly `sample_batch`'s order
(sample, then per sample its caption, crop length and offset), so it is the same batch the CPU
path draws from the same generator, and the frames are gathered with one indexing operation.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.humanml3d import Batch, HumanML3DSplit, crop_length
from ..motion.features import FEATURE_DIM


class DeviceBatches:
    def __init__(self, split: HumanML3DSplit, device: torch.device | str = "cpu") -> None:
        c = split.config
        self.split = split
        self.max_frames = c.max_frames
        self.unit_length = c.unit_length
        self.max_text_tokens = c.max_text_tokens
        self.lengths = np.array([s.length for s in split.samples])
        t_max = max(int(self.lengths.max()), self.max_frames)
        data = np.zeros((len(split.samples), t_max, FEATURE_DIM), dtype=np.float32)
        for i, sample in enumerate(split.samples):
            data[i, : sample.length] = (sample.features - split.mean) / split.std
        self.device = torch.device(device)
        self.data = torch.from_numpy(data).to(self.device)  # (N, T_max, 263) normalised
        self.frames = torch.arange(self.max_frames, device=self.device)  # (F,)

    def draw(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """`batch_size` samples with replacement, as `sample_batch` draws them, on the device."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        samples = self.split.samples
        indices = rng.integers(len(samples), size=batch_size)
        texts, tokens, ids, lengths, offsets = [], [], [], [], []
        for i in indices:
            sample = samples[int(i)]
            caption = sample.captions[int(rng.integers(len(sample.captions)))]
            length = crop_length(
                sample.length, rng, max_frames=self.max_frames, unit_length=self.unit_length
            )
            offsets.append(int(rng.integers(sample.length - length + 1)))
            lengths.append(length)
            texts.append(caption.text)
            tokens.append(list(caption.tokens[: self.max_text_tokens]))
            ids.append(sample.id)
        dev = self.device
        rows = torch.as_tensor(indices, device=dev)
        length_t = torch.tensor(lengths, dtype=torch.int64)
        mask = self.frames[None] < length_t.to(dev)[:, None]  # (B, F)
        frame_index = torch.tensor(offsets, device=dev)[:, None] + self.frames[None]  # (B, F)
        frame_index = frame_index.clamp(max=self.data.shape[1] - 1)
        features = self.data[rows[:, None], frame_index]  # (B, F, 263)
        features = torch.where(mask[..., None], features, 0.0)
        return Batch(features, length_t.to(dev), mask, texts, tokens, ids)


__all__ = ["DeviceBatches"]
