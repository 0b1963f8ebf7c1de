"""DeviceBatches: the split held on the training device draws exactly `sample_batch`'s batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from easytune_engine.data.humanml3d import load_split, sample_batch
from easytune_engine.training.device_batches import DeviceBatches


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_same_batches_as_sample_batch(tiny_corpus: Path, seed: int) -> None:
    split = load_split(tiny_corpus, "train")
    source = DeviceBatches(split)
    a = source.draw(16, np.random.default_rng(seed))
    b = sample_batch(split, 16, np.random.default_rng(seed), mean=split.mean, std=split.std)
    assert torch.equal(a.features, b.features) and torch.equal(a.lengths, b.lengths)
    assert torch.equal(a.mask, b.mask)
    assert (a.texts, a.tokens, a.ids) == (b.texts, b.tokens, b.ids)
    assert not a.features[~a.mask].any()  # zero after each length


def test_bad_batch_size_is_refused(tiny_corpus: Path) -> None:
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        DeviceBatches(load_split(tiny_corpus, "train")).draw(0, np.random.default_rng(0))
