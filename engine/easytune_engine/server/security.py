"""CurveZMQ for the engine server: key files, the client allow-list, the ZAP authenticator.

    easytune-engine keys generate                  # the server keypair
    easytune-engine keys add-client KEY_OR_FILE    # allow a client's public key
    curve = load_curve(keys_dir)                   # at start-up: checked, or ServeError
    auth = secure(context, (router, pub), curve)   # before bind; auth.stop() before term

A keys directory (owner-only, 0700; every file 0600):

    server.key            the server's public key: copy it to every client
    server.key_secret     the server's keypair: never leaves this machine
    clients/NAME.key      the allow-list, one client public key per file

Files are in the ZeroMQ certificate format (`public-key = "..."`), so pyzmq's
`zmq.auth.load_certificate` reads them too. The allow-list is read again when its files change:
`keys add-client` / `remove-client` take effect for new connections without a restart.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import zmq
import zmq.auth.thread

from easytune_protocol.client import CurveKeyError, check_curve_key, read_key_file

from .config import ServeError
from .log import EventLog

SERVER_PUBLIC = "server.key"
SERVER_SECRET = "server.key_secret"
CLIENTS = "clients"
ZAP_DOMAIN = "easytune"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DENIED_LOG_EVERY = 60.0  # seconds between log lines about the same refused key
DENIED_KEYS_KEPT = 1024  # refused keys remembered for that
POSIX = os.name != "nt"


@dataclass(frozen=True, eq=False)
class CurveConfig:
    """A checked keys directory: the server keypair and the allow-list at start-up."""

    keys_dir: Path
    server_public: bytes
    server_secret: bytes = field(repr=False)
    clients: Mapping[bytes, str] = field(default_factory=dict)  # public key -> name

    @property
    def clients_dir(self) -> Path:
        return self.keys_dir / CLIENTS


# -- files ---------------------------------------------------------------------------------------


def check_private_dir(path: Path) -> None:
    """ServeError if others may write into (or list) a keys directory; POSIX only."""
    if not POSIX:
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ServeError(
            f"{path} is a keys directory but its mode is {mode:04o} (others may read it or add "
            f"keys to it); run `chmod 700 {path}`"
        )


def make_private_dir(path: Path) -> Path:
    """`path` (and parents) created if missing; the directory itself owner-only (0700)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if POSIX:
        os.chmod(path, 0o700)
    return path


def write_key_file(
    path: Path, public: bytes, secret: bytes | None = None, *, comment: str = ""
) -> Path:
    """Write a ZeroMQ certificate (owner-only, 0600) atomically: temp file, fsync, rename."""
    banner = "ZeroMQ CURVE **secret** certificate: keep it private" if secret else "public key"
    lines = [
        f"#   {banner}; written by easytune-engine keys, "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%SZ')}",
    ]
    if comment:
        lines.append(f"#   {comment}")
    lines += ["metadata", "curve", f'    public-key = "{public.decode()}"']
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode()}"')
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if POSIX:
            os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if POSIX:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise ServeError(
            f"client name {name!r}: use 1..64 letters, digits, '_', '.' or '-', starting with a "
            "letter or digit"
        )
    return name


def read_allow_list(clients_dir: Path) -> dict[bytes, str]:
    """{public key: name} of every `NAME.key` in the allow-list directory (ServeError on a bad
    file, naming it)."""
    out: dict[bytes, str] = {}
    if not clients_dir.is_dir():
        return out
    for path in sorted(clients_dir.glob("*.key")):
        try:
            public, _ = read_key_file(path)
        except CurveKeyError as exc:
            raise ServeError(f"allow-list entry {path}: {exc}") from None
        out.setdefault(public, path.stem)
    return out


