"""The client's CurveZMQ keys: Z85 validation, key files, the events endpoint off loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import zmq
import zmq.auth

from easytune_protocol.client import (
    CurveKeyError,
    CurveKeys,
    check_curve_key,
    events_endpoint,
    read_key_file,
)


def test_keys_from_curve_keypair_are_valid() -> None:
    public, secret = zmq.curve_keypair()
    assert check_curve_key(public) == public
    assert check_curve_key(secret.decode()) == secret
    CurveKeys(public, public, secret)


@pytest.mark.parametrize(
    ("key", "says"),
    [
        (b"short", "has 5 characters"),
        ("é" * 40, "outside Z85"),
        (b"\xff" * 40, "not ASCII"),
        ("#" * 40, "not valid Z85: characters 1..5"),
        (" " * 40, "has 0 characters"),
    ],
)
def test_bad_keys_say_what_is_valid(key: str | bytes, says: str) -> None:
    with pytest.raises(CurveKeyError, match=says):
        check_curve_key(key, "the key")
    assert issubclass(CurveKeyError, ValueError)


def test_curve_keys_checks_each_field() -> None:
    public, secret = zmq.curve_keypair()
    with pytest.raises(CurveKeyError, match=r"CurveKeys\.secret"):
        CurveKeys(public, public, secret[:-1])
    with pytest.raises(CurveKeyError, match="must be bytes"):
        CurveKeys(public.decode(), public, secret)  # type: ignore[arg-type]


def test_key_files(tmp_path: Path) -> None:
    pub_file, secret_file = zmq.auth.create_certificates(tmp_path, "c")  # pyzmq's format
    public, secret = zmq.auth.load_certificate(secret_file)
    assert read_key_file(pub_file) == (public, None)
    with pytest.raises(CurveKeyError, match="chmod 600"):  # pyzmq writes it 0644
        read_key_file(secret_file)
    os.chmod(secret_file, 0o600)
    assert read_key_file(secret_file) == (public, secret)
    assert CurveKeys.from_files(pub_file, secret_file) == CurveKeys(public, public, secret)
    with pytest.raises(CurveKeyError, match="holds only a public key"):
        CurveKeys.from_files(pub_file, pub_file)

    bare = tmp_path / "bare.key"
    bare.write_text(public.decode() + "\n")
    assert read_key_file(bare) == (public, None)

    other_public, _ = zmq.curve_keypair()
    mixed = tmp_path / "mixed.key_secret"
    mixed.write_text(f'curve\n    public-key = "{other_public.decode()}"\n'
                     f'    secret-key = "{secret.decode()}"\n')  # fmt: skip
    os.chmod(mixed, 0o600)
    with pytest.raises(CurveKeyError, match="does not belong to its secret key"):
        read_key_file(mixed)
    with pytest.raises(CurveKeyError, match="no such key file"):
        read_key_file(tmp_path / "missing.key")


def test_events_endpoint_on_every_interface_is_reached_at_the_requests_host() -> None:
    assert events_endpoint("tcp://0.0.0.0:5556", "tcp://studio-gpu:5555") == "tcp://studio-gpu:5556"
    assert events_endpoint("tcp://*:5556", "tcp://10.0.0.7:5555") == "tcp://10.0.0.7:5556"
    assert events_endpoint("tcp://[::]:5556", "tcp://[fe80::1]:5555") == "tcp://[fe80::1]:5556"
    assert events_endpoint("tcp://127.0.0.1:5556", "tcp://x:1") == "tcp://127.0.0.1:5556"
    assert events_endpoint("tcp://0.0.0.0:5556", None) == "tcp://0.0.0.0:5556"
    assert events_endpoint("ipc:///tmp/e", "tcp://x:1") == "ipc:///tmp/e"


def test_protocol_md_says_what_a_client_must_set() -> None:
    from easytune_protocol.client import CURVE_SOCKET_OPTIONS
    from easytune_protocol.doc import CURVE_OPTIONS

    assert tuple(name for name, _ in CURVE_OPTIONS) == CURVE_SOCKET_OPTIONS
    text = (Path(__file__).resolve().parents[2] / "protocol" / "PROTOCOL.md").read_text()
    section = text[text.index("## Security") : text.index("## Headers")]
    for needed in (
        *CURVE_SOCKET_OPTIONS,
        "keys generate",
        "keys add-client",
        "CurveKeys.from_files",
    ):
        assert needed in section
