"""Measure the memory a method keeps for backward: exact saved bytes, and CUDA peak on a GPU.

    meter = SavedTensorMeter(exclude=model.parameters())
    with meter:
        run_method(trajectory, config)
    meter.peak_bytes      # most bytes saved for backward alive at once (unique storages)
    meter.cuda_peak_bytes # on CUDA (`device`, default the current one): peak allocated above start

Every tensor autograd saves goes through `torch.autograd.graph.saved_tensors_hooks`; the meter
counts each storage once while any saved reference to it is alive (a weak finalizer on the packed
handle releases it when the graph is freed), so the figure is the live activation memory of the
graphs, independent of the allocator. Parameters (and anything in `exclude`) are not counted:
they exist with or without a graph.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

import torch


class _Handle:
    __slots__ = ("__weakref__", "tensor")

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


class SavedTensorMeter:
    def __init__(
        self, exclude: Iterable[torch.Tensor] = (), device: torch.device | str | None = None
    ) -> None:
        # The CUDA device whose peak is recorded: `device` if it is a CUDA device, the current
        # CUDA device if `device` is None and CUDA is available; a CPU `device` records none.
        self._cuda: torch.device | None = None
        if device is not None and torch.device(device).type == "cuda":
            self._cuda = torch.device(device)
        elif device is None and torch.cuda.is_available():
            self._cuda = torch.device("cuda", torch.cuda.current_device())
        self._exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self._count: dict[int, int] = {}
        self._size: dict[int, int] = {}
        self.live_bytes = 0
        self.peak_bytes = 0
        self.cuda_peak_bytes: int | None = None
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _release(self, key: int) -> None:
        self._count[key] -= 1
        if self._count[key] == 0:
            del self._count[key]
            self.live_bytes -= self._size.pop(key)

    def _pack(self, tensor: torch.Tensor):
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        handle = _Handle(tensor)
        if key in self._exclude or storage.nbytes() == 0:
            return handle
        if key not in self._count:
            self._count[key] = 0
            self._size[key] = storage.nbytes()
            self.live_bytes += storage.nbytes()
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        self._count[key] += 1
        weakref.finalize(handle, self._release, key)
        return handle

    @staticmethod
    def _unpack(handle: _Handle) -> torch.Tensor:
        return handle.tensor

    def __enter__(self) -> SavedTensorMeter:
        if self._cuda is not None:
            torch.cuda.synchronize(self._cuda)
            torch.cuda.reset_peak_memory_stats(self._cuda)
            self._cuda_start = torch.cuda.memory_allocated(self._cuda)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
        if self._cuda is not None:
            torch.cuda.synchronize(self._cuda)
            self.cuda_peak_bytes = torch.cuda.max_memory_allocated(self._cuda) - self._cuda_start