def load_curve(keys_dir: Path) -> CurveConfig:
    """The server keypair and allow-list in `keys_dir`, checked: owner-only directory and secret
    file, keys that match, at least one allowed client. Raises ServeError saying what to run."""
    keys_dir = Path(keys_dir).expanduser()
    secret_file = keys_dir / SERVER_SECRET
    if not secret_file.is_file():
        raise ServeError(
            f"{keys_dir} has no server key ({SERVER_SECRET}); run "
            f"`easytune-engine keys generate --dir {keys_dir}`, then allow each client with "
            f"`easytune-engine keys add-client CLIENT_PUBLIC_KEY --dir {keys_dir}`"
        )
    check_private_dir(keys_dir)
    try:
        public, secret = read_key_file(secret_file)
    except CurveKeyError as exc:
        raise ServeError(str(exc)) from None
    if secret is None:
        raise ServeError(
            f"{secret_file} holds no secret-key line; make a new server keypair with "
            f"`easytune-engine keys generate --force --dir {keys_dir}`"
        )
    clients_dir = keys_dir / CLIENTS
    if clients_dir.is_dir():
        check_private_dir(clients_dir)
    clients = read_allow_list(clients_dir)
    if not clients:
        raise ServeError(
            f"the client allow-list {clients_dir} is empty: no client could connect. Add one "
            f"with `easytune-engine keys add-client CLIENT_PUBLIC_KEY_OR_FILE --dir {keys_dir}` "
            f"(or make a client keypair: `easytune-engine keys client --out FILE --dir {keys_dir}`)"
        )
    return CurveConfig(keys_dir, public, secret, clients)


# -- the authenticator ---------------------------------------------------------------------------


class AllowList:
    """ZAP credentials provider: is a client's public key on the allow-list? Re-reads the
    directory when its `*.key` files change (a bad file keeps the previous list)."""

    def __init__(
        self, curve: CurveConfig, on_denied: Callable[[str, str], None] | None = None
    ) -> None:
        self.clients_dir = curve.clients_dir
        self.keys = dict(curve.clients)
        self.on_denied = on_denied
        self._state = self._scan()
        self._denied_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def _scan(self) -> tuple[tuple[str, int, int], ...]:
        try:
            files = sorted(self.clients_dir.glob("*.key"))
            return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
        except OSError:
            return ()

    def _refresh(self) -> None:
        state = self._scan()
        if state == self._state:
            return
        try:
            self.keys = read_allow_list(self.clients_dir)
        except ServeError:
            return  # a half-edited entry: keep the list as it was, try again next time
        self._state = state

    def callback(self, domain: str, key: bytes | str) -> bool:
        z85 = key.decode("ascii") if isinstance(key, bytes) else key
        with self._lock:
            self._refresh()
            allowed = z85.encode("ascii") in self.keys
            if not allowed and self.on_denied is not None:
                now = time.monotonic()
                if now - self._denied_at.get(z85, -DENIED_LOG_EVERY) >= DENIED_LOG_EVERY:
                    if len(self._denied_at) >= DENIED_KEYS_KEPT:  # many keys: forget, stay small
                        self._denied_at.clear()
                    self._denied_at[z85] = now
                    self.on_denied(z85, domain)
        return allowed


def secure(
    context: zmq.Context,
    sockets: Iterable[zmq.Socket],
    curve: CurveConfig | None,
    log: EventLog | None = None,
) -> zmq.auth.thread.ThreadAuthenticator | None:
    """Make `sockets` CurveZMQ servers whose clients must be on the allow-list, checked by a ZAP
    authenticator thread started here (call before bind; stop it before terminating the context).
    `curve` None: plaintext, nothing started, None returned. `log` (an EventLog) gets a `denied`
    line for a refused key, at most once a minute per key."""
    if curve is None:
        return None

    def denied(key: str, domain: str) -> None:
        if log is not None:
            log.write("denied", reason="client key not on the allow-list", client_key=key)

    auth = zmq.auth.thread.ThreadAuthenticator(context, log=logging.getLogger("easytune.zap"))
    auth.start()
    auth.configure_curve_callback(ZAP_DOMAIN, AllowList(curve, denied))
    for sock in sockets:
        sock.curve_secretkey = curve.server_secret
        sock.curve_publickey = curve.server_public
        sock.curve_server = True
        sock.zap_domain = ZAP_DOMAIN.encode()
        # With a domain and this flag, a missing ZAP handler refuses every client (by default
        # libzmq would let any CURVE client in when no handler answers).
        sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
    return auth


