"""Fine-tuning past one process: `torchrun --nproc_per_node N -m easytune_engine finetune ...`.

Each rank samples its shard of the global batch (rows rank·b … rank·b + b − 1 of the same prompt
draw, with the same per-row noise streams a single process would use), and after every backward
the trained parameters' gradients are averaged across ranks (all-reduce), so every rank takes the
same optimizer step and the run equals one process on the combined batch. This is what
DistributedDataParallel does; it is written out because the methods run several forward passes
per backward (guidance, DRaFT's chain), which DDP's reducer does not allow. NCCL on GPUs, gloo on
the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current_world() -> World:
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def init_from_env() -> World:
    """Join the process group torchrun describes (WORLD_SIZE > 1); a single process otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return current_world()


def average_gradients(params: list[torch.nn.Parameter], world: World) -> None:
    """All-reduce and average `params`' gradients across ranks (no-op in a single process)."""
    if world.size <= 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(world.size)


def shard(rows: list, world: World) -> list:
    """This rank's contiguous share of a global batch (its size must divide evenly)."""
    if len(rows) % world.size:
        raise ValueError(f"batch of {len(rows)} does not split over {world.size} ranks")
    b = len(rows) // world.size
    return rows[world.rank * b : (world.rank + 1) * b]


def barrier(world: World) -> None:
    """Wait for every rank (no-op in a single process)."""
    if world.size > 1:
        dist.barrier()


def leave(world: World) -> None:
    """Wait for every rank, then leave the process group (no-op in a single process).

    Exiting without this can race gloo's own threads at interpreter exit ("terminate called
    without an active exception").
    """
    if world.size > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
