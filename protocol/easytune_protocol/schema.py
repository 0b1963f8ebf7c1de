"""Field types of the message catalogue and the validator that checks a value against them.

A message body is a `Record`: named `Field`s, each with a type (`Str`, `Int`, `Float`, `Bool`,
`Array`, `ListOf`, `MapOf`, `Record`), required or optional, with its limits. `Record.check`
returns a new dict holding every declared field (defaults filled in, optional ones absent as None)
and drops unknown fields, so handlers see exactly the catalogue. The same check runs when
encoding (so a client cannot send an invalid message) and when decoding.

Arrays are not converted here: `Array.check` hands the value to the codec's `ArrayHandler`
(ndarray -> wire reference when encoding, wire reference -> ndarray when decoding) and checks the
dtype and shape of the ndarray. Shape entries that are names ("T") must agree across the arrays
of one record and may be bound to a range by `Record.dims`.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .errors import ErrorCode, ProtocolError


class ArrayHandler(Protocol):
    """Converts between ndarrays and their wire references (implemented by the codec)."""

    def array(self, value: Any, spec: Array, path: str) -> tuple[np.ndarray, Any]:
        """Returns (the ndarray to check, the value to put in the checked body)."""
        ...


def _fail(path: str, message: str, code: ErrorCode = ErrorCode.INVALID_FIELD) -> ProtocolError:
    return ProtocolError(code, f"{path}: {message}", field=path)


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, np.ndarray) else f"array{value.shape}"
    return text if len(text) <= 60 else text[:57] + "..."


class Spec:
    """A field type."""

    def check(self, value: Any, path: str, arrays: ArrayHandler, dims: dict[str, int]) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Str(Spec):
    max_len: int = 64
    min_len: int = 1
    choices: tuple[str, ...] = ()
    pattern: str | None = None  # full match, e.g. names that cannot be paths
    visible: bool = False  # needs at least one character that is not whitespace or control

    def check(self, value: Any, path: str, arrays: ArrayHandler, dims: dict[str, int]) -> str:
        if not isinstance(value, str):
            raise _fail(path, f"must be a string ({self.describe()}), got {_show(value)}")
        if self.choices:
            if value not in self.choices:
                raise _fail(path, f"must be one of {', '.join(self.choices)}; got {_show(value)}")
            return value
        if not self.min_len <= len(value) <= self.max_len:
            raise _fail(
                path,
                f"must have {self.min_len}..{self.max_len} characters, got {len(value)}",
            )
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise _fail(path, f"must match {self.pattern}, got {_show(value)}")
        if self.visible and not value.strip():
            raise _fail(path, "must contain visible characters, got only whitespace")
        return value

    def describe(self) -> str:
        if self.choices:
            return " \\| ".join(f'"{c}"' for c in self.choices)
        text = f"str {self.min_len}..{self.max_len} chars"
        return text + (f" `{self.pattern}`" if self.pattern else "")


@dataclass(frozen=True)
class Int(Spec):
    lo: int = 0
    hi: int = 2**31 - 1
    dim: str | None = None  # also binds this named shape entry of the record's arrays

    def check(self, value: Any, path: str, arrays: ArrayHandler, dims: dict[str, int]) -> int:
        # bool is an int in Python; on the wire true/false are not numbers.
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise _fail(path, f"must be an integer in {self.lo}..{self.hi}, got {_show(value)}")
        if not self.lo <= value <= self.hi:
            raise _fail(path, f"must be an integer in {self.lo}..{self.hi}, got {value}")
        if self.dim is not None and dims.setdefault(self.dim, int(value)) != value:
            raise _fail(path, f"is {value} but the arrays have {self.dim} = {dims[self.dim]}")
        return int(value)

    def describe(self) -> str:
        return f"int {self.lo}..{self.hi}"


@dataclass(frozen=True)
class Float(Spec):
    lo: float = -math.inf
    hi: float = math.inf

    def check(self, value: Any, path: str, arrays: ArrayHandler, dims: dict[str, int]) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise _fail(path, f"must be a number ({self.describe()}), got {_show(value)}")
        x = float(value)
        if not math.isfinite(x) or not self.lo <= x <= self.hi:
            raise _fail(path, f"must be a finite number ({self.describe()}), got {x}")
        return x

    def describe(self) -> str:
        lo = "" if self.lo == -math.inf else f"{self.lo:g}"
        hi = "" if self.hi == math.inf else f"{self.hi:g}"
        return f"float {lo}..{hi}" if lo or hi else "float"


@dataclass(frozen=True)
class Bool(Spec):
    def check(self, value: Any, path: str, arrays: ArrayHandler, dims: dict[str, int]) -> bool:
        if not isinstance(value, bool | np.bool_):
            raise _fail(path, f"must be true or false, got {_show(value)}")
        return bool(value)

    def describe(self) -> str:
        return "bool"


@dataclass(frozen=True)
class Array(Spec):
    shape: tuple[int | str, ...]  # ints are fixed sizes, names ("T") bind within a record
    dtypes: tuple[str, ...] = ("float32",)

    def check(
        self, value: Any, path: str, arrays: ArrayHandler, dims: dict[str, int]
    ) -> np.ndarray | Any:
        arr, out = arrays.array(value, self, path)
        if arr.dtype.name not in self.dtypes:
            raise _fail(
                path,
                f"dtype must be {' or '.join(self.dtypes)}, got {arr.dtype}",
                ErrorCode.BAD_ARRAY,
            )
        if arr.ndim != len(self.shape):
            raise _fail(
                path, f"must have shape {self.show_shape()}, got {arr.shape}", ErrorCode.BAD_ARRAY
            )
        for axis, (want, got) in enumerate(zip(self.shape, arr.shape, strict=True)):
            if isinstance(want, str):
                bound = dims.setdefault(want, got)
                if bound != got:
                    raise _fail(
                        path,
                        f"axis {axis} ({want}) is {got} but {want} = {bound} elsewhere in the "
                        f"record; shape must be {self.show_shape()}",
                        ErrorCode.BAD_ARRAY,
                    )
            elif want != got:
                raise _fail(
                    path,
                    f"must have shape {self.show_shape()}, got {arr.shape}",
                    ErrorCode.BAD_ARRAY,
                )
        return out

    def show_shape(self) -> str:
        return (
            "("
            + ", ".join(str(s) for s in self.shape)
            + ("," if len(self.shape) == 1 else "")
            + ")"
        )

    def describe(self) -> str:
        return f"array {self.show_shape()} {' or '.join(self.dtypes)}"


@dataclass(frozen=True)
class ListOf(Spec):
    item: Spec
    max_items: int
    min_items: int = 0
    unique: bool = False

    def check(self, value: Any, path: str, arrays: ArrayHandler, dims: dict[str, int]) -> list:
        if not isinstance(value, list | tuple):
            raise _fail(path, f"must be a list ({self.describe()}), got {_show(value)}")
        if not self.min_items <= len(value) <= self.max_items:
            raise _fail(
                path, f"must have {self.min_items}..{self.max_items} items, got {len(value)}"
            )
        out = [self.item.check(v, f"{path}[{i}]", arrays, dims) for i, v in enumerate(value)]
        if self.unique and len(set(out)) != len(out):
            dupes = sorted({v for v in out if out.count(v) > 1})
            raise _fail(path, f"items must be unique; listed more than once: {dupes[:5]}")
        return out

    def describe(self) -> str:
        return f"list of {self.min_items}..{self.max_items} × {self.item.describe()}"


@dataclass(frozen=True)
class MapOf(Spec):
    value: Spec
    max_items: int = 32
    key: Str = Str(max_len=64)

    def check(self, value: Any, path: str, arrays: ArrayHandler, dims: dict[str, int]) -> dict:
        if not isinstance(value, Mapping):
            raise _fail(path, f"must be a map ({self.describe()}), got {_show(value)}")
        if len(value) > self.max_items:
            raise _fail(path, f"must have at most {self.max_items} entries, got {len(value)}")
        return {
            self.key.check(k, f"{path} key", arrays, dims): self.value.check(
                v, f"{path}[{k!r}]", arrays, dims
            )
            for k, v in value.items()
        }

    def describe(self) -> str:
        return f"map of ≤ {self.max_items} × (str → {self.value.describe()})"


@dataclass(frozen=True)
class Field:
    name: str
    spec: Spec
    required: bool = True
    default: Any = None  # filled in when an optional field is absent (or nil)
    doc: str = ""


@dataclass(frozen=True)
class Record(Spec):
    fields: tuple[Field, ...] = ()
    dims: tuple[tuple[str, int, int], ...] = ()  # (name, lo, hi) ranges of named shape entries
    name: str = ""  # shown in the document for nested records
    doc: str = ""

    def check(self, value: Any, path: str, arrays: ArrayHandler, dims: dict[str, int]) -> dict:
        if not isinstance(value, Mapping):
            raise _fail(path, f"must be a map with fields {self.names()}, got {_show(value)}")
        own: dict[str, int] = {}  # named dims are scoped to one record
        out: dict[str, Any] = {}
        for f in self.fields:
            v = value.get(f.name)
            sub = f"{path}.{f.name}"
            if v is None:
                if f.required:
                    raise _fail(sub, f"is required ({f.spec.describe()})")
                out[f.name] = copy.deepcopy(f.default)  # never share a mutable default
                continue
            out[f.name] = f.spec.check(v, sub, arrays, own)
        for name, lo, hi in self.dims:
            if name in own and not lo <= own[name] <= hi:
                raise _fail(
                    path,
                    f"{name} (frames) must be in {lo}..{hi}, got {own[name]}",
                    ErrorCode.BAD_ARRAY,
                )
        return out

    def names(self) -> str:
        return ", ".join(f.name for f in self.fields) or "(none)"

    def describe(self) -> str:
        return self.name or "map"


def no_arrays() -> ArrayHandler:
    """An ArrayHandler for records that hold no arrays (headers)."""
    return _NoArrays()


@dataclass(frozen=True)
class _NoArrays:
    def array(self, value: Any, spec: Array, path: str) -> tuple[np.ndarray, Any]:
        raise _fail(path, "arrays are not allowed here", ErrorCode.BAD_ARRAY)


__all__ = [
    "Array",
    "ArrayHandler",
    "Bool",
    "Field",
    "Float",
    "Int",
    "ListOf",
    "MapOf",
    "Record",
    "Spec",
    "Str",
    "no_arrays",
]