# -- what `easytune-engine keys` does -------------------------------------------------------------


def generate_server_keys(keys_dir: Path, force: bool = False) -> bytes:
    """Write a new server keypair into `keys_dir` (created 0700) and make the allow-list
    directory; returns the public key. Refuses to replace an existing keypair unless `force`."""
    keys_dir = Path(keys_dir).expanduser()
    if (keys_dir / SERVER_SECRET).exists() and not force:
        raise ServeError(
            f"{keys_dir / SERVER_SECRET} exists; pass --force to replace it (every client then "
            f"needs the new {SERVER_PUBLIC})"
        )
    make_private_dir(keys_dir)
    make_private_dir(keys_dir / CLIENTS)
    public, secret = zmq.curve_keypair()
    write_key_file(keys_dir / SERVER_SECRET, public, secret, comment="engine server keypair")
    write_key_file(keys_dir / SERVER_PUBLIC, public, comment="engine server public key")
    return public


def parse_client_key(key_or_file: str) -> tuple[bytes, str | None]:
    """(public key, name suggested by the file name or None) from a 40-character Z85 key or a key
    file (a public `.key` or a keypair `.key_secret`: only its public key is used)."""
    path = Path(key_or_file)
    if key_or_file.startswith("~/"):
        path = path.expanduser()
    if len(key_or_file.strip()) == 40 and not path.exists():
        try:
            return check_curve_key(key_or_file, "the client key"), None
        except CurveKeyError as exc:
            raise ServeError(str(exc)) from None
    if not path.is_file():
        raise ServeError(
            f"{key_or_file!r} is neither a client public key (40 characters of Z85, as "
            "zmq.curve_keypair() makes them) nor an existing key file (NAME.key or "
            "NAME.key_secret from `easytune-engine keys client` or zmq.auth.create_certificates)"
        )
    try:
        public, _ = read_key_file(path)
    except CurveKeyError as exc:
        raise ServeError(str(exc)) from None
    name = path.name.split(".")[0]
    return public, name if NAME_RE.fullmatch(name) else None


def add_client(
    keys_dir: Path, public: bytes, name: str | None = None, force: bool = False
) -> tuple[Path, bool]:
    """Put `public` on the allow-list as `clients/NAME.key`; (its file, whether it was added).
    A key already listed is not added twice; a NAME taken by another key needs `force`."""
    keys_dir = Path(keys_dir).expanduser()
    public = check_curve_key(public, "the client key")
    clients_dir = keys_dir / CLIENTS
    listed = read_allow_list(clients_dir)
    if public in listed:
        return clients_dir / f"{listed[public]}.key", False
    if name is None:  # from the key, without its Z85 punctuation
        name = "client-" + re.sub(r"[^A-Za-z0-9]", "", public.decode())[:8]
    check_name(name)
    target = clients_dir / f"{name}.key"
    if target.exists() and not force:
        raise ServeError(
            f"{target} exists with another key; choose another --name or pass --force to replace"
        )
    make_private_dir(clients_dir)
    return write_key_file(target, public, comment=f"allowed client {name}"), True


def remove_client(keys_dir: Path, name: str) -> Path:
    target = Path(keys_dir).expanduser() / CLIENTS / f"{check_name(name)}.key"
    if not target.is_file():
        raise ServeError(f"no allowed client named {name!r} ({target} does not exist)")
    target.unlink()
    return target


def make_client_keypair(out: Path, force: bool = False) -> bytes:
    """Write a new client keypair file `out` (0600, its directory created 0700 if missing);
    returns its public key."""
    out = Path(out).expanduser()
    if out.exists() and not force:
        raise ServeError(f"{out} exists; pass --force to replace it or choose another --out")
    if not out.parent.exists():
        make_private_dir(out.parent)
    public, secret = zmq.curve_keypair()
    write_key_file(out, public, secret, comment="client keypair for the EasyTune engine")
    return public
