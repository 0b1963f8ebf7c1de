"""`easytune-engine keys`: owner-only key files, the allow-list, key validation, client files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import zmq
import zmq.auth

from easytune_engine.cli import main
from easytune_engine.server import security
from easytune_engine.server.config import ServeError
from easytune_protocol.client import CurveKeyError, CurveKeys


def keys(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["keys", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_generate_writes_owner_only_files(tmp_path: Path, capsys) -> None:
    d = tmp_path / "keys"
    rc, out, _ = keys(capsys, "generate", "--dir", str(d))
    assert rc == 0 and "server public key:" in out and "add-client" in out
    assert _mode(d) == 0o700 and _mode(d / "clients") == 0o700
    assert _mode(d / "server.key") == 0o600 and _mode(d / "server.key_secret") == 0o600
    public, secret = zmq.auth.load_certificate(d / "server.key_secret")  # pyzmq reads them too
    assert secret is not None and zmq.curve_public(secret) == public
    assert zmq.auth.load_certificate(d / "server.key") == (public, None)

    rc, _, err = keys(capsys, "generate", "--dir", str(d))  # never silently replaced
    assert rc == 2 and "--force" in err
    assert zmq.auth.load_certificate(d / "server.key")[0] == public
    assert keys(capsys, "generate", "--dir", str(d), "--force")[0] == 0
    assert zmq.auth.load_certificate(d / "server.key")[0] != public


def test_default_dir_is_in_the_engine_data_dir(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("EASYTUNE_HOME", str(tmp_path / "home"))
    assert keys(capsys, "generate")[0] == 0
    assert (tmp_path / "home" / "engine" / "keys" / "server.key_secret").is_file()


def public_key(dash: bool = False) -> str:
    """A fresh Z85 public key that starts with "-" (or not): 1 in 85 do, and argparse would read
    such a key as an option unless it comes after "--"."""
    while True:
        key = zmq.curve_keypair()[0].decode()
        if key.startswith("-") == dash:
            return key


def test_add_client_by_key_or_file(tmp_path: Path, capsys) -> None:
    d = tmp_path / "keys"
    keys(capsys, "generate", "--dir", str(d))
    bob = public_key()
    rc, out, _ = keys(capsys, "add-client", bob, "--name", "bob", "--dir", str(d))
    assert rc == 0 and "allowed client bob" in out
    assert _mode(d / "clients" / "bob.key") == 0o600
    rc, out, _ = keys(capsys, "add-client", bob, "--dir", str(d))
    assert rc == 0 and "already allowed as bob" in out

    pub_file, _ = zmq.auth.create_certificates(tmp_path, "carol")  # a pyzmq certificate
    assert keys(capsys, "add-client", pub_file, "--dir", str(d))[0] == 0
    other = public_key()
    rc, _, err = keys(capsys, "add-client", other, "--name", "bob", "--dir", str(d))
    assert rc == 2 and "bob.key exists" in err and "--name" in err

    rc, out, _ = keys(capsys, "list", "--dir", str(d))
    assert rc == 0 and "allowed clients (2)" in out and bob in out and "carol" in out
    assert "ready" in out
    assert set(security.read_allow_list(d / "clients").values()) == {"bob", "carol"}

    assert keys(capsys, "remove-client", "bob", "--dir", str(d))[0] == 0
    assert set(security.read_allow_list(d / "clients").values()) == {"carol"}
    rc, _, err = keys(capsys, "remove-client", "bob", "--dir", str(d))
    assert rc == 2 and "no allowed client named 'bob'" in err


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("abc", "40 characters of Z85"),
        ("~" * 40, "outside Z85"),
        ("#" * 40, "not valid Z85"),
        ("a" * 41, "40 characters of Z85"),
    ],
)
def test_bad_client_keys_say_what_is_valid(tmp_path: Path, capsys, key: str, says: str) -> None:
    rc, _, err = keys(capsys, "add-client", key, "--dir", str(tmp_path / "keys"))
    assert rc == 2 and says in err
    assert not (tmp_path / "keys").exists()


def test_bad_names_and_files_are_refused(tmp_path: Path, capsys) -> None:
    d = tmp_path / "keys"
    key = public_key()
    rc, _, err = keys(capsys, "add-client", key, "--name", "../evil", "--dir", str(d))
    assert rc == 2 and "letters, digits" in err
    junk = tmp_path / "junk.key"
    junk.write_text("hello there\nworld\n")
    rc, _, err = keys(capsys, "add-client", str(junk), "--dir", str(d))
    assert rc == 2 and "not a key file" in err


def test_client_keypair_for_an_artist(tmp_path: Path, capsys) -> None:
    d = tmp_path / "keys"
    keys(capsys, "generate", "--dir", str(d))
    out_file = tmp_path / "artist" / "alice.key_secret"
    rc, out, _ = keys(capsys, "client", "--out", str(out_file), "--dir", str(d))
    assert rc == 0 and "allowed as client alice" in out and "server.key" in out
    assert _mode(out_file) == 0o600 and _mode(out_file.parent) == 0o700
    curve = CurveKeys.from_files(d / "server.key", out_file)
    assert security.read_allow_list(d / "clients") == {curve.public: "alice"}
    assert curve.server_public == security.load_curve(d).server_public
    assert curve.secret.decode() not in repr(curve)  # the secret stays out of logs

    rc, _, err = keys(capsys, "client", "--out", str(out_file), "--dir", str(d))
    assert rc == 2 and "exists" in err
    solo = tmp_path / "solo.key_secret"
    assert keys(capsys, "client", "--out", str(solo), "--no-allow", "--dir", str(d))[0] == 0
    assert len(security.read_allow_list(d / "clients")) == 1


def test_group_readable_secret_files_are_refused(tmp_path: Path, capsys) -> None:
    d = tmp_path / "keys"
    keys(capsys, "generate", "--dir", str(d))
    client = tmp_path / "alice.key_secret"
    keys(capsys, "client", "--out", str(client), "--dir", str(d))
    security.load_curve(d)
    for secret in (d / "server.key_secret", client):
        os.chmod(secret, 0o644)
    with pytest.raises(ServeError, match=r"mode is 0644.*chmod 600 .*server\.key_secret"):
        security.load_curve(d)
    with pytest.raises(CurveKeyError, match=r"alice\.key_secret.*chmod 600"):
        CurveKeys.from_files(d / "server.key", client)
    rc, out, _ = keys(capsys, "list", "--dir", str(d))
    assert rc == 0 and "not usable yet" in out and "chmod 600" in out


def test_keys_is_a_registered_command(tmp_path: Path) -> None:
    env = dict(os.environ, EASYTUNE_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "easytune_engine", "keys", "generate", "--dir", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "server.key_secret").is_file()


def test_a_key_starting_with_a_dash_goes_after_double_dash(tmp_path: Path, capsys) -> None:
    d = tmp_path / "keys"
    keys(capsys, "generate", "--dir", str(d))
    dash = public_key(dash=True)
    rc, out, _ = keys(capsys, "add-client", "--name", "dave", "--dir", str(d), "--", dash)
    assert rc == 0 and "allowed client dave" in out
    assert security.read_allow_list(d / "clients") == {dash.encode(): "dave"}
