"""The backbones a server generates with, by name, and their `model` records for clients.

    registry = ModelRegistry.load(["mld", "/path/model.safetensors"], device="cpu")
    served = registry.get(None)           # the default (first) model
    served.record()                       # the protocol's `model` record

A shipped backbone is named after itself; a checkpoint after its architecture ('mld'), with a
suffix ('mld-2') when that name is taken. Checkpoint activation, adapters and rollback belong to
the model registry of a later increment; here every model serves the weights it was loaded with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from easytune_protocol import ErrorCode, ProtocolError

from ..models.pipeline import MAX_STEPS, MotionGenerator, SamplingOptions


@dataclass
class ServedModel:
    name: str
    generator: MotionGenerator
    source: str  # the --model value it was loaded from

    @property
    def kind(self) -> str:
        return self.generator.backbone.kind

    @property
    def checkpoint_sha256(self) -> str | None:
        return getattr(self.generator.backbone, "checkpoint_sha256", None)

    @property
    def max_steps(self) -> int:
        return int(getattr(self.generator.backbone.config, "origin_steps", MAX_STEPS))

    def record(self) -> dict[str, Any]:
        d = self.generator.backbone.sampling
        return {
            "name": self.name,
            "kind": self.kind,
            "sampler": d.sampler,
            "steps": d.steps,
            "max_steps": self.max_steps,
            "guidance": float(d.guidance),
            "adapters": [],
        }

    def options(
        self, steps: int | None, guidance: float | None, sampler: str | None
    ) -> SamplingOptions:
        """Resolved sampling settings, or invalid_field saying what this model accepts."""
        try:
            return self.generator.options(steps, guidance, sampler)
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

    @classmethod
    def load(cls, sources: Sequence[str], device: str) -> ModelRegistry:
        """Load every --model value (a shipped name or a checkpoint path) onto `device`."""
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
            served.append(ServedModel(name, gen, source))
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
