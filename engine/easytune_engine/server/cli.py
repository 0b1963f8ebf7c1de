"""`easytune-engine serve`: run the engine server until shutdown, SIGINT or SIGTERM.

    easytune-engine serve --model mld                              # CUDA if present, else CPU
    easytune-engine serve --cpu --bind tcp://127.0.0.1:5555 --events tcp://127.0.0.1:5556 \\
        --data-dir DIR --model run/model.safetensors

Start-up order: endpoints (loopback only), device, the data directory's lock, the models, then
the sockets; a `ready` JSON line on stderr gives the bound endpoints (useful with PORT `*`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import DEFAULT_BIND, DEFAULT_EVENTS, ServeConfig, ServeError, default_data_dir


def run(args: argparse.Namespace) -> int:
    try:
        return _serve(args)
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    from .config import check_endpoint

    check_endpoint(args.bind, "--bind")  # before importing torch: a bad bind fails at once
    check_endpoint(args.events, "--events")
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
    data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    config = ServeConfig(args.bind, args.events, data_dir, device, tuple(args.model or ("mld",)))
    lock = DataDirLock(config.data_dir)
    log = EventLog()
    try:
        try:
            registry = ModelRegistry.load(config.models, device)
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
    p = sub.add_parser("serve", help="run the engine server (ZeroMQ + msgpack, loopback)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--gpu", type=int, metavar="N", help="serve from CUDA device N")
    where.add_argument("--cpu", action="store_true", help="serve from the CPU")
    p.add_argument("--bind", default=DEFAULT_BIND, help=f"requests (default {DEFAULT_BIND})")
    p.add_argument("--events", default=DEFAULT_EVENTS, help=f"events (default {DEFAULT_EVENTS})")
    p.add_argument("--data-dir", help="clips, rankings, lock (default: the user data dir/engine)")
    p.add_argument(
        "--model",
        action="extend",
        nargs="+",
        metavar="NAME_OR_PATH",
        help="mdm, mld, lcm (shipped) or a backbone checkpoint; repeat for more (default mld)",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.set_defaults(func=run)
