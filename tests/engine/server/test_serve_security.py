"""Serving on a network: CurveZMQ keys, the client allow-list, and what an eavesdropper sees.

One CURVE engine bound to 0.0.0.0 (port `*`) serves the module; clients reach it on 127.0.0.1.
The eavesdropper is a TCP relay in the test that records every byte both ways; the plaintext
control runs through the same relay to the ordinary loopback `engine` fixture.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zmq
from serve_helpers import Engine, launch, start_engine

from easytune_engine.cli import main
from easytune_engine.server import security
from easytune_protocol import RequestTimeout
from easytune_protocol.client import CurveKeys, EngineClient

GEN = {"candidates": 1, "length": 20, "steps": 2}


@dataclass
class Keys:
    dir: Path
    server_public_file: Path
    allowed_file: Path

    @property
    def allowed(self) -> CurveKeys:
        return CurveKeys.from_files(self.server_public_file, self.allowed_file)

    def stranger(self) -> CurveKeys:
        """The right server key, but a client keypair nobody put on the allow-list."""
        public, secret = zmq.curve_keypair()
        return CurveKeys(self.allowed.server_public, public, secret)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    base = tmp_path_factory.mktemp("curve")
    keys_dir = base / "keys"
    security.generate_server_keys(keys_dir)
    allowed = base / "artist" / "alice.key_secret"
    security.add_client(keys_dir, security.make_client_keypair(allowed), "alice")
    return Keys(keys_dir, keys_dir / security.SERVER_PUBLIC, allowed)


@pytest.fixture(scope="module")
def curve_engine(
    tiny_model: Path, keys: Keys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    data = tmp_path_factory.mktemp("curve-engine") / "data"
    server = start_engine(
        data, tiny_model, "--bind", "tcp://0.0.0.0:*", "--events", "tcp://0.0.0.0:*",
        "--keys", str(keys.dir),
    )  # fmt: skip
    yield server
    server.stop()


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def _local(endpoint: str) -> str:
    """The engine's bound endpoint as reached from this machine."""
    return f"tcp://127.0.0.1:{_port(endpoint)}"


def _connect(engine: Engine, curve: CurveKeys | None, timeout: float = 20.0) -> EngineClient:
    return EngineClient.connect(_local(engine.bind), curve=curve, timeout=timeout, retries=0)


def _refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """stderr of `easytune-engine serve ARGS` (in this process: it stops before any model)."""
    assert main(["serve", "--cpu", "--data-dir", str(tmp_path / "data"), *args]) == 2
    assert not (tmp_path / "data").exists()  # refused before touching the data directory
    return capsys.readouterr().err


# -- refusing to start ---------------------------------------------------------------------------


def test_non_loopback_bind_without_keys_refuses(tmp_path: Path, capsys) -> None:
    keys_dir = tmp_path / "keys"
    proc = launch(tmp_path / "data", "--cpu", "--bind", "tcp://0.0.0.0:*", "--keys", str(keys_dir))
    assert proc.wait(60) == 2  # a real process: it exits at once, before loading anything
    text = "\n".join(proc.lines)
    assert "refusing to bind --bind tcp://0.0.0.0:*: not a loopback address" in text
    assert "CurveZMQ" in text and f"easytune-engine keys generate --dir {keys_dir}" in text
    assert not (tmp_path / "data").exists()

    security.generate_server_keys(keys_dir)  # a key, but nobody allowed
    text = _refusal(tmp_path, capsys, "--events", "tcp://0.0.0.0:*", "--keys", str(keys_dir))
    assert "--events tcp://0.0.0.0:*" in text and "allow-list" in text and "add-client" in text

    text = _refusal(tmp_path, capsys, "--curve", "--keys", str(tmp_path / "none"))  # loopback
    assert "--curve" in text and "no server key" in text


def test_group_readable_secret_key_is_refused(tmp_path: Path, capsys) -> None:
    keys_dir = tmp_path / "keys"
    security.generate_server_keys(keys_dir)
    security.add_client(keys_dir, zmq.curve_keypair()[0], "bob")
    secret = keys_dir / security.SERVER_SECRET
    modes = {p.name: p.stat().st_mode & 0o777 for p in (keys_dir, *keys_dir.rglob("*"))}
    assert modes == {
        "keys": 0o700,
        "clients": 0o700,
        "bob.key": 0o600,
        "server.key": 0o600,
        "server.key_secret": 0o600,
    }
    assert security.load_curve(keys_dir).clients  # usable as written
    os.chmod(secret, 0o640)
    text = _refusal(tmp_path, capsys, "--bind", "tcp://0.0.0.0:*", "--keys", str(keys_dir))
    assert f"{secret} holds a secret key but its mode is 0640" in text
    assert f"chmod 600 {secret}" in text
    os.chmod(secret, 0o600)
    os.chmod(keys_dir, 0o755)
    text = _refusal(tmp_path, capsys, "--curve", "--keys", str(keys_dir))
    assert f"chmod 700 {keys_dir}" in text


