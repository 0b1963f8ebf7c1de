"""`easytune-engine keys`: CurveZMQ keys for serving on a network.

    easytune-engine keys generate [--dir DIR] [--force]            # the server keypair
    easytune-engine keys add-client KEY_OR_FILE [--name NAME] [--dir DIR]
    easytune-engine keys client --out FILE [--name NAME] [--no-allow] [--dir DIR]
    easytune-engine keys remove-client NAME [--dir DIR]
    easytune-engine keys list [--dir DIR]

DIR defaults to the engine's DATA_DIR/keys (what `serve` reads, unless given --keys). `client`
makes a keypair file for an artist's machine and, unless --no-allow, puts its public key on this
engine's allow-list; the artist's client needs that file and DIR/server.key
(`CurveKeys.from_files(server_key, keypair_file)`). Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ServeError, default_keys_dir


def _dir(args: argparse.Namespace) -> Path:
    return Path(args.dir).expanduser() if args.dir else default_keys_dir()


def _generate(args: argparse.Namespace) -> None:
    from .security import CLIENTS, SERVER_PUBLIC, generate_server_keys

    keys_dir = _dir(args)
    public = generate_server_keys(keys_dir, force=args.force)
    print(f"server keypair written to {keys_dir} (owner-only)")
    print(f"server public key: {public.decode()}")
    print(f"give clients {keys_dir / SERVER_PUBLIC}; allow each client's public key with")
    print(f"  easytune-engine keys add-client KEY_OR_FILE --dir {keys_dir}")
    print(f"(the allow-list is {keys_dir / CLIENTS}/)")


def _add_client(args: argparse.Namespace) -> None:
    from .security import add_client, parse_client_key

    public, suggested = parse_client_key(args.key)
    path, added = add_client(_dir(args), public, args.name or suggested, force=args.force)
    if added:
        print(f"allowed client {path.stem}: {public.decode()} ({path})")
    else:
        print(f"already allowed as {path.stem}: {public.decode()} ({path})")


def _client(args: argparse.Namespace) -> None:
    from .security import SERVER_PUBLIC, add_client, check_name, make_client_keypair

    keys_dir = _dir(args)
    out = Path(args.out).expanduser()
    name = check_name(args.name or out.name.split(".")[0])
    public = make_client_keypair(out, force=args.force)
    print(f"client keypair written to {out} (owner-only): public key {public.decode()}")
    if not args.no_allow:
        path, _ = add_client(keys_dir, public, name, force=args.force)
        print(f"allowed as client {path.stem} ({path})")
    print(
        f"copy {out} and {keys_dir / SERVER_PUBLIC} to the artist's machine (keep {out.name} "
        "private: chmod 600) and connect with CurveKeys.from_files(server.key, "
        f"{out.name})"
    )


def _remove_client(args: argparse.Namespace) -> None:
    from .security import remove_client

    path = remove_client(_dir(args), args.name)
    print(f"removed {path}; connections already made stay until they close")


def _list(args: argparse.Namespace) -> None:
    from easytune_protocol.client import CurveKeyError, read_key_file

    from .security import CLIENTS, SERVER_PUBLIC, SERVER_SECRET, load_curve, read_allow_list

    keys_dir = _dir(args)
    print(f"keys directory: {keys_dir}")
    try:
        public, _ = read_key_file(keys_dir / SERVER_PUBLIC)
        print(f"server public key: {public.decode()}")
    except CurveKeyError as exc:
        print(f"server public key: none ({exc})")
    clients = read_allow_list(keys_dir / CLIENTS)
    print(f"allowed clients ({len(clients)}):")
    for key, name in sorted(clients.items(), key=lambda kv: kv[1]):
        print(f"  {name:24} {key.decode()}")
    if (keys_dir / SERVER_SECRET).exists():
        try:
            load_curve(keys_dir)
            print("ready: `serve --keys` can use this directory")
        except ServeError as exc:
            print(f"not usable yet: {exc}")


def run(args: argparse.Namespace) -> int:
    try:
        args.keys_func(args)
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def add_commands(sub) -> None:
    """Register `keys` on the top-level subparsers."""
    keys = sub.add_parser("keys", help="CurveZMQ keys for serving on a network")
    keys.set_defaults(func=run)
    cmds = keys.add_subparsers(dest="keys_command", required=True)

    def command(name: str, func, help: str) -> argparse.ArgumentParser:
        p = cmds.add_parser(name, help=help, description=help)
        p.add_argument("--dir", metavar="DIR", help="keys directory (default DATA_DIR/keys)")
        p.set_defaults(keys_func=func)
        return p

    p = command("generate", _generate, "create the server keypair (server.key, server.key_secret)")
    p.add_argument("--force", action="store_true", help="replace an existing server keypair")

    p = command("add-client", _add_client, "put a client's public key on the allow-list")
    p.add_argument(
        "key",
        metavar="PUBLIC_KEY_OR_FILE",
        help="40-character Z85 key, or key file (a key starting with '-' goes last, after --)",
    )
    p.add_argument("--name", help="allow-list entry name (default: from the file name or key)")
    p.add_argument("--force", action="store_true", help="replace an entry of the same name")

    p = command("client", _client, "make a client keypair file and allow its public key")
    p.add_argument("--out", required=True, metavar="FILE", help="keypair file to write (0600)")
    p.add_argument("--name", help="allow-list entry name (default: FILE's name)")
    p.add_argument("--no-allow", action="store_true", help="only write FILE")
    p.add_argument("--force", action="store_true", help="replace FILE / an entry of that name")

    p = command("remove-client", _remove_client, "take a client off the allow-list")
    p.add_argument("name", metavar="NAME", help="its allow-list entry name (see `keys list`)")

    command("list", _list, "the server public key and the allowed clients")
