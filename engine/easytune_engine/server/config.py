"""What a server is started with: endpoints, device, data directory, CurveZMQ keys.

    config = ServeConfig(bind, events, data_dir, device, models, curve=load_curve(keys_dir))

Endpoints are loopback unless `curve` is given (security.py: a server keypair and a client
allow-list), so an engine never listens on a network in plaintext.

Checks that need nothing heavy (endpoints) run first, so a bad command line fails in
milliseconds, before torch is imported or a model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from easytune_protocol.endpoints import is_loopback

from ..paths import data_home

if TYPE_CHECKING:
    from .security import CurveConfig

DEFAULT_BIND = "tcp://127.0.0.1:5555"
DEFAULT_EVENTS = "tcp://127.0.0.1:5556"
QUEUE_LIMIT = 64  # generate requests waiting for the worker; more are answered `busy`
SOCKET_HWM = 1000  # messages queued per peer in each direction

GRAPH_DTYPES = ("bf16", "fp32")
PRECISIONS = ("fp32", "bf16")  # the eager loop's: models.pipeline.PRECISIONS, torch-free here


class ServeError(Exception):
    """A reason the server cannot start; the message says what to do instead."""


def default_data_dir() -> Path:
    return data_home() / "engine"


def default_keys_dir(data_dir: Path | None = None) -> Path:
    """Where `easytune-engine keys` and `serve` keep CurveZMQ keys: DATA_DIR/keys."""
    return (data_dir or default_data_dir()) / "keys"


def check_endpoint(endpoint: str, what: str, curve: bool = False) -> str:
    """A tcp/ipc endpoint the engine may bind: loopback, or any address with CurveZMQ on."""
    if not endpoint.startswith(("tcp://", "ipc://")):
        raise ServeError(
            f"{what} {endpoint!r} is not a ZeroMQ endpoint; use tcp://127.0.0.1:PORT "
            "(PORT may be * for any free port) or ipc://PATH"
        )
    if not curve and not is_loopback(endpoint):
        raise ServeError(
            f"refusing to bind {what} {endpoint}: not a loopback address. Listening on a network "
            "needs CurveZMQ: a server key (`easytune-engine keys generate`) and a client "
            "allow-list (`easytune-engine keys add-client`); or bind tcp://127.0.0.1:PORT and "
            "reach it through an SSH tunnel"
        )
    return endpoint


def resolve_device(gpu: int | None, cpu: bool) -> str:
    """'cpu' or 'cuda:N': --gpu N needs that CUDA device; neither flag: CUDA 0 if present."""
    import torch

    if gpu is not None and cpu:
        raise ServeError("give --gpu N or --cpu, not both")
    if cpu:
        return "cpu"
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpu is None:
        return "cuda:0" if count else "cpu"
    if gpu < 0 or gpu >= count:
        have = f"CUDA devices 0..{count - 1}" if count else "no CUDA device"
        raise ServeError(
            f"--gpu {gpu}: this machine has {have} (torch {torch.__version__}, CUDA "
            f"{torch.version.cuda or 'not built in'}); pass --cpu to serve from the CPU"
        )
    return f"cuda:{gpu}"


@dataclass(frozen=True)
class ServeConfig:
    bind: str  # ROUTER endpoint (requests)
    events: str  # PUB endpoint (events)
    data_dir: Path  # lock, SQLite store
    device: str  # 'cpu' or 'cuda:N'
    models: tuple[str, ...]  # shipped names or checkpoint paths; the first is the default
    queue_limit: int = QUEUE_LIMIT
    hwm: int = SOCKET_HWM
    curve: CurveConfig | None = None  # None: plaintext, loopback endpoints only
    corpus: str = "builtin"  # SPL refinement; fine-tuning prompts before any ranking exists
    fast_path: bool = True  # on CUDA: generation with CUDA graphs (False: eager only)
    graph_dtype: str = "fp32"  # the fast path's precision: fp32 (the eager loop's motion) or bf16
    precision: str = "fp32"  # the eager loop's network precision (CPU; CUDA with --eager)

    def __post_init__(self) -> None:
        check_endpoint(self.bind, "--bind", curve=self.curve is not None)
        check_endpoint(self.events, "--events", curve=self.curve is not None)
        if self.bind == self.events and not self.bind.endswith(":*"):
            raise ServeError(f"--bind and --events must differ, both are {self.bind}")
        if not self.models:
            raise ServeError("no model to serve: pass --model NAME_OR_PATH")
        if self.graph_dtype not in GRAPH_DTYPES:
            raise ServeError(
                f"--graph-dtype {self.graph_dtype!r}: valid: {', '.join(GRAPH_DTYPES)}"
            )
        if self.precision not in PRECISIONS:
            raise ServeError(f"--precision {self.precision!r}: valid: {', '.join(PRECISIONS)}")
        if self.precision != "fp32" and self.device.startswith("cuda") and self.fast_path:
            raise ServeError(
                f"--precision {self.precision} is the eager loop's (CPU, or CUDA with --eager); "
                "the CUDA-graph path takes --graph-dtype"
            )
        if self.queue_limit < 1 or self.hwm < 1:
            raise ServeError("queue and HWM limits must be >= 1")