# -- a CURVE engine ------------------------------------------------------------------------------


def test_allowed_client_on_a_curve_engine(curve_engine: Engine, keys: Keys) -> None:
    assert curve_engine.ready is not None and curve_engine.ready["curve"] is True
    assert curve_engine.bind.startswith("tcp://0.0.0.0:")
    with _connect(curve_engine, keys.allowed) as client:
        hello = client.hello()
        assert hello["engine_session"] == curve_engine.ready["engine_session"]
        assert client.request("health")


def test_unlisted_or_plaintext_client_gets_no_reply(curve_engine: Engine, keys: Keys) -> None:
    stranger = keys.stranger()
    for curve in (stranger, None):
        with _connect(curve_engine, curve, timeout=1.5) as client:
            with pytest.raises(RequestTimeout):
                client.hello()
    assert curve_engine.proc.poll() is None
    with _connect(curve_engine, keys.allowed) as client:  # the engine still serves the allowed
        assert client.hello()["engine_session"]
    denied = [r for r in curve_engine.log if r.get("event") == "denied"]
    assert [r["client_key"] for r in denied] == [stranger.public.decode()]  # once, not per retry


def test_allow_list_changes_apply_without_a_restart(curve_engine: Engine, keys: Keys) -> None:
    newcomer = keys.stranger()
    security.add_client(keys.dir, newcomer.public, "newcomer")
    try:
        with _connect(curve_engine, newcomer) as client:
            assert client.hello()["engine_session"]
    finally:
        security.remove_client(keys.dir, "newcomer")
    with _connect(curve_engine, newcomer, timeout=1.5) as client:
        with pytest.raises(RequestTimeout):
            client.hello()


# -- the eavesdropper ----------------------------------------------------------------------------


class Relay:
    """127.0.0.1:`port` forwarded to 127.0.0.1:`target`, recording every byte both ways."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.recorded = bytearray()
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self._socks += [conn, upstream]
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    self.recorded += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        for s in self._socks:
            s.close()


def _eavesdrop(engine: Engine, curve: CurveKeys | None) -> tuple[bytes, str]:
    """Every byte of a hello + generate whose prompt holds a fresh marker, and the marker."""
    marker = f"zebra{uuid.uuid4().hex[:12]}"
    relay = Relay(_port(engine.bind))
    try:
        endpoint = f"tcp://127.0.0.1:{relay.port}"
        with EngineClient.connect(endpoint, curve=curve, timeout=30, retries=0) as client:
            client.hello()
            out = client.request("generate", {"prompt": f"a person waves {marker}", **GEN})
            assert len(out["clips"]) == 1  # the request went through the relay and was served
        time.sleep(0.1)
        with relay._lock:
            return bytes(relay.recorded), marker
    finally:
        relay.close()


def test_eavesdropper_sees_only_ciphertext(curve_engine: Engine, keys: Keys) -> None:
    wire, marker = _eavesdrop(curve_engine, keys.allowed)
    assert len(wire) > 1000
    assert marker.encode() not in wire
    assert b"prompt" not in wire and b"generate" not in wire  # no msgpack keys either
    assert b"CURVE" in wire[:200]  # the ZMTP greeting names the mechanism (that much is public)


def test_plaintext_loopback_control_shows_the_marker(engine: Engine) -> None:
    """The same eavesdropper on an ordinary loopback engine reads the prompt: the test above
    would fail if CurveZMQ were not on."""
    assert engine.ready is not None and engine.ready["curve"] is False
    wire, marker = _eavesdrop(engine, None)
    assert marker.encode() in wire and b"NULL" in wire[:200]


# -- events (last: it stops the CURVE engine) -----------------------------------------------------


def test_events_reach_an_allowed_subscriber_and_shutdown(curve_engine: Engine, keys: Keys) -> None:
    with _connect(curve_engine, keys.allowed) as client:
        hello = client.hello()
        assert hello["events"].startswith("tcp://0.0.0.0:")
        client.subscribe(hello["events"])  # connects to 127.0.0.1 (the requests' host), CURVE
        time.sleep(0.5)  # PUB/SUB: a subscription takes a moment to reach the publisher
        assert client.request("shutdown") == {"stopping": True}
        (stopping,) = client.poll_events(timeout=10)
    assert stopping.type == "engine_stopping"
    assert curve_engine.wait(30) == 0
