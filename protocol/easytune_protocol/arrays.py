"""Arrays on the wire: a reference ``[dtype, shape, frame]`` in the body, the raw bytes in a frame.

    ref = ["float32", [120, 22, 3], 2]    # frames[2] holds 120·22·3·4 bytes, C order, little-endian

Only the dtypes in `DTYPES` travel (never object arrays, so nothing is ever unpickled). Decoding
checks, before `numpy.frombuffer` sees the bytes: the dtype is on the allow-list, the shape is a
list of non-negative ints with at most `MAX_NDIM` entries and `MAX_ELEMENTS` elements in all,
and prod(shape) · itemsize == len(frame). Decoded arrays are read-only views of the frame (no
copy); call ``.copy()`` to modify one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import ErrorCode, ProtocolError

# wire name -> little-endian numpy dtype; the wire name is numpy's `dtype.name`
DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
    "uint8": np.dtype("u1"),
    "bool": np.dtype("?"),
}
MAX_NDIM = 8
MAX_ELEMENTS = 1 << 22  # 4,194,304 elements (16 MiB of float32) in one array


def _bad(path: str, message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_ARRAY, f"{path}: {message}", field=path)


def to_wire(arr: np.ndarray, path: str) -> tuple[str, list[int], bytes | memoryview]:
    """(dtype name, shape, C-contiguous little-endian bytes) of an array about to be sent."""
    if not isinstance(arr, np.ndarray):
        raise _bad(path, f"must be a numpy array, got {type(arr).__name__}")
    name = arr.dtype.name
    if name not in DTYPES:
        raise _bad(path, f"dtype {arr.dtype} cannot be sent; allowed: {', '.join(DTYPES)}")
    if arr.ndim > MAX_NDIM or arr.size > MAX_ELEMENTS:
        raise _bad(
            path, f"shape {arr.shape} is too large (≤ {MAX_NDIM} axes, ≤ {MAX_ELEMENTS} elements)"
        )
    wire = np.ascontiguousarray(arr, dtype=DTYPES[name])  # copies only if needed
    return name, [int(n) for n in arr.shape], memoryview(wire).cast("B")


def from_wire(ref: Any, frames: Sequence[Any], path: str) -> tuple[np.ndarray, int]:
    """The array a reference points at, and the frame index it used.

    `frames` is the whole message (header, body, buffers): valid indices are 2..len(frames)-1.
    """
    if not (isinstance(ref, list | tuple) and len(ref) == 3):
        raise _bad(path, f"must be an array reference [dtype, shape, frame], got {ref!r:.60}")
    name, shape, index = ref
    if not isinstance(name, str) or name not in DTYPES:
        raise _bad(path, f"dtype {name!r:.40} is not allowed; allowed: {', '.join(DTYPES)}")
    if not isinstance(shape, list | tuple) or len(shape) > MAX_NDIM:
        raise _bad(path, f"shape must be a list of at most {MAX_NDIM} ints, got {shape!r:.60}")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise _bad(path, f"shape entries must be non-negative ints, got {shape!r:.60}")
    count = math.prod(shape)  # Python ints: a huge declared shape cannot overflow
    if count > MAX_ELEMENTS:
        raise _bad(path, f"shape {tuple(shape)} has {count} elements, at most {MAX_ELEMENTS}")
    if isinstance(index, bool) or not isinstance(index, int) or not 2 <= index < len(frames):
        raise _bad(path, f"frame index must be an int in 2..{len(frames) - 1}, got {index!r:.40}")
    dtype = DTYPES[name]
    buf = memoryview(frames[index])
    if buf.nbytes != count * dtype.itemsize:
        raise _bad(
            path,
            f"frame {index} has {buf.nbytes} bytes but {name} {tuple(shape)} needs "
            f"{count} × {dtype.itemsize} = {count * dtype.itemsize}",
        )
    arr = np.frombuffer(buf.cast("B") if buf.ndim != 1 or buf.format != "B" else buf, dtype=dtype)
    arr = arr.reshape(shape)
    arr.flags.writeable = False
    if name == "bool" and count and arr.view(np.uint8).max() > 1:
        raise _bad(path, "bool arrays must hold only bytes 0 and 1")
    return arr, index
