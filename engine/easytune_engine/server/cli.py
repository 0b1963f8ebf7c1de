"""`easytune-engine serve`: run the engine server until shutdown, SIGINT or SIGTERM.

    easytune-engine serve --model mld                              # CUDA if present, else CPU
    easytune-engine serve --cpu --bind tcp://127.0.0.1:5555 --events tcp://127.0.0.1:5556 \\
        --data-dir DIR --model run/model.safetensors
    easytune-engine serve --bind tcp://0.0.0.0:5555 --events tcp://0.0.0.0:5556   # CurveZMQ

Start-up order: endpoints, CurveZMQ keys (required off loopback, or with --curve; from --keys,
default DATA_DIR/keys, see `easytune-engine keys`), device, the data directory's lock, the
models, then the sockets; a `ready` JSON line on stderr gives the bound endpoints (useful with
PORT `*`) and whether CurveZMQ is on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .config import (
    DEFAULT_BIND,
    DEFAULT_EVENTS,
    ServeConfig,
    ServeError,
    default_data_dir,
    default_keys_dir,
)

if TYPE_CHECKING:
    from .security import CurveConfig


def run(args: argparse.Namespace) -> int:
    try:
        return _serve(args)
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _curve(args: argparse.Namespace, data_dir: Path) -> CurveConfig | None:
    """The checked CurveZMQ keys when an endpoint is not loopback or --curve is given, else None;
    ServeError (saying what to run) when they are needed and missing or unsafe."""
    from easytune_protocol.endpoints import is_loopback

    from .security import load_curve

    keys_dir = Path(args.keys).expanduser() if args.keys else default_keys_dir(data_dir)
    endpoints = (("--bind", args.bind), ("--events", args.events))
    public = [(what, e) for what, e in endpoints if not is_loopback(e)]
    if not public and not args.curve:
        return None
    try:
        return load_curve(keys_dir)
    except ServeError as exc:
        if not public:
            raise ServeError(f"--curve: {exc}") from None
        what, endpoint = public[0]
        raise ServeError(
            f"refusing to bind {what} {endpoint}: not a loopback address, and listening on a "
            f"network needs CurveZMQ (a server key and a client allow-list): {exc}; or bind "
            "tcp://127.0.0.1:PORT and reach it through an SSH tunnel"
        ) from None


def _serve(args: argparse.Namespace) -> int:
    from .config import check_endpoint

    check_endpoint(args.bind, "--bind", curve=True)  # syntax first: a bad bind fails at once
    check_endpoint(args.events, "--events", curve=True)
    data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    curve = _curve(args, data_dir)  # before importing torch, and before touching data_dir
    import torch

    from ..checkpoint import CheckpointError
    from .config import resolve_device
    from .datadir import DataDirLock
    from .log import EventLog
    from .loop import Server
    from .models import ModelRegistry

    device = resolve_device(args.gpu, args.cpu)
    if args.threads is not None:
        if args.threads < 1:
            raise ServeError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    models = tuple(args.model or ("mld",))
    config = ServeConfig(
        args.bind,
        args.events,
        data_dir,
        device,
        models,
        curve=curve,
        corpus=args.data,
        fast_path=not args.eager,
        graph_dtype=args.graph_dtype,
        precision=args.precision,
    )
    lock = DataDirLock(config.data_dir)
    log = EventLog()
    try:
        try:
            registry = ModelRegistry.load(config.models, device, config.precision)
        except (CheckpointError, ValueError) as exc:
            raise ServeError(f"cannot load a model: {exc}") from exc
        server = Server(config, registry, log)
        server.run()
    finally:
        lock.release()
    log.write("stopped")
    return 0


def add_commands(sub) -> None:
    """Register `serve` on the top-level subparsers."""
    p = sub.add_parser("serve", help="run the engine server (ZeroMQ + msgpack)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--gpu", type=int, metavar="N", help="serve from CUDA device N")
    where.add_argument("--cpu", action="store_true", help="serve from the CPU")
    p.add_argument("--bind", default=DEFAULT_BIND, help=f"requests (default {DEFAULT_BIND})")
    p.add_argument("--events", default=DEFAULT_EVENTS, help=f"events (default {DEFAULT_EVENTS})")
    p.add_argument("--data-dir", help="clips, rankings, lock (default: the user data dir/engine)")
    p.add_argument(
        "--keys",
        metavar="DIR",
        help="CurveZMQ keys from `easytune-engine keys` (default DATA_DIR/keys); used when an "
        "endpoint is not loopback, or with --curve",
    )
    p.add_argument(
        "--curve",
        action="store_true",
        help="require CurveZMQ on loopback endpoints too (off loopback it is always required)",
    )
    p.add_argument(
        "--model",
        action="extend",
        nargs="+",
        metavar="NAME_OR_PATH",
        help="mdm, mld, lcm (shipped) or a backbone checkpoint; repeat for more (default mld)",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument(
        "--eager",
        action="store_true",
        help="on CUDA, generate with the eager fp32 loop instead of CUDA graphs",
    )
    p.add_argument(
        "--graph-dtype",
        default="fp32",
        help="precision of the CUDA-graph fast path: fp32 (default: the eager loop's motion, "
        "measured exact on an H200) or bf16 (joints drift by centimetres; no faster there)",
    )
    p.add_argument(
        "--precision",
        default="fp32",
        help="the networks' precision in the eager loop (CPU, or CUDA with --eager): fp32 "
        "(default) or bf16 (bfloat16 autocast, the same R@1, FID and oracle accuracy in "
        "benchmarks: up to 1.9x faster on an AMD EPYC, 1.6x slower on an Intel Xeon)",
    )
    p.add_argument(
        "--data",
        default="builtin",
        help="corpus for SPL refinement, and for fine-tuning prompts before any ranking exists: "
        "builtin (built on first use) or a HumanML3D-format directory",
    )
    p.set_defaults(func=run)
