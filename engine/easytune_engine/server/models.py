"""The backbones a server generates with, by name, the weights each serves, their `model` records.

    registry = ModelRegistry.load(["mld", "/path/model.safetensors"], device="cpu")
    served = registry.get(None)           # the default (first) model
    served.generator                      # what generate uses now: shipped or an active checkpoint
    registry.weights(book, "mld-ft-1")    # a registered checkpoint as a generator (cached)
    registry.serve("mld", "mld-ft-1", gen) # switch what generate uses (activate, rollback)
    served.record()                       # the protocol's `model` record

A shipped backbone is named after itself; a checkpoint after its architecture ('mld'), with a
suffix ('mld-2') when that name is taken. Fine-tuned checkpoints (full weights or LoRA adapters
on their parent's weights) come from the checkpoint registry (`checkpoints.CheckpointBook`).
The socket thread and the job thread both ask for weights: the cache is behind a lock, and
swapping `generator` is one attribute assignment (a batch already sampling keeps the old one).
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from easytune_protocol import ErrorCode, ProtocolError

from ..checkpoint import CheckpointError
from ..models.pipeline import MAX_STEPS, MotionGenerator, SamplingOptions
from .checkpoints import REWARD, CheckpointBook

CACHED_WEIGHTS = 4  # checkpoints kept loaded besides the active ones


@dataclass
class ServedModel:
    name: str
    base: MotionGenerator  # the weights it was started with (shipped or --model path)
    source: str  # the --model value it was loaded from
    generator: MotionGenerator = field(init=False)  # what generate uses now
    checkpoint: str | None = None  # the active registered checkpoint (None: base)
    adapters: tuple[str, ...] = ()  # registered LoRA adapters for this model
    precision: str = "fp32"  # the network's precision in the eager loop (`serve --precision`)

    def __post_init__(self) -> None:
        self.generator = self.base

    @property
    def kind(self) -> str:
        return self.generator.backbone.kind

    @property
    def checkpoint_sha256(self) -> str | None:
        """Of the base weights' file."""
        return getattr(self.base.backbone, "checkpoint_sha256", None)

    @property
    def max_steps(self) -> int:
        return int(getattr(self.generator.backbone.config, "origin_steps", MAX_STEPS))

    def record(self) -> dict[str, Any]:
        d = self.generator.backbone.sampling
        out = {
            "name": self.name,
            "kind": self.kind,
            "sampler": d.sampler,
            "steps": d.steps,
            "max_steps": self.max_steps,
            "guidance": float(d.guidance),
            "precision": self.precision,
            "adapters": list(self.adapters),
        }
        if self.checkpoint is not None:
            out["checkpoint"] = self.checkpoint
        return out

    def options(
        self, steps: int | None, guidance: float | None, sampler: str | None
    ) -> SamplingOptions:
        """Resolved sampling settings, or invalid_field saying what this model accepts."""
        try:
            return self.generator.options(steps, guidance, sampler, precision=self.precision)
        except ValueError as exc:
            field = next(
                (f for f in ("sampler", "steps", "guidance") if str(exc).startswith(f)), None
            )
            field = field or ("sampler" if "sampler" in str(exc) else "steps")
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                f"body.{field}: {exc} (model {self.name!r})",
                field=f"body.{field}",
            ) from None


