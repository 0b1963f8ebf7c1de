"""Handler rules that a loopback-only test server cannot reach: shutdown from another host."""

from __future__ import annotations

from pathlib import Path

import pytest

from easytune_engine.server.checkpoints import CheckpointBook
from easytune_engine.server.handlers import Handlers, Peer
from easytune_engine.server.store import Store
from easytune_protocol import ErrorCode, ProtocolError, request


@pytest.mark.parametrize(
    ("address", "loopback"),
    [(None, True), ("127.0.0.1", True), ("::1", True), ("10.0.0.7", False), ("host", False)],
)
def test_peer_is_loopback(address: str | None, loopback: bool) -> None:
    assert Peer(b"id", address, 0.0).is_loopback is loopback


def test_shutdown_is_forbidden_off_loopback_and_replayed_on_retry(tmp_path: Path) -> None:
    stops: list[str] = []
    store = Store(tmp_path / "engine.sqlite")
    handlers = Handlers(
        engine_session="e1",
        registry=None,  # type: ignore[arg-type]  # shutdown needs no model
        store=store,
        worker=None,  # type: ignore[arg-type]
        runner=None,  # type: ignore[arg-type]
        book=CheckpointBook(store, tmp_path),
        device="cpu",
        events_endpoint="tcp://127.0.0.1:1",
        request_stop=stops.append,
        publish=lambda type_, body: None,
    )
    msg = request("shutdown", {}, session="s1")
    with pytest.raises(ProtocolError) as err:
        handlers.handle(msg, Peer(b"id", "192.168.1.9", 0.0))
    assert err.value.code == ErrorCode.FORBIDDEN and not stops
    first = handlers.handle(msg, Peer(b"id", "127.0.0.1", 0.0))
    again = handlers.handle(msg, Peer(b"id", "127.0.0.1", 0.0))
    assert first is not None and again is not None
    assert (first.body, first.replayed, again.body, again.replayed) == (
        {"stopping": True}, False, {"stopping": True}, True,
    )  # fmt: skip
    assert stops == ["shutdown requested"] * 2
    store.close()