class ModelRegistry:
    def __init__(self, models: Sequence[ServedModel]) -> None:
        if not models:
            raise ValueError("a registry needs at least one model")
        self.models = {m.name: m for m in models}
        self.default = models[0].name
        self._cache: OrderedDict[str, MotionGenerator] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, sources: Sequence[str], device: str, precision: str = "fp32") -> ModelRegistry:
        """Load every --model value (a shipped name or a checkpoint path) onto `device`, each
        sampled with its network at `precision`."""
        served: list[ServedModel] = []
        for source in sources:
            target: str | Path = source
            if "/" in source or source.endswith(".safetensors") or Path(source).is_file():
                target = Path(source).expanduser()
            gen = MotionGenerator.load(target, device=device)
            name, i = gen.backbone.kind, 1
            while name in {m.name for m in served}:
                i += 1
                name = f"{gen.backbone.kind}-{i}"
            served.append(ServedModel(name, gen, source, precision=precision))
        return cls(served)

    def get(self, name: str | None) -> ServedModel:
        """The named model (None: the default), or not_found listing the valid names."""
        model = self.models.get(name or self.default)
        if model is None:
            raise ProtocolError(
                ErrorCode.NOT_FOUND,
                f"body.backbone: no model {name!r} in this engine; valid: {', '.join(self.models)}",
                field="body.backbone",
            )
        return model

    def records(self) -> list[dict[str, Any]]:
        return [m.record() for m in self.models.values()]

    # -- registered checkpoints ------------------------------------------------------------------

    def weights(self, book: CheckpointBook, name: str | None, model: str) -> MotionGenerator:
        """The generator of checkpoint `name` of `model` (None: its base weights), loaded once
        and cached; refused (ProtocolError) when the file is gone, damaged or does not fit."""
        served = self.get(model)
        if name is None:
            return served.base
        with self._lock:
            if name in self._cache:
                self._cache.move_to_end(name)
                return self._cache[name]
        ckpt = book.require(name)
        if ckpt.backbone != served.name:
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                f"checkpoint {name!r} belongs to {ckpt.backbone!r}, not to model {model!r}",
                field="body.name",
            )
        path = book.path(ckpt)
        try:
            if ckpt.kind == "adapter":
                from ..finetune.lora import load_adapter

                gen = copy.deepcopy(self.weights(book, ckpt.parent, model))
                load_adapter(path, gen.backbone)
            else:
                gen = MotionGenerator.load(path, device=str(served.base.device))
        except (CheckpointError, ValueError) as exc:
            raise ProtocolError(ErrorCode.INTERNAL, f"checkpoint {name!r}: {exc}") from None
        if gen.backbone.kind != served.kind:
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                f"checkpoint {name!r} is a {gen.backbone.kind} model; {model!r} is {served.kind}",
            )
        with self._lock:
            self._cache[name] = gen
            while len(self._cache) > CACHED_WEIGHTS:
                self._cache.popitem(last=False)
        return gen

    def serve(self, model: str, name: str | None, generator: MotionGenerator) -> None:
        """Switch what `generate` uses for `model`."""
        served = self.get(model)
        served.generator, served.checkpoint = generator, name

    def refresh(self, book: CheckpointBook) -> None:
        """Re-read every model's adapter list from the registry."""
        for served in self.models.values():
            served.adapters = tuple(c.name for c in book.list(served.name) if c.kind == "adapter")

    def activate(self, book: CheckpointBook, name: str) -> tuple[str, str | None]:
        """Serve checkpoint `name` from now on (reward checkpoints: use it in later jobs);
        the weights load (and are checked) before anything changes. -> (backbone, previous)."""
        ckpt = book.require(name)
        if ckpt.backbone == REWARD:
            book.path(ckpt)  # present and unchanged
            gen = None
        else:
            gen = self.weights(book, name, ckpt.backbone)
        with book.store.transaction():
            previous = book.push_activation(ckpt.backbone, name)
        if gen is not None:
            self.serve(ckpt.backbone, name, gen)
        return ckpt.backbone, previous

    def rollback(self, book: CheckpointBook, backbone: str) -> tuple[str | None, str | None]:
        """Re-activate what was active before the current checkpoint -> (active, undone)."""
        if backbone != REWARD:
            self.get(backbone)
        with book.store.transaction():
            active, undone = book.pop_activation(backbone)
            gen = None if backbone == REWARD else self.weights(book, active, backbone)
        if gen is not None:
            self.serve(backbone, active, gen)
        return active, undone

    def restore(self, book: CheckpointBook, log) -> None:
        """At start-up: serve each model's active checkpoint (a broken one is logged and the
        model serves its base weights until something else is activated)."""
        self.refresh(book)
        for served in self.models.values():
            name = book.active(served.name)
            if name is None:
                continue
            try:
                self.serve(served.name, name, self.weights(book, name, served.name))
            except ProtocolError as exc:
                log("checkpoint_unusable", model=served.name, checkpoint=name, reason=exc.message)
